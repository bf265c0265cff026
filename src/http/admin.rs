//! `/admin/v1`: tenants, their tokens and schema extensions, application credentials and
//! the audit log, for operators with a named admin token.
//! A token's secret appears once, in the response that creates it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use actix_web::{delete, get, post, put};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::body::JsonBody;
use super::error::ApiError;
use super::openapi::{SCIM, ScimErrorBody};
use super::response;
use crate::domain::{Scope, TenantSlug, TokenName};
use crate::scim::error::ScimError;
use crate::scim::time;
use crate::service::apps::{AppRequest, TenantScope};
use crate::service::audit::{self, Actor};
use crate::service::{Context, apps, brake, events, journal, operators, schemas, tenants};
use crate::telemetry::Correlation;
use crate::tenancy::auth::AdminActor;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_tenants)
        .service(create_tenant)
        .service(get_tenant)
        .service(delete_tenant)
        .service(list_tokens)
        .service(issue_token)
        .service(revoke_token)
        .service(purge_events)
        .service(register_schema)
        .service(list_schemas)
        .service(get_schema)
        .service(update_schema)
        .service(remove_schema)
        .service(list_jobs)
        .service(get_job)
        .service(list_audit)
        .service(show_brake)
        .service(configure_brake)
        .service(release_brake)
        .service(discard_brake)
        .service(list_apps)
        .service(issue_app)
        .service(revoke_app)
        .service(read_journal)
        .service(list_operators)
        .service(issue_operator)
        .service(revoke_operator);
    super::other_methods(
        cfg,
        &[
            "/tenants",
            "/tenants/{slug}",
            "/tenants/{slug}/tokens",
            "/tenants/{slug}/tokens/{id}",
            "/tenants/{slug}/events/purge",
            "/tenants/{slug}/schemas",
            "/tenants/{slug}/schemas/{urn}",
            "/tenants/{slug}/jobs",
            "/tenants/{slug}/jobs/{id}",
            "/audit",
            "/apps",
            "/apps/{id}",
            "/operators",
            "/operators/{id}",
            "/tenants/{slug}/journal",
            "/tenants/{slug}/brake",
            "/tenants/{slug}/brake/release",
            "/tenants/{slug}/brake/discard",
        ],
    );
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DryRunParams {
    /// `true`: check the change against the stored resources and report, storing nothing.
    #[serde(rename = "dryRun")]
    #[param(rename = "dryRun")]
    dry_run: Option<bool>,
}

/// Previews `change` (`dryRun=true`: 200 and the report) or applies it (202, the job that
/// re-indexes, and its `Location`).
async fn change_schema(
    ctx: &Context,
    actor: &AdminActor,
    slug: &str,
    dry_run: bool,
    change: schemas::Change,
) -> Result<HttpResponse, ApiError> {
    if dry_run {
        let preview = schemas::preview(ctx, slug, &change).await?;
        return Ok(response::scim(StatusCode::OK, &preview));
    }
    let applied = schemas::apply(ctx, &Actor::admin(&actor.name), slug, &change).await?;
    tracing::info!(actor = %actor.name, tenant = %slug, schema = %applied.job.schema,
        action = %applied.job.action, job = %applied.job.id, "schema extension changed");
    let mut answer = response::scim(StatusCode::ACCEPTED, &applied);
    let location = format!(
        "{}/admin/v1/tenants/{slug}/jobs/{}",
        ctx.public_url.as_str().trim_end_matches('/'),
        applied.job.id
    );
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&location) {
        answer
            .headers_mut()
            .insert(actix_web::http::header::LOCATION, value);
    }
    Ok(answer)
}

