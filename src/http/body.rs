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
pub(super) fn read(
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
    // The request journal keeps a copy of a body within its limit (`http::journal`).
    let journal = req
        .app_data::<web::Data<crate::service::Context>>()
        .filter(|ctx| ctx.journal.settings.entries > 0)
        .map(|ctx| (req.clone(), ctx.journal.settings.body_bytes));
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
        if let Some((req, limit)) = journal {
            let kept = (buf.len() <= limit).then(|| actix_web::web::Bytes::copy_from_slice(&buf));
            actix_web::HttpMessage::extensions_mut(&req).insert(super::journal::RawBody {
                len: buf.len(),
                kept,
            });
        }
        Ok(buf)
    })
}

pub(super) fn malformed(e: serde_json::Error) -> ApiError {
    ApiError::Scim(ScimError::invalid_syntax(format!("malformed JSON: {e}")))
}

/// A body as one `Value`, refused if the databases could not store it.
pub(super) fn value_of(bytes: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(malformed)?;
    crate::scim::validate::storable(&value, 0).map_err(ApiError::Scim)?;
    Ok(value)
}

/// A body of a user (POST, PUT) or a user's PatchOp: at most `LIMIT` JSON values (object
/// members and array elements, at every depth), counted while it is parsed, so a body
/// that could never be valid is refused (400 `invalidValue`) before it is built. A user
/// holds at most `validate::MAX_ATTRIBUTES` values; its bodies have no member lists.
#[derive(Debug)]
pub struct BoundedBody<const LIMIT: usize>(pub Value);

/// A user's POST or PUT body: the user's attribute values and its `schemas`.
pub const USER_BODY_VALUES: usize = crate::scim::validate::MAX_ATTRIBUTES;
/// A user's PatchOp: 1 000 operations of a few members each, and their values (at most
/// `MAX_ATTRIBUTES` in all, checked again by the engine).
pub const USER_PATCH_VALUES: usize =
    crate::scim::patch::MAX_OPERATIONS * 5 + crate::scim::validate::MAX_ATTRIBUTES + 10;

/// Builds a `Value` from JSON, counting the values as it goes and stopping past the limit.
pub(super) struct Counted<'a>(pub(super) &'a std::cell::Cell<usize>);

impl Counted<'_> {
    pub(super) fn take<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.0.get() {
            0 => Err(E::custom(TOO_MANY)),
            left => {
                self.0.set(left - 1);
                Ok(())
            }
        }
    }
}

pub(super) const TOO_MANY: &str = "scimbus: too many values";

impl<'de> serde::de::DeserializeSeed<'de> for Counted<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Counted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            self.take()?;
            match seq.next_element_seed(Counted(self.0))? {
                Some(item) => items.push(item),
                None => {
                    // The last `take` counted no element.
                    self.0.set(self.0.get() + 1);
                    return Ok(Value::Array(items));
                }
            }
        }
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.take()?;
            let value = map.next_value_seed(Counted(self.0))?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

/// [`value_of`], refusing past `limit` values while parsing.
fn bounded_value_of(bytes: &[u8], limit: usize) -> Result<Value, ApiError> {
    use serde::de::DeserializeSeed;
    let left = std::cell::Cell::new(limit);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Counted(&left)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    let value = match parsed {
        Ok(value) => value,
        Err(e) if e.to_string().starts_with(TOO_MANY) => {
            return Err(ApiError::Scim(crate::scim::validate::too_many_attributes()));
        }
        Err(e) => return Err(malformed(e)),
    };
    crate::scim::validate::storable(&value, 0).map_err(ApiError::Scim)?;
    Ok(value)
}

/// The future of a body extractor: the body read (limits and content type checked), then
/// `parse`d.
pub(super) type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

pub(super) fn extract<T: 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    parse: fn(&[u8]) -> Result<T, ApiError>,
) -> Extracted<T> {
    let body = read(req, payload);
    Box::pin(async move { parse(&body.await?) })
}

impl<const LIMIT: usize> FromRequest for BoundedBody<LIMIT> {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        extract(req, payload, |bytes| {
            Ok(BoundedBody(bounded_value_of(bytes, LIMIT)?))
        })
    }
}

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        extract(req, payload, |bytes| Ok(JsonBody(value_of(bytes)?)))
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

/// A group body's top-level members: `members` kept raw (any size: they are rows), every
/// other attribute built as a `Value` and counted, refused past the attribute limit while
/// parsing.
fn group_fields(
    bytes: &[u8],
) -> Result<(serde_json::Map<String, Value>, Option<RawMembers>), ApiError> {
    struct Fields<'a>(&'a std::cell::Cell<usize>);
    impl<'de> serde::de::Visitor<'de> for Fields<'_> {
        type Value = (serde_json::Map<String, Value>, Option<Box<RawValue>>);
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut rest = serde_json::Map::new();
            let mut members = None;
            while let Some(key) = map.next_key::<String>()? {
                if key.eq_ignore_ascii_case("members") {
                    if members.is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "attribute `{key}` is given more than once"
                        )));
                    }
                    members = Some(map.next_value::<Box<RawValue>>()?);
                } else {
                    Counted(self.0).take()?;
                    let value = map.next_value_seed(Counted(self.0))?;
                    rest.insert(key, value);
                }
            }
            Ok((rest, members))
        }
    }
    let left = std::cell::Cell::new(crate::scim::validate::MAX_ATTRIBUTES);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde::Deserializer::deserialize_map(&mut de, Fields(&left))
        .and_then(|v| de.end().map(|()| v));
    let (rest, members) = match parsed {
        Ok(parsed) => parsed,
        Err(e) if e.to_string().starts_with(TOO_MANY) => {
            return Err(ApiError::Scim(crate::scim::validate::too_many_attributes()));
        }
        Err(e) if e.to_string().contains("is given more than once") => {
            return Err(ApiError::Scim(ScimError::invalid_syntax(
                "attribute `members` is given more than once",
            )));
        }
        Err(e) => return Err(malformed(e)),
    };
    let members = members
        .map(|raw| RawMembers::parse(&raw).map_err(malformed))
        .transpose()?;
    Ok((rest, members))
}

impl FromRequest for GroupJson {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                // Malformed, or not an object: the same answers as every other body.
                return Ok(GroupJson {
                    body: value_of(&bytes)?,
                    members: None,
                });
            }
            let (rest, members) = group_fields(&bytes)?;
            drop(bytes);
            let body = Value::Object(rest);
            crate::scim::validate::storable(&body, 0).map_err(ApiError::Scim)?;
            Ok(GroupJson { body, members })
        })
    }
}
