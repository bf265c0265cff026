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
use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::service::groups::RawMembers;

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

/// Reads the whole body within the limit, checking its content type; empty is refused.
fn read(
    req: &HttpRequest,
    payload: &mut Payload,
) -> Pin<Box<dyn Future<Output = Result<BytesMut, ApiError>>>> {
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
        Ok(buf)
    })
}

fn malformed(e: serde_json::Error) -> ApiError {
    ApiError::Scim(ScimError::invalid_syntax(format!("malformed JSON: {e}")))
}

/// A body as one `Value`, refused if the databases could not store it.
fn value_of(bytes: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(malformed)?;
    crate::scim::validate::storable(&value, 0).map_err(ApiError::Scim)?;
    Ok(value)
}

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read(req, payload);
        Box::pin(async move { Ok(JsonBody(value_of(&body.await?)?)) })
    }
}

/// A Group body (POST, PUT): the attributes as a `Value`, the `members` elements left as
/// raw JSON for the service to read one at a time. A 100 000-member PUT as one `Value` took
/// over 100 MB (one map per member); as raw elements it is about its size in bytes.
#[derive(Debug)]
pub struct GroupJson {
    pub body: Value,
    pub members: Option<RawMembers>,
}

impl FromRequest for GroupJson {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            let Ok(fields) = serde_json::from_slice::<BTreeMap<String, Box<RawValue>>>(&bytes)
            else {
                // Malformed, or not an object: the same answers as every other body.
                return Ok(GroupJson {
                    body: value_of(&bytes)?,
                    members: None,
                });
            };
            drop(bytes);
            let mut rest = serde_json::Map::new();
            let mut members = None;
            for (key, raw) in fields {
                if key.eq_ignore_ascii_case("members") {
                    if members.is_some() {
                        return Err(ApiError::Scim(ScimError::invalid_syntax(format!(
                            "attribute `{key}` is given more than once"
                        ))));
                    }
                    members = Some(RawMembers::parse(&raw).map_err(malformed)?);
                } else {
                    rest.insert(key, serde_json::from_str(raw.get()).map_err(malformed)?);
                }
            }
            let body = Value::Object(rest);
            crate::scim::validate::storable(&body, 0).map_err(ApiError::Scim)?;
            Ok(GroupJson { body, members })
        })
    }
}