/// Registers a schema extension (custom attributes) for the tenant. From the answer on,
/// writes type its values; the values already stored under its URN become filterable and
/// sortable as the re-index job (`Location`) goes through them, and those that do not fit
/// are reported by the job, never changed. `dryRun=true` reports what the registration
/// would find, storing nothing.
#[utoipa::path(
    operation_id = "registerSchema",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug."), DryRunParams),
    request_body(content = super::openapi::SchemaDefinition, content_type = "application/json"),
    responses(
        (status = 200, description = "Dry run: what the registration would find", content_type = SCIM, body = super::openapi::SchemaPreview),
        (status = 202, description = "Registered; the re-index job, also at `Location`", content_type = SCIM, body = super::openapi::SchemaChangeAccepted,
            headers(("Location" = String, description = "The job"))),
        (status = "default", description = "A SCIM error (400 invalidValue, 401, 404, 409 already registered)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/tenants/{slug}/schemas")]
async fn register_schema(
    ctx: web::Data<Context>,
    actor: AdminActor,
    slug: web::Path<String>,
    query: web::Query<DryRunParams>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let change = schemas::Change::Register(body.0);
    change_schema(&ctx, &actor, &slug, query.dry_run.unwrap_or(false), change).await
}

/// One registered extension of the tenant, as `/Schemas` serves it.
#[utoipa::path(
    operation_id = "getSchemaExtension",
    tag = "Admin",
    params(
        ("slug" = String, Path, description = "Tenant slug."),
        ("urn" = String, Path, description = "The extension's URN."),
    ),
    responses(
        (status = 200, description = "The extension", content_type = SCIM, body = super::openapi::DiscoveryDocument),
        (status = "default", description = "A SCIM error (401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/tenants/{slug}/schemas/{urn}")]
async fn get_schema(
    ctx: web::Data<Context>,
    _: AdminActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, urn) = path.into_inner();
    let schema = schemas::get(&ctx, &slug, &urn).await?;
    Ok(response::scim(StatusCode::OK, &schema))
}

