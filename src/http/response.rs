//! Response shaping: SCIM media type, `ETag` and `Location`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use serde::Serialize;

use super::SCIM_JSON;
use super::precondition::ReadParams;
use crate::service::resource::ResourceView;
use crate::tenancy::auth::AuthenticatedTenant;

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

/// A user or group read or written: its representation under the request's projection,
/// `ETag` and
/// `Location`.
pub fn view(
    status: StatusCode,
    view: ResourceView,
    auth: &AuthenticatedTenant,
    params: &ReadParams,
) -> HttpResponse {
    let etag = view.etag();
    let location = view.location().map(str::to_owned);
    let body = view.respond(&auth.tenant.registry, &params.projection());
    resource(status, &body, &etag, location.as_deref())
}
