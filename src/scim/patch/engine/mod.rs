//! The RFC 7644 §3.5.2 engine: resolves each operation's target against the registry and the
//! document, applies it to a working copy, then canonicalises the result exactly like a PUT
//! body (`validate_resource`) and checks `immutable` attributes against the stored document.
//! One phase per module: [`resolve`] (path to target), [`apply`] (target to working copy),
//! [`members`] (a Group's members, folded), [`finish`] (canonicalise, check `immutable`).

mod apply;
mod finish;
mod members;
mod resolve;

use scim_v2::filter::{PatchPath, ValFilter};
use serde_json::{Map, Value};

use super::{
    MemberRef, MembersFold, Op, Operation, PatchOutcome, dialect, get_ci, invalid_path, is_urn,
    key_ci, mutability, no_target, remove_ci, set_ci, value_filter,
};
use crate::scim::error::ScimError;
use crate::scim::schema::{
    AttrType, Attribute, GROUP_URN, Mutability, Registry, ResourceType, Schema,
};
use crate::scim::validate::{MAX_ATTRIBUTES, check_value, count_values, validate_resource};

/// Where an attribute lives: at the top of the document or inside an extension object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Container {
    Core,
    /// The extension's key in the document (canonical URN when registered).
    Extension(String),
}

/// An attribute's place: its container, its definition (`None`: unknown, kept as sent,
/// DESIGN 4) and its key (canonical name, or the spelling already stored, or as sent).
#[derive(Debug, Clone)]
struct Slot<'r> {
    container: Container,
    attr: Option<&'r Attribute>,
    name: String,
}

#[derive(Debug, Clone)]
struct Sub<'r> {
    attr: Option<&'r Attribute>,
    name: String,
}

/// What an operation acts on.
#[derive(Debug)]
enum Target<'r> {
    /// A whole extension object (`urn:…:enterprise:2.0:User`).
    Extension {
        key: String,
        schema: Option<&'r Schema>,
    },
    /// An attribute, or one sub-attribute of a single-valued complex attribute.
    Attr {
        slot: Slot<'r>,
        sub: Option<Sub<'r>>,
    },
    /// Elements of a multi-valued attribute: those the filter matches, or all of them when
    /// there is no filter (`emails.display`), optionally one sub-attribute of each.
    Elements {
        slot: Slot<'r>,
        filter: Option<ValFilter>,
        sub: Option<Sub<'r>>,
    },
    /// A Group's `members`, which live in the membership table.
    Members {
        filter: Option<ValFilter>,
        sub: Option<String>,
    },
    /// The resource's `id`.
    Id,
    /// Any other readOnly attribute (`meta`, `groups`, `meta.created`, `manager.displayName`).
    ReadOnly,
    /// Accepted and discarded: `password` (DESIGN 4), `schemas` (derived from the content).
    Discard,
}

/// How strictly a target is judged: a path names it on purpose, a path-less value may echo a
/// whole resource back (Okta, Entra), like a PUT body (RFC 7644 §3.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Value,
}

enum Resolved<'r> {
    In(Container),
    Whole(Target<'r>),
}

pub(super) struct Engine<'r> {
    registry: &'r Registry,
    resource_type: &'r ResourceType,
    core: &'r Schema,
    resource_id: &'r str,
    doc: Map<String, Value>,
    members: MembersFold,
}

impl<'r> Engine<'r> {
    pub(super) fn new(
        registry: &'r Registry,
        resource_type: &'r ResourceType,
        doc: &Map<String, Value>,
        resource_id: &'r str,
    ) -> Result<Self, ScimError> {
        let core = registry
            .schema(&resource_type.schema)
            .ok_or_else(|| ScimError::new(500, None, "resource type without a schema"))?;
        Ok(Self {
            registry,
            resource_type,
            core,
            resource_id,
            doc: doc.clone(),
            members: MembersFold::default(),
        })
    }

    pub(super) fn run(
        mut self,
        stored: &Map<String, Value>,
        ops: &[Operation],
    ) -> Result<PatchOutcome, ScimError> {
        self.check_budget(ops)?;
        for (i, op) in ops.iter().enumerate() {
            self.operation(op).map_err(|mut e| {
                e.detail = format!("operation {}: {}", i + 1, e.detail);
                e
            })?;
        }
        self.finish(stored)
    }