/// Updates a registered extension: the new definition (same `id` and `resourceType`) may
/// add attributes and widen types — integer to decimal; dateTime, binary or reference to
/// string; single- to multi-valued — and change descriptions, `mutability`, `returned`
/// and `caseExact`, so every value that fit still fits. Any other change is a removal and
/// a new registration. Re-indexes as a registration does; `dryRun=true` only reports.
#[utoipa::path(
    operation_id = "updateSchema",
    tag = "Admin",
    params(
        ("slug" = String, Path, description = "Tenant slug."),
        ("urn" = String, Path, description = "The extension's URN."),
        DryRunParams,
    ),
    request_body(content = super::openapi::SchemaDefinition, content_type = "application/json"),
    responses(
        (status = 200, description = "Dry run: what the update would find", content_type = SCIM, body = super::openapi::SchemaPreview),
        (status = 202, description = "Updated; the re-index job, also at `Location`", content_type = SCIM, body = super::openapi::SchemaChangeAccepted,
            headers(("Location" = String, description = "The job"))),
        (status = "default", description = "A SCIM error (400 invalidValue: not a widening, or another id; 401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[put("/tenants/{slug}/schemas/{urn}")]
async fn update_schema(
    ctx: web::Data<Context>,
    actor: AdminActor,
    path: web::Path<(String, String)>,
    query: web::Query<DryRunParams>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let (slug, urn) = path.into_inner();
    let change = schemas::Change::Update(urn, body.0);
    change_schema(&ctx, &actor, &slug, query.dry_run.unwrap_or(false), change).await
}

/// Removes a registered extension. Values stored under its URN are kept and go on
/// travelling in events, untyped again (RFC 7643 §3.3 lets unknown extensions through);
/// the re-index job takes them out of filters and sorting. `dryRun=true` reports how many
/// resources hold such values.
#[utoipa::path(
    operation_id = "removeSchema",
    tag = "Admin",
    params(
        ("slug" = String, Path, description = "Tenant slug."),
        ("urn" = String, Path, description = "The extension's URN."),
        DryRunParams,
    ),
    responses(
        (status = 200, description = "Dry run: what the removal would untype", content_type = SCIM, body = super::openapi::SchemaPreview),
        (status = 202, description = "Removed; the re-index job, also at `Location`", content_type = SCIM, body = super::openapi::SchemaChangeAccepted,
            headers(("Location" = String, description = "The job"))),
        (status = "default", description = "A SCIM error (401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[delete("/tenants/{slug}/schemas/{urn}")]
async fn remove_schema(
    ctx: web::Data<Context>,
    actor: AdminActor,
    path: web::Path<(String, String)>,
    query: web::Query<DryRunParams>,
) -> Result<HttpResponse, ApiError> {
    let (slug, urn) = path.into_inner();
    let change = schemas::Change::Remove(urn);
    change_schema(&ctx, &actor, &slug, query.dry_run.unwrap_or(false), change).await
}

/// The tenant's schema jobs (re-indexes after extension changes), newest first, at most 100.
#[utoipa::path(
    operation_id = "listSchemaJobs",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug.")),
    responses(
        (status = 200, description = "The jobs", content_type = SCIM, body = super::openapi::SchemaJobList),
        (status = "default", description = "A SCIM error (401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/tenants/{slug}/jobs")]
async fn list_jobs(
    ctx: web::Data<Context>,
    _: AdminActor,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let jobs = crate::service::jobs::list(&ctx, &slug).await?;
    Ok(response::scim(StatusCode::OK, &json!({ "jobs": jobs })))
}

/// One schema job: its state and progress (`processed` of `total`) and the resources
/// whose values do not fit.
#[utoipa::path(
    operation_id = "getSchemaJob",
    tag = "Admin",
    params(
        ("slug" = String, Path, description = "Tenant slug."),
        ("id" = String, Path, description = "The job's id."),
    ),
    responses(
        (status = 200, description = "The job", content_type = SCIM, body = super::openapi::SchemaJob),
        (status = "default", description = "A SCIM error (401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/tenants/{slug}/jobs/{id}")]
async fn get_job(
    ctx: web::Data<Context>,
    _: AdminActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    let job = crate::service::jobs::get(&ctx, &slug, &id).await?;
    Ok(response::scim(StatusCode::OK, &job))
}

/// The schema extensions the tenant registered.
#[utoipa::path(
    operation_id = "listSchemaExtensions",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug.")),
    responses(
        (status = 200, description = "The extensions, as /Schemas serves them", content_type = SCIM, body = super::openapi::SchemaList),
        (status = "default", description = "A SCIM error (401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/tenants/{slug}/schemas")]
async fn list_schemas(
    ctx: web::Data<Context>,
    _: AdminActor,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let list = schemas::list(&ctx, &slug).await?;
    Ok(response::scim(StatusCode::OK, &json!({ "schemas": list })))
}

/// `POST /admin/v1/tenants/{slug}/events/purge`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PurgeRequest)]
struct PurgeEvents {
    /// `Users/{id}` or `Groups/{id}`.
    #[validate(length(min = 3, max = 300))]
    #[schema(
        min_length = 3,
        max_length = 300,
        pattern = "^(Users|Groups)/[^\\u0000]+$"
    )]
    subject: String,
}

/// Erasure: redacts the data of every retained event about a subject (GDPR requests).
#[utoipa::path(
    operation_id = "purgeEvents",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug.")),
    request_body(content = PurgeEvents, content_type = "application/json"),
    responses(
        (status = 200, description = "What was redacted", content_type = SCIM, body = super::openapi::PurgeResult),
        (status = "default", description = "A SCIM error (400, 401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/tenants/{slug}/events/purge")]
async fn purge_events(
    ctx: web::Data<Context>,
    actor: AdminActor,
    slug: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: PurgeEvents = parse(body)?;
    let redacted =
        events::purge_subject(&ctx, &Actor::admin(&actor.name), &slug, &input.subject).await?;
    tracing::info!(actor = %actor.name, tenant = %slug, redacted, "events purged");
    Ok(response::scim(
        StatusCode::OK,
        &json!({ "subject": input.subject, "redacted": redacted }),
    ))
}

#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only this tenant's entries.
    #[validate(length(min = 1, max = 63))]
    #[param(min_length = 1, max_length = 63)]
    tenant: Option<String>,
    /// The last entry id of the previous page.
    #[validate(length(min = 1, max = 36))]
    #[param(min_length = 1, max_length = 36)]
    after: Option<String>,
    /// 1 to 1000 (default 100).
    #[validate(range(min = 1, max = 1000))]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

/// The audit log of admin actions, oldest first; `after` (the last id seen) pages it.
#[utoipa::path(
    operation_id = "listAudit",
    tag = "Admin",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", content_type = SCIM, body = super::openapi::AuditPage),
        (status = "default", description = "A SCIM error (400, 401)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/audit")]
async fn list_audit(
    ctx: web::Data<Context>,
    _: AdminActor,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    query.validate().map_err(|_| {
        ApiError::Scim(ScimError::invalid_value(
            "`limit` must be 1 to 1000, `after` an entry id, `tenant` a slug",
        ))
    })?;
    let limit = query.limit.unwrap_or(100);
    let entries = audit::list(&ctx, query.tenant.as_deref(), query.after.as_deref(), limit).await?;
    let next = (entries.len() as u64 == limit)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    Ok(response::scim(
        StatusCode::OK,
        &json!({ "entries": entries, "next": next }),
    ))
}

/// `POST /admin/v1/tenants`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    #[schema(value_type = String, pattern = "^[a-z0-9-]{1,63}$")]
    slug: TenantSlug,
}

