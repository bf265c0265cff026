//! `ApiError`, the only `ResponseError`: every failure becomes a SCIM error body
//! (`urn:ietf:params:scim:api:messages:2.0:Error`, `status` as a string, RFC 7644 §3.12)
//! served as `application/scim+json`. Failures of the use cases keep their
//! [`ServiceError`], whose table (`ServiceError::to_scim`) gives their status; the
//! variants here are what only HTTP knows. A 5xx says nothing internal: the request
//! context (`context::request_context`) logs it once with the request's id, which its
//! body names.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use super::SCIM_JSON;
use crate::domain::Scope;
use crate::scim::error::ScimError;
use crate::service::ServiceError;
use crate::tenancy::auth::AuthError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A failure of a use case: its status, `scimType` and detail come from
    /// `ServiceError::to_scim`.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The status and `scimType` the protocol error carries (400 mostly).
    #[error("{0}")]
    Scim(ScimError),
    /// 401 with `WWW-Authenticate: Bearer`, the same for every credential failure.
    #[error("authentication required")]
    Unauthenticated,
    /// 403 `insufficient_scope` (RFC 6750 §3.1).
    #[error("insufficient scope")]
    InsufficientScope(Scope),
    /// 405, with the `Allow` header listing the methods the resource takes (RFC 9110
    /// §15.5.6).
    #[error("method not allowed")]
    MethodNotAllowed(Option<String>),
    /// 413: the body is over the limit.
    #[error("body over {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: neither `application/scim+json` nor `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 503 with `Retry-After`: the request ran past `SCIMBUS_REQUEST_TIMEOUT_SECS`.
    #[error("request timed out after {0} s")]
    Timeout(u64),
    /// 429 with `Retry-After`: the token's rate limit is reached.
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
}

impl ApiError {
    /// 404 with `detail`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::Service(ServiceError::NotFound(detail.into()))
    }

    /// 500: a failure of ours, `cause` logged, never shown.
    pub fn internal(cause: anyhow::Error) -> Self {
        Self::Service(ServiceError::Internal(cause))
    }

    /// The SCIM error of this failure; a 5xx's detail names `reference`.
    pub fn to_scim(&self, reference: &str) -> ScimError {
        let status = self.status_code().as_u16();
        match self {
            ApiError::Service(e) => e.to_scim(reference),
            ApiError::Scim(e) => e.clone(),
            ApiError::Unauthenticated => ScimError::new(
                status,
                None,
                "a valid bearer token for this tenant is required",
            ),
            ApiError::InsufficientScope(scope) => ScimError::new(
                status,
                None,
                format!("the token lacks the `{}` scope", scope.as_str()),
            ),
            ApiError::MethodNotAllowed(_) => {
                ScimError::new(status, None, "this endpoint does not support that method")
            }
            ApiError::PayloadTooLarge(limit) => ScimError::new(
                status,
                None,
                format!("the request body is larger than {limit} bytes"),
            ),
            ApiError::UnsupportedMediaType => ScimError::new(
                status,
                None,
                "send application/scim+json or application/json",
            ),
            ApiError::Timeout(secs) => ScimError::new(
                status,
                None,
                format!("the request took longer than {secs} s; retry it"),
            ),
            ApiError::TooManyRequests { retry_after_secs } => ScimError::new(
                status,
                None,
                format!("rate limit reached for this token; retry in {retry_after_secs} s"),
            ),
        }
    }

    /// The answer, its SCIM error naming `reference` when it is a 5xx.
    pub fn response(&self, reference: &str) -> HttpResponse {
        let body = self.to_scim(reference).to_body();
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON)));
        match self {
            ApiError::Unauthenticated => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"scimbus\""),
                ));
            }
            ApiError::InsufficientScope(scope) => {
                let value = format!(
                    "Bearer realm=\"scimbus\", error=\"insufficient_scope\", scope=\"{}\"",
                    scope.as_str()
                );
                if let Ok(v) = HeaderValue::from_str(&value) {
                    response.insert_header((header::WWW_AUTHENTICATE, v));
                }
            }
            ApiError::Timeout(_)
            | ApiError::Service(
                ServiceError::Unavailable(_) | ServiceError::DatabaseUnavailable(_),
            ) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::MethodNotAllowed(Some(allow)) => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    response.insert_header((header::ALLOW, v));
                }
            }
            _ => {}
        }
        response.json(body)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        let status = match self {
            ApiError::Service(e) => e.status(),
            ApiError::Scim(e) => e.status,
            ApiError::Unauthenticated => 401,
            ApiError::InsufficientScope(_) => 403,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::Timeout(_) => 503,
            ApiError::TooManyRequests { .. } => 429,
        };
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST)
    }

    /// The answer as actix writes it; a 5xx's reference is filled in (and the failure
    /// logged) by the request context, which knows the request's id.
    fn error_response(&self) -> HttpResponse {
        self.response("")
    }
}

impl From<ScimError> for ApiError {
    fn from(e: ScimError) -> Self {
        ApiError::Scim(e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => ApiError::Unauthenticated,
            AuthError::InsufficientScope(s) => ApiError::InsufficientScope(s),
            AuthError::Unavailable => ApiError::Service(ServiceError::Unavailable(
                "the database is unavailable; retry shortly".to_owned(),
            )),
            AuthError::Internal(cause) => ApiError::internal(cause),
        }
    }
}