    /// Refuses a PatchOp whose values hold more than [`MAX_ATTRIBUTES`] attribute values in
    /// all (a group's members excluded: they are rows). With it, every operation costs at
    /// most the size of the document it works on, and the PATCH as a whole stays linear in
    /// its body.
    fn check_budget(&self, ops: &[Operation]) -> Result<(), ScimError> {
        let group = self.is_group();
        let is_members = |name: &str| group && name.eq_ignore_ascii_case("members");
        let mut count = 0usize;
        for op in ops {
            let Some(value) = &op.value else { continue };
            let path_name = op.path.as_ref().map(|path| match path {
                PatchPath::Attr(a) => a.name.as_str(),
                PatchPath::Value(vp) => vp.attr.name.as_str(),
            });
            count += match (path_name, value) {
                (Some(name), _) if is_members(name) => 0,
                (None, Value::Object(fields)) => fields
                    .iter()
                    .filter(|(key, _)| !is_members(key))
                    .map(|(_, v)| 1 + count_values(v, MAX_ATTRIBUTES))
                    .sum(),
                (_, v) => 1 + count_values(v, MAX_ATTRIBUTES),
            };
            if count > MAX_ATTRIBUTES {
                return Err(ScimError::invalid_value(format!(
                    "the operations' values hold more than {MAX_ATTRIBUTES} attribute values \
                     in all (a group's members excepted)"
                )));
            }
        }
        Ok(())
    }

    fn operation(&mut self, op: &Operation) -> Result<(), ScimError> {
        if op.op != Op::Remove && op.value.is_none() {
            return Err(ScimError::invalid_syntax(
                "`add` and `replace` need a `value` (RFC 7644 §3.5.2.1, §3.5.2.3)",
            ));
        }
        match &op.path {
            // RFC 7644 §3.5.2.2: "If "path" is unspecified, the operation fails".
            None if op.op == Op::Remove => Err(no_target("`remove` needs a `path`")),
            None => {
                let Some(Value::Object(fields)) = &op.value else {
                    return Err(ScimError::invalid_syntax(
                        "without `path`, `value` must be an object of attributes",
                    ));
                };
                for (key, value) in fields {
                    self.pathless(op.op, key, value.clone())?;
                }
                Ok(())
            }
            Some(path) => {
                let display = path.to_string();
                let target = self.resolve_path(path, op.value.as_ref(), &display)?;
                self.execute(op.op, target, op.value.clone(), Mode::Path, &display)
            }
        }
    }

    /// One attribute of a path-less `add`/`replace` (RFC 7644 §3.5.2.1, §3.5.2.3). DESIGN 5:
    /// Entra keys these values by paths (`name.givenName`, `emails[type eq "work"].value`,
    /// `urn:…:User:department`) as well as by names and extension URNs.
    fn pathless(&mut self, op: Op, key: &str, value: Value) -> Result<(), ScimError> {
        if key.eq_ignore_ascii_case("schemas") {
            return Ok(());
        }
        let target = if let Some(ext) = self.extension(key) {
            Target::Extension {
                key: ext.id.clone(),
                schema: Some(ext),
            }
        } else {
            match key.parse::<PatchPath>() {
                Ok(path) => self.resolve_path(&path, Some(&value), key)?,
                Err(_) if is_urn(key) && value.is_object() => Target::Extension {
                    key: self.known_urn(key).unwrap_or_else(|| key.to_owned()),
                    schema: None,
                },
                Err(_) => self.unknown(Container::Core, key),
            }
        };
        self.execute(op, target, Some(value), Mode::Value, key)
    }

    fn is_group(&self) -> bool {
        self.resource_type.schema.eq_ignore_ascii_case(GROUP_URN)
    }

    /// The registered extension of this resource type whose URN is `urn`.
    fn extension(&self, urn: &str) -> Option<&'r Schema> {
        self.resource_type
            .extensions
            .iter()
            .find(|e| e.schema.eq_ignore_ascii_case(urn))
            .and_then(|e| self.registry.schema(&e.schema))
    }

    /// `urn` as the document already spells it, as a key or in `schemas`.
    fn known_urn(&self, urn: &str) -> Option<String> {
        if let Some(key) = key_ci(&self.doc, urn) {
            return Some(key.clone());
        }
        get_ci(&self.doc, "schemas")
            .and_then(Value::as_array)?
            .iter()
            .filter_map(Value::as_str)
            .find(|s| s.eq_ignore_ascii_case(urn))
            .map(str::to_owned)
    }

    /// The container's map, created if it is an extension not yet in the document (an
    /// extension left empty is dropped in `finish`).
    fn container_mut(
        &mut self,
        container: &Container,
    ) -> Result<&mut Map<String, Value>, ScimError> {
        match container {
            Container::Core => Ok(&mut self.doc),
            Container::Extension(key) => {
                let key = key_ci(&self.doc, key)
                    .cloned()
                    .unwrap_or_else(|| key.clone());
                match self
                    .doc
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
                {
                    Value::Object(map) => Ok(map),
                    _ => Err(invalid_path(format!(
                        "`{key}` holds a value, not an extension object"
                    ))),
                }
            }
        }
    }

    fn existing_container_mut(&mut self, container: &Container) -> Option<&mut Map<String, Value>> {
        match container {
            Container::Core => Some(&mut self.doc),
            Container::Extension(key) => {
                let key = key_ci(&self.doc, key)?.clone();
                self.doc.get_mut(&key).and_then(Value::as_object_mut)
            }
        }
    }
}