/// `POST /admin/v1/tenants/{slug}/tokens`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
struct IssueToken {
    /// 1 to 100 characters, not only spaces (kept trimmed).
    #[schema(
        value_type = String,
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    name: TokenName,
    /// Default `["scim"]`.
    #[serde(default)]
    #[schema(value_type = Vec<ScopeName>, inline)]
    scopes: Vec<Scope>,
    /// RFC 3339 instant in the future, in the years 0000 to 9999.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// A tenant slug in a request body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^[a-z0-9-]{1,63}$")]
struct SlugText(String);

/// A token's scope (`domain::Scope`; another is 400 `invalidValue`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
enum ScopeName {
    #[schema(rename = "scim")]
    Scim,
    #[schema(rename = "events:read")]
    EventsRead,
}

/// 201 with a credential just issued and its secret, shown this once.
pub(super) fn issued(
    info: &impl serde::Serialize,
    secret: &secrecy::SecretString,
) -> Result<HttpResponse, ApiError> {
    let mut body =
        serde_json::to_value(info).map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    body["token"] = json!(secret.expose_secret());
    Ok(response::scim(StatusCode::CREATED, &body))
}

/// A request body as `T`: a value a domain type's constructor refuses (a slug, a token
/// name, a scope) is 400 `invalidValue` with the constructor's reason; a body of the wrong
/// shape (a missing, unknown or mistyped field) is `invalidSyntax`.
pub(super) fn parse<T: serde::de::DeserializeOwned + Validate>(
    body: JsonBody,
) -> Result<T, ApiError> {
    let value: T = serde_json::from_value(body.0).map_err(|e| {
        let detail = e.to_string();
        ApiError::Scim(if is_shape_error(&detail) {
            ScimError::invalid_syntax(detail)
        } else {
            ScimError::invalid_value(detail)
        })
    })?;
    value
        .validate()
        .map_err(|e| ApiError::Scim(ScimError::invalid_value(e.to_string())))?;
    Ok(value)
}

/// Whether serde's message says the body's shape is wrong, rather than a constructor
/// refusing a value (serde's own messages begin with these words; a constructor's never do).
fn is_shape_error(detail: &str) -> bool {
    [
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
        "unknown field",
        "missing field",
        "duplicate field",
    ]
    .iter()
    .any(|p| detail.starts_with(p))
}

/// Creates a tenant; its SCIM base URL is /scim/v2/{slug}.
#[utoipa::path(
    operation_id = "createTenant",
    tag = "Admin",
    request_body(content = CreateTenant, content_type = "application/json"),
    responses(
        (status = 201, description = "The tenant", content_type = SCIM, body = super::openapi::Tenant),
        (status = "default", description = "A SCIM error (400, 401, 409 slug taken)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/tenants")]
async fn create_tenant(
    ctx: web::Data<Context>,
    actor: AdminActor,
    correlation: Option<Correlation>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: CreateTenant = parse(body)?;
    let acting = Actor::admin(&actor.name).in_request(correlation);
    let tenant = tenants::create_tenant(&ctx, &acting, input.slug.as_str()).await?;
    tracing::info!(actor = %actor.name, tenant = %tenant.slug, "tenant created");
    Ok(response::scim(StatusCode::CREATED, &tenant))
}

/// Lists every tenant, deleted ones included.
#[utoipa::path(
    operation_id = "listTenants",
    tag = "Admin",
    responses(
        (status = 200, description = "The tenants", content_type = SCIM, body = super::openapi::TenantList),
        (status = "default", description = "A SCIM error (401)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/tenants")]
async fn list_tenants(ctx: web::Data<Context>, _: AdminActor) -> Result<HttpResponse, ApiError> {
    let tenants = tenants::list_tenants(&ctx).await?;
    Ok(response::scim(
        StatusCode::OK,
        &json!({ "tenants": tenants }),
    ))
}

/// Reads a live tenant.
#[utoipa::path(
    operation_id = "getTenant",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug.")),
    responses(
        (status = 200, description = "The tenant", content_type = SCIM, body = super::openapi::Tenant),
        (status = "default", description = "A SCIM error (400, 401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/tenants/{slug}")]
async fn get_tenant(
    ctx: web::Data<Context>,
    _: AdminActor,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenants::get_tenant(&ctx, &slug).await?;
    Ok(response::scim(StatusCode::OK, &tenant))
}

/// Deletes a tenant: its tokens fail at once; its data is purged in the background, then `scimbus.tenant.deleted` is emitted.
#[utoipa::path(
    operation_id = "deleteTenant",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug.")),
    responses(
        (status = 204, description = "Deleted"),
        (status = "default", description = "A SCIM error (400, 401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[delete("/tenants/{slug}")]
async fn delete_tenant(
    ctx: web::Data<Context>,
    actor: AdminActor,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    tenants::delete_tenant(&ctx, &Actor::admin(&actor.name), &slug).await?;
    tracing::info!(actor = %actor.name, tenant = %slug, "tenant deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// Issues a token; its secret is in this response only.
#[utoipa::path(
    operation_id = "issueToken",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug.")),
    request_body(content = IssueToken, content_type = "application/json"),
    responses(
        (status = 201, description = "The token with its secret", content_type = SCIM, body = super::openapi::IssuedToken),
        (status = "default", description = "A SCIM error (400, 401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/tenants/{slug}/tokens")]
async fn issue_token(
    ctx: web::Data<Context>,
    actor: AdminActor,
    slug: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: IssueToken = parse(body)?;
    let expires_at = expiry(input.expires_at.as_deref())?;
    let request = tenants::TokenRequest {
        name: input.name.as_str().to_owned(),
        scopes: input.scopes,
        expires_at,
    };
    let (info, secret) =
        tenants::issue_token(&ctx, &Actor::admin(&actor.name), &slug, request).await?;
    tracing::info!(actor = %actor.name, tenant = %slug, token = %info.id, "token issued");
    issued(&info, &secret)
}

#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct JournalParams {
    /// Entries at or after this RFC 3339 instant.
    #[param(format = DateTime)]
    since: Option<String>,
    /// A status (`409`) or a class (`4xx`).
    #[param(pattern = "^\\s*([1-5](xx|XX)|[1-5][0-9][0-9])\\s*$")]
    status: Option<String>,
    /// Only this method.
    #[param(inline, value_type = Option<JournalMethod>)]
    method: Option<String>,
    /// Entries older than this entry id (the previous page's `next`).
    before: Option<String>,
    /// 1 to 1000 (default 100).
    #[validate(range(min = 1, max = 1000))]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

/// A SCIM request method.
#[derive(Debug, ToSchema)]
#[allow(dead_code, clippy::upper_case_acronyms)]
enum JournalMethod {
    GET,
    POST,
    PUT,
    PATCH,
    DELETE,
}

/// The tenant's request journal, newest first: what its IdP sent and was answered, bodies
/// redacted (passwords, `writeOnly` values and bearer tokens never kept).
#[utoipa::path(
    operation_id = "readJournal",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug."), JournalParams),
    responses(
        (status = 200, description = "A page of entries", content_type = SCIM, body = super::openapi::JournalPage),
        (status = "default", description = "A SCIM error (400, 401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/tenants/{slug}/journal")]
async fn read_journal(
    ctx: web::Data<Context>,
    _: AdminActor,
    slug: web::Path<String>,
    query: web::Query<JournalParams>,
) -> Result<HttpResponse, ApiError> {
    let bad = |what: &str| ApiError::Scim(ScimError::invalid_value(what.to_owned()));
    query
        .validate()
        .map_err(|_| bad("`limit` must be 1 to 1000"))?;
    let since = query
        .since
        .as_deref()
        .map(|s| {
            time::parse(s)
                .map(time::format)
                .ok_or_else(|| bad("`since` must be an RFC 3339 instant"))
        })
        .transpose()?;
    let status = query
        .status
        .as_deref()
        .map(|s| {
            journal::status_range(s)
                .ok_or_else(|| bad("`status` must be a status such as 409 or a class such as 4xx"))
        })
        .transpose()?;
    let method = query.method.as_deref().map(str::trim);
    if method.is_some_and(|m| !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m)) {
        return Err(bad("`method` must be GET, POST, PUT, PATCH or DELETE"));
    }
    let limit = query.limit.unwrap_or(100);
    let entries = journal::list(
        &ctx,
        &slug,
        &crate::domain::JournalQuery {
            id: None,
            before: query.before.as_deref(),
            since: since.as_deref(),
            status,
            method,
            limit,
        },
    )
    .await?;
    let next = (entries.len() as u64 == limit)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    Ok(response::scim(
        StatusCode::OK,
        &json!({ "entries": entries, "next": next }),
    ))
}

/// `POST /admin/v1/operators`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
struct IssueOperator {
    /// The operator: 1 to 100 characters, not only spaces (kept trimmed), not `bootstrap`
    /// (the token of `SCIMBUS_ADMIN_TOKEN`).
    #[schema(
        value_type = String,
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    name: TokenName,
    /// RFC 3339 instant in the future, in the years 0000 to 9999.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// Issues an admin token for a named operator; its secret is in this response only.
/// Every admin action taken with it is audited under `admin:<name>`.
#[utoipa::path(
    operation_id = "issueOperatorToken",
    tag = "Admin",
    request_body(content = IssueOperator, content_type = "application/json"),
    responses(
        (status = 201, description = "The token with its secret", content_type = SCIM, body = super::openapi::IssuedOperatorToken),
        (status = "default", description = "A SCIM error (400, 401)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/operators")]
async fn issue_operator(
    ctx: web::Data<Context>,
    actor: AdminActor,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: IssueOperator = parse(body)?;
    let expires_at = expiry(input.expires_at.as_deref())?;
    let (info, secret) = operators::issue(
        &ctx,
        &Actor::admin(&actor.name),
        input.name.as_str(),
        expires_at,
    )
    .await?;
    tracing::info!(actor = %actor.name, operator = %info.name, token = %info.id, "admin token issued");
    issued(&info, &secret)
}

/// Lists the admin tokens of every operator (the bootstrap one included), never their
/// secrets.
#[utoipa::path(
    operation_id = "listOperatorTokens",
    tag = "Admin",
    responses(
        (status = 200, description = "The admin tokens", content_type = SCIM, body = super::openapi::OperatorTokenList),
        (status = "default", description = "A SCIM error (401)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/operators")]
async fn list_operators(ctx: web::Data<Context>, _: AdminActor) -> Result<HttpResponse, ApiError> {
    let tokens = operators::list(&ctx).await?;
    Ok(response::scim(StatusCode::OK, &json!({ "tokens": tokens })))
}

/// Revokes an admin token (the bootstrap one included, which stays revoked when `serve`
/// starts again with the same `SCIMBUS_ADMIN_TOKEN`): its next request gets 401.
#[utoipa::path(
    operation_id = "revokeOperatorToken",
    tag = "Admin",
    params(("id" = String, Path, description = "Admin token id.")),
    responses(
        (status = 204, description = "Revoked"),
        (status = "default", description = "A SCIM error (401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[delete("/operators/{id}")]
async fn revoke_operator(
    ctx: web::Data<Context>,
    actor: AdminActor,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    operators::revoke(&ctx, &Actor::admin(&actor.name), &id).await?;
    tracing::info!(actor = %actor.name, token = %id, "admin token revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// Lists a tenant's tokens, never their secrets.
#[utoipa::path(
    operation_id = "listTokens",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug.")),
    responses(
        (status = 200, description = "The tokens", content_type = SCIM, body = super::openapi::TokenList),
        (status = "default", description = "A SCIM error (400, 401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/tenants/{slug}/tokens")]
async fn list_tokens(
    ctx: web::Data<Context>,
    _: AdminActor,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tokens = tenants::list_tokens(&ctx, &slug).await?;
    Ok(response::scim(StatusCode::OK, &json!({ "tokens": tokens })))
}

/// Revokes a token: the next request with it gets 401.
#[utoipa::path(
    operation_id = "revokeToken",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug."), ("id" = String, Path, description = "Token id.")),
    responses(
        (status = 204, description = "Revoked"),
        (status = "default", description = "A SCIM error (400, 401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[delete("/tenants/{slug}/tokens/{id}")]
async fn revoke_token(
    ctx: web::Data<Context>,
    actor: AdminActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    tenants::revoke_token(&ctx, &Actor::admin(&actor.name), &slug, &id).await?;
    tracing::info!(actor = %actor.name, tenant = %slug, token = %id, "token revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /admin/v1/apps`: name the tenants, or set `all_tenants` (one of the two).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
struct IssueApp {
    /// 1 to 100 characters, not only spaces (kept trimmed).
    #[schema(
        value_type = String,
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    name: TokenName,
    /// Every tenant, those created later included (default false).
    #[serde(default)]
    all_tenants: bool,
    /// 1 to 10 000 live tenant slugs, when not `all_tenants`.
    #[schema(min_items = 1, max_items = 10_000, inline)]
    tenants: Option<Vec<SlugText>>,
    /// RFC 3339 instant in the future, in the years 0000 to 9999.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

fn expiry(value: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    value
        .map(|e| {
            time::parse(e).ok_or_else(|| {
                ApiError::Scim(ScimError::invalid_value(
                    "`expires_at` must be an RFC 3339 instant in the years 0000 to 9999 (UTC)",
                ))
            })
        })
        .transpose()
}

/// Issues an application credential: it reads the events of the tenants named, or of every
/// tenant (`all_tenants`, those created later included), and nothing else; its secret is in
/// this response only.
#[utoipa::path(
    operation_id = "issueApp",
    tag = "Admin",
    request_body(content = IssueApp, content_type = "application/json"),
    responses(
        (status = 201, description = "The credential with its secret", content_type = SCIM, body = super::openapi::IssuedApp),
        (status = "default", description = "A SCIM error (400 invalidValue: no tenants, both, an unknown tenant; 401)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/apps")]
async fn issue_app(
    ctx: web::Data<Context>,
    actor: AdminActor,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: IssueApp = parse(body)?;
    let tenants = match (input.all_tenants, input.tenants) {
        (true, None) => TenantScope::All,
        (false, Some(slugs)) => TenantScope::Only(slugs.into_iter().map(|s| s.0).collect()),
        _ => {
            return Err(ApiError::Scim(ScimError::invalid_value(
                "give `tenants` (a list of slugs) or `all_tenants: true`, not both",
            )));
        }
    };
    let request = AppRequest {
        name: input.name.as_str().to_owned(),
        tenants,
        expires_at: expiry(input.expires_at.as_deref())?,
    };
    let (info, secret) = apps::issue(&ctx, &Actor::admin(&actor.name), request).await?;
    tracing::info!(actor = %actor.name, app = %info.id, "application credential issued");
    issued(&info, &secret)
}

/// Lists the application credentials, never their secrets.
#[utoipa::path(
    operation_id = "listApps",
    tag = "Admin",
    responses(
        (status = 200, description = "The credentials", content_type = SCIM, body = super::openapi::AppList),
        (status = "default", description = "A SCIM error (401)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/apps")]
async fn list_apps(ctx: web::Data<Context>, _: AdminActor) -> Result<HttpResponse, ApiError> {
    let list = apps::list(&ctx).await?;
    Ok(response::scim(StatusCode::OK, &json!({ "apps": list })))
}

/// Revokes an application credential: its next request gets 401.
#[utoipa::path(
    operation_id = "revokeApp",
    tag = "Admin",
    params(("id" = String, Path, description = "Credential id.")),
    responses(
        (status = 204, description = "Revoked"),
        (status = "default", description = "A SCIM error (401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[delete("/apps/{id}")]
async fn revoke_app(
    ctx: web::Data<Context>,
    actor: AdminActor,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    apps::revoke(&ctx, &Actor::admin(&actor.name), &id).await?;
    tracing::info!(actor = %actor.name, app = %id, "application credential revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// The tenant's mass-deprovisioning brake: its settings, the window's counts, and what it
/// holds (events by type, first and last, the thresholds that tripped).
#[utoipa::path(
    operation_id = "showBrake",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug.")),
    responses(
        (status = 200, description = "The brake", content_type = SCIM, body = crate::service::brake::BrakeView),
        (status = "default", description = "A SCIM error (400, 401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/tenants/{slug}/brake")]
async fn show_brake(
    ctx: web::Data<Context>,
    _: AdminActor,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(response::scim(
        StatusCode::OK,
        &brake::show(&ctx, &slug).await?,
    ))
}

/// Sets the tenant's brake settings (thresholds, window, on or off, auto-release).
#[utoipa::path(
    operation_id = "configureBrake",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug.")),
    request_body(content = crate::domain::BrakeSettings, content_type = "application/json"),
    responses(
        (status = 200, description = "The brake", content_type = SCIM, body = crate::service::brake::BrakeView),
        (status = "default", description = "A SCIM error (400 invalidValue/invalidSyntax, 401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[put("/tenants/{slug}/brake")]
async fn configure_brake(
    ctx: web::Data<Context>,
    actor: AdminActor,
    slug: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let settings: crate::domain::BrakeSettings = serde_json::from_value(body.0)
        .map_err(|e| ApiError::Scim(ScimError::invalid_syntax(e.to_string())))?;
    let view = brake::configure(&ctx, &Actor::admin(&actor.name), &slug, Some(settings)).await?;
    Ok(response::scim(StatusCode::OK, &view))
}

/// Releases what the brake holds: every held event flows, in order.
#[utoipa::path(
    operation_id = "releaseBrake",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug.")),
    responses(
        (status = 200, description = "Released", content_type = SCIM, body = crate::service::brake::Released),
        (status = "default", description = "A SCIM error (401, 404, 409 nothing held)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/tenants/{slug}/brake/release")]
async fn release_brake(
    ctx: web::Data<Context>,
    actor: AdminActor,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let done = brake::release(&ctx, &Actor::admin(&actor.name), &slug).await?;
    Ok(response::scim(StatusCode::OK, &done))
}

/// Discards the held deprovisioning events (allowed once the IdP has corrected every one
/// of their resources: reactivated, re-added) and releases the rest in order.
#[utoipa::path(
    operation_id = "discardBrake",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug.")),
    responses(
        (status = 200, description = "Discarded and released", content_type = SCIM, body = crate::service::brake::Released),
        (status = "default", description = "A SCIM error (401, 404, 409 nothing held or resources still deprovisioned)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/tenants/{slug}/brake/discard")]
async fn discard_brake(
    ctx: web::Data<Context>,
    actor: AdminActor,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let done = brake::discard(&ctx, &Actor::admin(&actor.name), &slug).await?;
    Ok(response::scim(StatusCode::OK, &done))
}
