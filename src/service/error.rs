//! Errors of the use cases, and the one table from each to its SCIM status and
//! `scimType` (`ServiceError::to_scim`); `report` logs a failure of ours once.

use scim_v2::models::errors::ScimType;

use crate::domain::{ResourceId, ResourceKind};
use crate::scim::error::ScimError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 4xx with the status and `scimType` it carries: the request is wrong.
    #[error(transparent)]
    Invalid(#[from] ScimError),
    /// 404: no such resource in this tenant.
    #[error("{0}")]
    NotFound(String),
    /// 409 `uniqueness`: a unique value is taken.
    #[error("{0}")]
    Conflict(String),
    /// 412: `If-Match` names another version.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 503: the service cannot answer now (a brake hold, a schema change in flight); the
    /// client retries.
    #[error("{0}")]
    Unavailable(String),
    /// 503: the database is out of reach for now; the client retries.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(sea_orm::DbErr),
    /// 500: a failure of ours; the cause goes to the log, not to the client.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ServiceError {
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::Invalid(ScimError::invalid_value(detail))
    }

    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::Conflict(detail.into())
    }

    /// 404 for the resource of `kind` named `id`.
    pub fn not_found(kind: ResourceKind, id: &ResourceId) -> Self {
        Self::NotFound(format!("{} {id} not found", kind.as_str()))
    }

    /// The status this failure answers with (RFC 7644 §3.12); with [`Self::scim_type`],
    /// the one table from service errors to SCIM errors.
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(e) => e.status,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::PreconditionFailed(_) => 412,
            Self::Unavailable(_) | Self::DatabaseUnavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }

    /// The SCIM error this failure answers with. A 5xx says nothing internal; its detail
    /// names `reference` (the request's id), which [`report`] logs with the cause.
    pub fn to_scim(&self, reference: &str) -> ScimError {
        let detail = match self {
            Self::Invalid(e) => return e.clone(),
            Self::NotFound(d)
            | Self::Conflict(d)
            | Self::PreconditionFailed(d)
            | Self::Unavailable(d) => d.clone(),
            Self::DatabaseUnavailable(_) => "the database is unavailable; retry shortly".to_owned(),
            Self::Internal(_) if reference.is_empty() => "internal error".to_owned(),
            Self::Internal(_) => format!("internal error (reference {reference})"),
        };
        ScimError::new(self.status(), self.scim_type(), detail)
    }

    /// The `scimType` of this error, if it has one.
    pub fn scim_type(&self) -> Option<ScimType> {
        match self {
            Self::Invalid(e) => e.scim_type.clone(),
            Self::Conflict(_) => Some(ScimType::Uniqueness),
            _ => None,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound("resource not found".to_owned()),
            StoreError::TenantDeleted => Self::NotFound(
                "the tenant was deleted while this request was in hand; nothing was written"
                    .to_owned(),
            ),
            StoreError::SchemaChanged => Self::Unavailable(
                "the tenant's schema extensions changed while this write was in hand; nothing was \
                 written: retry"
                    .to_owned(),
            ),
            StoreError::Unique("users_tenant_id_user_name_ci_key") => {
                Self::uniqueness("userName is already taken in this tenant")
            }
            StoreError::Unique("groups_tenant_id_display_name_ci_key") => {
                Self::uniqueness("displayName is already taken in this tenant")
            }
            StoreError::Unique(name) => Self::Conflict(format!("a unique value is taken ({name})")),
            StoreError::Unavailable(cause) => Self::DatabaseUnavailable(cause),
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<sea_orm::DbErr> for ServiceError {
    fn from(err: sea_orm::DbErr) -> Self {
        StoreError::from(err).into()
    }
}

/// Logs a failure answered with a 5xx, once, with `reference` (the request's id, also in
/// the `X-Request-Id` header and the body), and returns its SCIM error. The one place a
/// 5xx is logged: the HTTP request context calls it for every answer, bulk for each
/// operation.
pub fn report(reference: &str, error: &ServiceError) -> ScimError {
    match error {
        ServiceError::Internal(cause) => {
            tracing::error!(%reference, error = ?cause, "request failed");
        }
        ServiceError::DatabaseUnavailable(cause) => {
            tracing::warn!(%reference, error = %cause, "database unavailable");
        }
        _ => {}
    }
    error.to_scim(reference)
}
