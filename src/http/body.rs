//! The JSON body extractor: `application/scim+json` or `application/json` (or no content
//! type), at most the configured size (413 otherwise, checked before and while reading),
//! and malformed JSON answered 400 `invalidSyntax`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{self, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde_json::Value;

use super::error::ApiError;
use crate::scim::error::ScimError;

/// The request body limit, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A parsed JSON request body.
#[derive(Debug)]
pub struct JsonBody(pub Value);

fn acceptable(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/scim+json")
        || essence.eq_ignore_ascii_case("application/json")
}

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<BodyLimit>>()
            .map_or(crate::config::MIN_BODY_BYTES, |l| l.0);
        let ok_type = acceptable(req);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !ok_type {
                return Err(ApiError::UnsupportedMediaType);
            }
            if declared.is_some_and(|n| n > limit) {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            let mut buf = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::Scim(ScimError::invalid_syntax(format!(
                        "cannot read the body: {e}"
                    )))
                })?;
                if buf.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge(limit));
                }
                buf.extend_from_slice(&chunk);
            }
            if buf.is_empty() {
                return Err(ApiError::Scim(ScimError::invalid_syntax(
                    "the request body is empty",
                )));
            }
            let value: Value = serde_json::from_slice(&buf).map_err(|e| {
                ApiError::Scim(ScimError::invalid_syntax(format!("malformed JSON: {e}")))
            })?;
            storable(&value, 0).map_err(ApiError::Scim)?;
            Ok(JsonBody(value))
        })
    }
}

/// Deepest nesting a body may have (a SCIM resource needs four or five levels).
const MAX_DEPTH: usize = 64;
/// Largest magnitude a number may have: beyond it PostgreSQL's `jsonb` keeps digits that
/// `f64` cannot read back.
const MAX_MAGNITUDE: f64 = 1e300;

/// Refuses what valid JSON allows and the databases cannot store or give back: NUL in a
/// string or a key (PostgreSQL text), numbers near the end of the `f64` range, and
/// nesting deeper than any SCIM body needs.
fn storable(value: &Value, depth: usize) -> Result<(), ScimError> {
    if depth > MAX_DEPTH {
        return Err(ScimError::invalid_value(format!(
            "the body nests deeper than {MAX_DEPTH} levels"
        )));
    }
    let nul = |s: &str| {
        if s.contains('\0') {
            Err(ScimError::invalid_value(
                "NUL characters (\\u0000) are not accepted in strings or names",
            ))
        } else {
            Ok(())
        }
    };
    match value {
        Value::String(s) => nul(s),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.abs() <= MAX_MAGNITUDE => Ok(()),
            _ => Err(ScimError::invalid_value(format!(
                "the number {n} is out of range"
            ))),
        },
        Value::Array(items) => items.iter().try_for_each(|v| storable(v, depth + 1)),
        Value::Object(fields) => fields.iter().try_for_each(|(k, v)| {
            nul(k)?;
            storable(v, depth + 1)
        }),
        Value::Bool(_) | Value::Null => Ok(()),
    }
}
