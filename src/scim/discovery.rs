//! The discovery documents (RFC 7643 §5–7), generated from the registry and the server's
//! real limits: ServiceProviderConfig, ResourceTypes and Schemas.

use serde_json::{Value, json};

use super::resource::Page;
use super::schema::{
    AttrType, Attribute, Mutability, Registry, ResourceType, Returned, Schema, Uniqueness,
};

pub const SERVICE_PROVIDER_CONFIG_URN: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// What the configuration document advertises.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub cursor_timeout_secs: u32,
    /// Most operations one `/Bulk` request may carry.
    pub bulk_max_operations: usize,
    /// The request body limit, which a `/Bulk` request is subject to.
    pub max_payload_bytes: usize,
    /// RFC 9967 §4: the security event URIs the service makes, when it makes them.
    pub security_events: Option<&'static [&'static str]>,
}

/// `/ServiceProviderConfig` (RFC 7643 §5, RFC 9865 §4 `pagination`).
pub fn service_provider_config(base: &str, limits: Limits) -> Value {
    let mut config = json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_URN],
        "documentationUri": "https://github.com/scimbus/scimbus#readme",
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": limits.bulk_max_operations,
            "maxPayloadSize": limits.max_payload_bytes,
        },
        "filter": {"supported": true, "maxResults": Page::MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A bearer token issued by scimbus for one tenant (RFC 6750).",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true
        }],
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": Page::DEFAULT_COUNT,
            "maxPageSize": Page::MAX_COUNT,
            "cursorTimeout": limits.cursor_timeout_secs
        },
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig")
        }
    });
    // RFC 9967 §4: absent means no security events. No asynchronous requests.
    if let Some(uris) = limits.security_events {
        config["securityEvents"] = json!({"asyncRequest": "none", "eventUris": uris});
    }
    config
}

/// One `/ResourceTypes` entry (RFC 7643 §6).
pub fn resource_type(base: &str, rt: &ResourceType) -> Value {
    let extensions: Vec<Value> = rt
        .extensions
        .iter()
        .map(|e| json!({"schema": e.schema, "required": e.required}))
        .collect();
    json!({
        "schemas": [RESOURCE_TYPE_URN],
        "id": rt.id,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.description,
        "schema": rt.schema,
        "schemaExtensions": extensions,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base}/ResourceTypes/{}", rt.id)
        }
    })
}

fn attribute(a: &Attribute) -> Value {
    let mut out = json!({
        "name": a.name,
        "type": a.ty.name(),
        "multiValued": a.multi_valued,
        "description": a.description,
        "required": a.required,
        "caseExact": a.case_exact,
        "mutability": match a.mutability {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        },
        "returned": match a.returned {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        },
        "uniqueness": match a.uniqueness {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        },
    });
    if !a.canonical_values.is_empty() {
        out["canonicalValues"] = json!(a.canonical_values);
    }
    if a.ty == AttrType::Reference {
        out["referenceTypes"] = json!(a.reference_types);
    }
    if a.ty == AttrType::Complex {
        out["subAttributes"] = Value::Array(a.sub_attributes.iter().map(attribute).collect());
    }
    out
}

/// One `/Schemas` entry (RFC 7643 §7).
pub fn schema(base: &str, s: &Schema) -> Value {
    json!({
        "schemas": [SCHEMA_URN],
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "attributes": s.attributes.iter().map(attribute).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{base}/Schemas/{}", s.id)
        }
    })
}

/// Every resource type.
pub fn resource_types(base: &str, registry: &Registry) -> Vec<Value> {
    registry
        .resource_types
        .iter()
        .map(|rt| resource_type(base, rt))
        .collect()
}

/// Every schema.
pub fn schemas(base: &str, registry: &Registry) -> Vec<Value> {
    registry.schemas.iter().map(|s| schema(base, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ENTERPRISE_USER_URN, GROUP_URN, USER_URN};

    #[test]
    fn schemas_describe_every_attribute_as_rfc_7643_section_7_says() {
        let r = Registry::core();
        let user = schema("http://x", r.schema(USER_URN).unwrap());
        let attrs = user["attributes"].as_array().unwrap();
        let user_name = attrs.iter().find(|a| a["name"] == "userName").unwrap();
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["required"], true);
        let password = attrs.iter().find(|a| a["name"] == "password").unwrap();
        assert_eq!(password["returned"], "never");
        assert_eq!(password["mutability"], "writeOnly");
        let groups = attrs.iter().find(|a| a["name"] == "groups").unwrap();
        assert_eq!(groups["mutability"], "readOnly");
        assert_eq!(groups["subAttributes"].as_array().unwrap().len(), 4);
        let group = schema("http://x", r.schema(GROUP_URN).unwrap());
        let display = &group["attributes"][0];
        assert_eq!(
            (display["name"].as_str(), display["uniqueness"].as_str()),
            (Some("displayName"), Some("server"))
        );
        let enterprise = schema("http://x", r.schema(ENTERPRISE_USER_URN).unwrap());
        let manager = enterprise["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "manager")
            .unwrap();
        let subs: Vec<&str> = manager["subAttributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(subs, vec!["value", "$ref", "displayName"]);
    }
}
