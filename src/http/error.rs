//! `ApiError`, the only `ResponseError`: every failure becomes a SCIM error body
//! (`urn:ietf:params:scim:api:messages:2.0:Error`, `status` as a string, RFC 7644 §3.12)
//! served as `application/scim+json`. A 5xx says nothing internal: it carries a reference
//! that the log line with the cause also has.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use scim_v2::models::errors::ScimType;

use super::SCIM_JSON;
use crate::domain::Scope;
use crate::scim::error::ScimError;
use crate::service::ServiceError;
use crate::tenancy::auth::AuthError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The status and `scimType` the protocol error carries (400 mostly).
    #[error("{0}")]
    Scim(ScimError),
    /// 401 with `WWW-Authenticate: Bearer`, the same for every credential failure.
    #[error("authentication required")]
    Unauthenticated,
    /// 403 `insufficient_scope` (RFC 6750 §3.1).
    #[error("insufficient scope")]
    InsufficientScope(Scope),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405, with the `Allow` header listing the methods the resource takes (RFC 9110
    /// §15.5.6).
    #[error("method not allowed")]
    MethodNotAllowed(Option<String>),
    /// 409 `uniqueness`.
    #[error("{0}")]
    Conflict(String),
    /// 412: `If-Match` names another version.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413: the body is over the limit.
    #[error("body over {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: neither `application/scim+json` nor `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 503 with `Retry-After`: the database is out of reach for now.
    #[error("{0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: the request ran past `SCIMBUS_REQUEST_TIMEOUT_SECS`.
    #[error("request timed out after {0} s")]
    Timeout(u64),
    /// 429 with `Retry-After`: the token's rate limit is reached.
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// 500: logged with a reference, never shown.
    #[error("internal error")]
    Internal(anyhow::Error),
}

impl ApiError {
    fn scim_error(&self) -> ScimError {
        let status = self.status_code().as_u16();
        match self {
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
            ApiError::NotFound(detail) => ScimError::new(status, None, detail.clone()),
            ApiError::MethodNotAllowed(_) => {
                ScimError::new(status, None, "this endpoint does not support that method")
            }
            ApiError::Conflict(detail) => {
                ScimError::new(status, Some(ScimType::Uniqueness), detail.clone())
            }
            ApiError::PreconditionFailed(detail) => ScimError::new(status, None, detail.clone()),
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
            ApiError::Unavailable(detail) => ScimError::new(status, None, detail.clone()),
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
            ApiError::Internal(cause) => {
                // The request id: the log line, the `X-Request-Id` header and this body
                // share it.
                let reference = crate::telemetry::current_request_id()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                tracing::error!(%reference, error = ?cause, "request failed");
                ScimError::new(
                    status,
                    None,
                    format!("internal error (reference {reference})"),
                )
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Scim(e) => StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Timeout(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = self.scim_error().to_body();
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
            ApiError::Timeout(_) | ApiError::Unavailable(_) => {
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

impl From<ScimError> for ApiError {
    fn from(e: ScimError) -> Self {
        ApiError::Scim(e)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            // Kept apart: their answers carry headers (`Retry-After`) or log the cause.
            ServiceError::Unavailable(d) => ApiError::Unavailable(d),
            ServiceError::Internal(cause) => ApiError::Internal(cause),
            other => ApiError::Scim(other.into_scim()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => ApiError::Unauthenticated,
            AuthError::InsufficientScope(s) => ApiError::InsufficientScope(s),
            AuthError::Unavailable => {
                ApiError::Unavailable("the database is unavailable; retry shortly".to_owned())
            }
            AuthError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}
