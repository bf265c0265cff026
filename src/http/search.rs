//! `POST …/.search` (RFC 7644 §3.4.3) on `/Users`, `/Groups` and the tenant root: the
//! query travels in a SearchRequest body instead of the URL, with the same meaning.

use actix_web::http::StatusCode;
use actix_web::post;
use actix_web::{HttpResponse, web};
use serde_json::Value;

use super::body::JsonBody;
use super::error::ApiError;
use super::integer;
use super::precondition::ReadParams;
use super::response;
use crate::domain::ResourceKind;
use crate::scim::error::ScimError;
use crate::scim::projection;
use crate::service::Context;
use crate::service::listing::{self, ListRequest};
use crate::tenancy::auth::AuthenticatedTenant;

/// A list or search of `kind` (`GET /Users`, `POST /Users/.search`, …).
pub async fn list(
    ctx: &Context,
    auth: &AuthenticatedTenant,
    params: &ReadParams,
    kind: ResourceKind,
) -> Result<HttpResponse, ApiError> {
    let list = listing::list(ctx, &auth.tenant, &request(params)?, kind).await?;
    Ok(response::scim(StatusCode::OK, &list))
}

/// Mounts `POST /.search` (the per-type searches are mounted with their resources).
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(search_root);
    super::other_methods(cfg, &["/.search"]);
}

pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The SearchRequest body as the same parameters a GET takes (names case-insensitive).
pub fn params(body: Value) -> Result<ReadParams, ApiError> {
    let Value::Object(fields) = body else {
        return Err(ScimError::invalid_syntax("a SearchRequest must be a JSON object").into());
    };
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    if let Some(schemas) = get("schemas") {
        let named = schemas.as_array().is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(SEARCH_REQUEST_URN))
            })
        });
        if !named {
            return Err(ScimError::invalid_syntax(format!(
                "`schemas` must contain {SEARCH_REQUEST_URN}"
            ))
            .into());
        }
    }
    // RFC 7644 §3.4.3 types each parameter; null is absent. `attributes` may also be one
    // comma-separated string, as in a query.
    let string = |name: &str| -> Result<Option<String>, ApiError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ScimError::invalid_value(format!("`{name}` must be a string")).into()),
        }
    };
    let integer = |name: &str| -> Result<Option<String>, ApiError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => crate::scim::validate::whole_number(v)
                .map(|n| Some(n.to_string()))
                .ok_or_else(|| {
                    ScimError::invalid_value(format!("`{name}` must be an integer")).into()
                }),
        }
    };
    let names = |name: &str| -> Result<Option<String>, ApiError> {
        let list = match get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    ScimError::invalid_value(format!("`{name}` must be a list of strings"))
                })?
                .join(","),
            Some(_) => {
                return Err(ScimError::invalid_value(format!(
                    "`{name}` must be a list of strings"
                ))
                .into());
            }
        };
        projection::check_names(name, &list)?;
        Ok(Some(list))
    };
    Ok(ReadParams {
        filter: string("filter")?,
        start_index: integer("startIndex")?,
        count: integer("count")?,
        attributes: names("attributes")?,
        excluded_attributes: names("excludedAttributes")?,
        sort_by: string("sortBy")?,
        sort_order: string("sortOrder")?,
        cursor: string("cursor")?,
    })
}

/// The parsed list request of `params`: `count` read before `startIndex`, as their
/// errors are reported in that order.
pub fn request(params: &ReadParams) -> Result<ListRequest, ApiError> {
    let count = integer("count", params.count.as_deref())?;
    let start_index = integer("startIndex", params.start_index.as_deref())?;
    Ok(ListRequest {
        query: params.query(),
        start_index,
        count,
        cursor: params.cursor.clone(),
        projection: params.projection(),
        members: params.members(),
    })
}

/// Searches users with a SearchRequest body (RFC 7644 §3.4.3).
#[utoipa::path(
    operation_id = "searchUsers",
    tag = "SCIM Users",
    params(super::openapi::TenantPath),
    request_body(content = super::openapi::SearchRequest, content_type = super::openapi::SCIM),
    responses(
        (status = 200, description = "The page", content_type = super::openapi::SCIM, body = super::openapi::ListResponse),
        (status = "default", description = "A SCIM error (400 invalidFilter, invalidSyntax, invalidValue…)", content_type = super::openapi::SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[post("/Users/.search")]
pub async fn search_users(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    list(&ctx, &auth, &params(body.0)?, ResourceKind::User).await
}

/// Searches groups with a SearchRequest body (RFC 7644 §3.4.3).
#[utoipa::path(
    operation_id = "searchGroups",
    tag = "SCIM Groups",
    params(super::openapi::TenantPath),
    request_body(content = super::openapi::SearchRequest, content_type = super::openapi::SCIM),
    responses(
        (status = 200, description = "The page", content_type = super::openapi::SCIM, body = super::openapi::ListResponse),
        (status = "default", description = "A SCIM error (400 invalidFilter, invalidSyntax, invalidValue…)", content_type = super::openapi::SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[post("/Groups/.search")]
pub async fn search_groups(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    list(&ctx, &auth, &params(body.0)?, ResourceKind::Group).await
}

/// `POST /.search`: users, then groups, as one list. A filter that does not fit one of the
/// resource types (an attribute it does not have) searches only the other; one that fits
/// neither is refused.
#[utoipa::path(
    operation_id = "searchAll",
    tag = "SCIM discovery",
    params(super::openapi::TenantPath),
    request_body(content = super::openapi::SearchRequest, content_type = super::openapi::SCIM),
    responses(
        (status = 200, description = "The page", content_type = super::openapi::SCIM, body = super::openapi::ListResponse),
        (status = "default", description = "A SCIM error (400 invalidFilter, invalidSyntax, invalidValue…)", content_type = super::openapi::SCIM, body = super::openapi::ScimErrorBody),
    )
)]
#[post("/.search")]
pub async fn search_root(
    ctx: web::Data<Context>,
    auth: AuthenticatedTenant,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let params = params(body.0)?;
    // Here `startIndex` is read before `count`.
    integer("startIndex", params.start_index.as_deref())?;
    let request = request(&params)?;
    let list = listing::search_all(&ctx, &auth.tenant, &request).await?;
    Ok(response::scim(StatusCode::OK, &list))
}
