//! SCIM protocol errors (RFC 7644 §3.12): a status, an optional `scimType` and a detail.

use scim_v2::models::errors::{ScimHttpError, ScimType};

/// URN of the SCIM error message schema.
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A protocol-level rejection of a request, before anything is stored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{detail}")]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 `invalidValue`: a value does not fit the attribute or the schema.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidValue), detail)
    }

    /// 400 `invalidSyntax`: the body is not the message it should be.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidSyntax), detail)
    }

    /// 400 `invalidFilter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidFilter), detail)
    }

    /// The wire body.
    pub fn to_body(&self) -> ScimHttpError {
        ScimHttpError {
            schemas: vec![ERROR_URN.to_owned()],
            scim_type: self.scim_type.clone(),
            detail: Some(self.detail.clone()),
            status: self.status.to_string(),
        }
    }
}
