//! Response shaping: SCIM media type, `ETag` and `Location`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use serde::Serialize;

use super::SCIM_JSON;

/// A SCIM body with `status`.
pub fn scim(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, SCIM_JSON))
        .json(body)
}

/// A SCIM resource with its `ETag` (and `Location` when given, RFC 7644 §3.3).
pub fn resource(
    status: StatusCode,
    body: &impl Serialize,
    etag: &str,
    location: Option<&str>,
) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    builder
        .insert_header((header::CONTENT_TYPE, SCIM_JSON))
        .insert_header((header::ETAG, etag));
    if let Some(location) = location {
        builder.insert_header((header::LOCATION, location));
    }
    builder.json(body)
}
