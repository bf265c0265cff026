//! The view of a user or a group that every use case returns and every response is written
//! from: id, version (the `ETag`), representation and `Location`. A group's members stay
//! rows until the response is written: a group of 100 000 as `Value` objects was most of a
//! group PUT's memory.

use serde_json::{Map, Value, json};

use super::ServiceError;
use crate::domain::{ExternalId, Member, ResourceId, ResourceKind, Tenant};
use crate::scim::projection::{Prepared, Projection, returnable};
use crate::scim::resource::etag;
use crate::scim::schema::Registry;

/// The SCIM representation of the stored `document` of the resource `kind` `id`: what is
/// returned of it, `id` and `meta` (RFC 7643 §3.1); `base` is the tenant's SCIM base URL
/// and `times` are its creation and last modification.
pub(super) fn represent(
    tenant: &Tenant,
    base: &str,
    kind: ResourceKind,
    id: &ResourceId,
    document: &Map<String, Value>,
    version: i64,
    [created, last_modified]: [&str; 2],
) -> Value {
    let registry = &tenant.registry;
    let mut body = returnable(registry, kind.resource_type(registry), document);
    body.insert("id".to_owned(), Value::String(id.as_str().to_owned()));
    body.insert(
        "meta".to_owned(),
        json!({
            "resourceType": kind.as_str(),
            "created": created,
            "lastModified": last_modified,
            "location": format!("{base}/{}/{id}", kind.endpoint()),
            "version": etag(version),
        }),
    );
    Value::Object(body)
}

/// A document's `externalId`, checked.
pub(super) fn external_id(
    document: &Map<String, Value>,
) -> Result<Option<ExternalId>, ServiceError> {
    document
        .get("externalId")
        .and_then(Value::as_str)
        .map(ExternalId::parse)
        .transpose()
        .map_err(ServiceError::invalid_value)
}

/// A user or group as the API returns it.
#[derive(Debug, Clone)]
pub struct ResourceView {
    pub kind: ResourceKind,
    pub id: ResourceId,
    pub version: i64,
    /// The representation (a group's without `members`).
    pub body: Value,
    /// A group's members, as rows.
    members: Vec<Member>,
    /// `…/scim/v2/{tenant}`, for the members' `$ref`.
    base: String,
}

/// What a write did: the resource after it, and whether anything changed.
#[derive(Debug)]
pub struct Written {
    pub view: ResourceView,
    pub changed: bool,
}

impl ResourceView {
    /// A resource whose representation is whole in `body`.
    pub fn new(kind: ResourceKind, id: ResourceId, version: i64, body: Value) -> Self {
        Self {
            kind,
            id,
            version,
            body,
            members: Vec::new(),
            base: String::new(),
        }
    }

    /// With `members` (rows), written into the representation under `base`.
    pub fn with_members(mut self, members: Vec<Member>, base: String) -> Self {
        self.members = members;
        self.base = base;
        self
    }

    pub fn etag(&self) -> String {
        etag(self.version)
    }

    /// `meta.location`, also the `Location` header (RFC 7644 §3.3, §3.4.1).
    pub fn location(&self) -> Option<&str> {
        self.body["meta"]["location"].as_str()
    }

    /// The whole representation as one `Value` (projections that pick members'
    /// sub-attributes).
    pub fn into_value(self) -> Value {
        let mut body = self.body;
        if !self.members.is_empty() {
            let members = serde_json::to_value(MembersOut {
                members: &self.members,
                base: &self.base,
            })
            .unwrap_or(Value::Null);
            body["members"] = members;
        }
        body
    }

    /// The response body for `projection`.
    pub fn respond(self, registry: &Registry, projection: &Projection) -> ResourceBody {
        let resource_type = self.kind.resource_type(registry);
        self.respond_prepared(&projection.prepare(registry, resource_type))
    }

    /// [`respond`](Self::respond) with the projection resolved once for a page: the
    /// default one streams the members from their rows; any other is applied to the whole
    /// representation.
    pub fn respond_prepared(self, projection: &Prepared<'_>) -> ResourceBody {
        if projection.is_default() {
            let mut body = self.body;
            projection.apply(&mut body);
            return ResourceBody {
                body,
                members: self.members,
                base: self.base,
            };
        }
        let mut body = self.into_value();
        projection.apply(&mut body);
        ResourceBody::whole(body)
    }
}

/// A response body: the representation's attributes in order, with a group's `members`
/// written from the rows in its place.
#[derive(Debug)]
pub struct ResourceBody {
    body: Value,
    members: Vec<Member>,
    base: String,
}

impl ResourceBody {
    /// A body that is whole in `body`.
    pub fn whole(body: Value) -> Self {
        Self {
            body,
            members: Vec::new(),
            base: String::new(),
        }
    }
}

impl serde::Serialize for ResourceBody {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(fields) = &self.body else {
            return self.body.serialize(serializer);
        };
        if self.members.is_empty() {
            return self.body.serialize(serializer);
        }
        let mut map = serializer.serialize_map(None)?;
        let members = MembersOut {
            members: &self.members,
            base: &self.base,
        };
        let mut pending = true;
        for (key, value) in fields {
            if pending && key.as_str() > "members" {
                map.serialize_entry("members", &members)?;
                pending = false;
            }
            map.serialize_entry(key, value)?;
        }
        if pending {
            map.serialize_entry("members", &members)?;
        }
        map.end()
    }
}

/// Members as SCIM writes them: `$ref`, `display` (when known), `type`, `value`.
struct MembersOut<'a> {
    members: &'a [Member],
    base: &'a str,
}

impl serde::Serialize for MembersOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct One<'a>(&'a Member, &'a str);
        impl serde::Serialize for One<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let One(m, base) = self;
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry(
                    "$ref",
                    &format_args!("{base}/{}/{}", m.member_type.endpoint(), m.id),
                )?;
                if let Some(display) = &m.display {
                    map.serialize_entry("display", display)?;
                }
                map.serialize_entry("type", m.member_type.as_str())?;
                map.serialize_entry("value", &m.id)?;
                map.end()
            }
        }
        let mut seq = serializer.serialize_seq(Some(self.members.len()))?;
        for m in self.members {
            seq.serialize_element(&One(m, self.base))?;
        }
        seq.end()
    }
}
