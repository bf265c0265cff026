//! The OpenAPI document (utoipa): the handlers' `#[utoipa::path]` annotations are collected
//! by `utoipa-actix-web` from the same `configure` functions that mount them, so the
//! document cannot list a route the server lacks. This module holds what the handlers'
//! annotations refer to: the wire shapes of the bodies, the path and query parameters, the
//! bearer scheme, and the document's frame. `scimbus openapi` prints it;
//! `openapi/openapi.json` is the committed copy a test compares with the code.

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

/// Media type of every SCIM body.
pub const SCIM: &str = "application/scim+json";

/// The document's frame: metadata, the bearer scheme and tags. Paths and the schemas they
/// use come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "scimbus",
        description = "Multi-tenant SCIM 2.0 service provider (RFC 7643, RFC 7644) that \
                       publishes every change as an event. SCIM under /scim/v2/{tenant}, the \
                       events pull API under /events/v1/{tenant}, administration under \
                       /admin/v1, health and metrics at the root.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerScheme),
    security(("bearer" = [])),
    tags(
        (name = "SCIM Users", description = "RFC 7644 §3 on Users"),
        (name = "SCIM Groups", description = "RFC 7644 §3 on Groups"),
        (name = "SCIM discovery", description = "RFC 7644 §4"),
        (name = "Events", description = "Pull API and resync snapshots (token scope events:read)"),
        (name = "Admin", description = "Tenants, tokens, erasure, audit log (admin token)"),
        (name = "Operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A tenant token (`scimbus_t_…`, scope `scim` or `events:read`) on \
                         /scim and /events; a named admin token on /admin.",
                    ))
                    .build(),
            ),
        );
    }
}

/// `{tenant}`: the tenant slug.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantPath {
    /// Tenant slug, `[a-z0-9-]{1,63}`.
    #[param(pattern = "^[a-z0-9-]{1,63}$")]
    pub tenant: String,
}

/// SCIM read and list parameters (RFC 7644 §3.4.2, §3.9; RFC 9865). Unknown parameters
/// are ignored.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, non_snake_case)]
pub struct ReadQuery {
    /// RFC 7644 §3.4.2.2 filter, e.g. `userName eq "bjensen"`.
    filter: Option<String>,
    /// 1-based index of the first result (index paging).
    startIndex: Option<i64>,
    /// Results per page, at most 1000 (larger is clamped); 0 gives only `totalResults`.
    #[param(minimum = 0)]
    count: Option<i64>,
    /// Comma-separated attributes to return.
    attributes: Option<String>,
    /// Comma-separated attributes not to return.
    excludedAttributes: Option<String>,
    /// Attribute to sort by.
    sortBy: Option<String>,
    #[param(inline)]
    sortOrder: Option<SortOrder>,
    /// RFC 9865 cursor; empty asks for the first cursor page.
    cursor: Option<String>,
}

/// RFC 7644 §3.4.2.3 `sortOrder`.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_camel_case_types)]
pub enum SortOrder {
    ascending,
    descending,
}

/// `attributes` / `excludedAttributes` on single-resource operations.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, non_snake_case)]
pub struct ProjectionQuery {
    /// Comma-separated attributes to return.
    attributes: Option<String>,
    /// Comma-separated attributes not to return.
    excludedAttributes: Option<String>,
}

/// A SCIM error (RFC 7644 §3.12); every failure of every route has this body.
#[derive(Debug, ToSchema)]
#[schema(as = ScimError)]
#[allow(dead_code, non_snake_case)]
pub struct ScimErrorBody {
    /// `["urn:ietf:params:scim:api:messages:2.0:Error"]`.
    schemas: Vec<String>,
    /// The HTTP status, as a string.
    status: String,
    /// RFC 7644 §3.12 `scimType`, where one applies.
    scimType: Option<String>,
    detail: Option<String>,
}

/// `meta` (RFC 7643 §3.1), written by the server.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct Meta {
    resourceType: Option<String>,
    created: Option<String>,
    lastModified: Option<String>,
    location: Option<String>,
    /// `W/"<version>"`, also the `ETag` header.
    version: Option<String>,
}

/// A SCIM User (RFC 7643 §4.1). Attributes scimbus does not know, and extensions, are kept
/// as sent, so the object is open.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct User {
    schemas: Vec<String>,
    /// Server-issued; ignored in requests.
    id: Option<String>,
    externalId: Option<String>,
    /// Required in POST and PUT bodies; a response omits it only when `attributes` or
    /// `excludedAttributes` leave it out.
    userName: Option<String>,
    displayName: Option<String>,
    active: Option<bool>,
    #[schema(value_type = Option<Object>)]
    name: Option<Value>,
    #[schema(value_type = Option<Vec<Object>>)]
    emails: Option<Value>,
    /// Computed: the groups the user is in, directly or not. Ignored in requests.
    #[schema(value_type = Option<Vec<Object>>)]
    groups: Option<Value>,
    meta: Option<Meta>,
}

/// A group member (RFC 7643 §4.2).
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct GroupMember {
    /// The member's id.
    value: String,
    /// `User` or `Group`.
    r#type: Option<String>,
    #[schema(rename = "$ref")]
    reference: Option<String>,
    /// Server-derived.
    display: Option<String>,
}

/// A SCIM Group (RFC 7643 §4.2); open like User.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct Group {
    schemas: Vec<String>,
    id: Option<String>,
    externalId: Option<String>,
    /// Required in POST and PUT bodies; a response omits it only when `attributes` or
    /// `excludedAttributes` leave it out.
    displayName: Option<String>,
    members: Option<Vec<GroupMember>>,
    meta: Option<Meta>,
}

/// A SCIM ListResponse (RFC 7644 §3.4.2; cursors RFC 9865).
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct ListResponse {
    schemas: Vec<String>,
    totalResults: i64,
    startIndex: Option<i64>,
    itemsPerPage: i64,
    nextCursor: Option<String>,
    previousCursor: Option<String>,
    /// The resources (Users, Groups, ResourceTypes or Schemas), projected as asked.
    #[schema(value_type = Vec<Object>)]
    Resources: Option<Value>,
}

/// One PATCH operation (RFC 7644 §3.5.2). Okta's and Entra's spellings (`Replace`,
/// path-less values, `"False"`) are accepted.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct PatchOperation {
    /// `add`, `remove` or `replace` (any case).
    op: String,
    path: Option<String>,
    /// Any JSON value (an attribute's value, an object of them, a member list).
    value: Option<Value>,
}

/// A PatchOp request (RFC 7644 §3.5.2).
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct PatchOp {
    /// `["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`.
    schemas: Vec<String>,
    Operations: Vec<PatchOperation>,
}

/// A SearchRequest (RFC 7644 §3.4.3): the list parameters as a body.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct SearchRequest {
    /// `["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]`.
    schemas: Vec<String>,
    filter: Option<String>,
    startIndex: Option<i64>,
    count: Option<i64>,
    attributes: Option<Vec<String>>,
    excludedAttributes: Option<Vec<String>>,
    sortBy: Option<String>,
    #[schema(inline)]
    sortOrder: Option<SortOrder>,
    cursor: Option<String>,
}

/// One operation of a BulkRequest (RFC 7644 §3.7).
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct BulkOperation {
    /// `POST`, `PUT`, `PATCH` or `DELETE`.
    method: String,
    /// Required for POST; other operations refer to the created resource as `bulkId:<it>`.
    bulkId: Option<String>,
    /// `If-Match` for this operation.
    version: Option<String>,
    /// `/Users`, `/Groups`, `/Users/{id}`, `/Groups/{id}` (the id may be `bulkId:<id>`).
    path: String,
    /// The resource (POST, PUT) or PatchOp (PATCH).
    #[schema(value_type = Option<Object>)]
    data: Option<Value>,
}

/// A BulkRequest (RFC 7644 §3.7).
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct BulkRequest {
    /// `["urn:ietf:params:scim:api:messages:2.0:BulkRequest"]`.
    schemas: Vec<String>,
    /// Stop after this many errors.
    failOnErrors: Option<i64>,
    Operations: Vec<BulkOperation>,
}

/// The result of one operation.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct BulkResult {
    method: String,
    bulkId: Option<String>,
    version: Option<String>,
    location: Option<String>,
    /// The HTTP status, as a string.
    status: String,
    /// The SCIM error of a failed operation.
    response: Option<ScimErrorBody>,
}

/// A BulkResponse (RFC 7644 §3.7).
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct BulkResponse {
    /// `["urn:ietf:params:scim:api:messages:2.0:BulkResponse"]`.
    schemas: Vec<String>,
    Operations: Vec<BulkResult>,
}

/// A discovery document (ServiceProviderConfig, ResourceType or Schema; RFC 7643 §5–7).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct DiscoveryDocument {
    schemas: Vec<String>,
}

/// A tenant on the admin API.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct Tenant {
    slug: String,
    created_at: String,
    deleted_at: Option<String>,
    purged_at: Option<String>,
}

/// `POST /admin/v1/tenants`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CreateTenant {
    /// `[a-z0-9-]{1,63}`.
    slug: String,
}

/// The tenants.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TenantList {
    tenants: Vec<Tenant>,
}

/// A token as listed (never its secret).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct Token {
    id: String,
    name: String,
    /// `scim`, `events:read`.
    scopes: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    /// Recorded at most once a minute.
    last_used_at: Option<String>,
}

/// A token just issued: its secret, shown this once.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct IssuedToken {
    id: String,
    name: String,
    scopes: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
    /// The secret (`scimbus_t_…`).
    token: String,
}

/// `POST /admin/v1/tenants/{slug}/tokens`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct IssueToken {
    name: String,
    /// Default `["scim"]`.
    scopes: Option<Vec<String>>,
    /// RFC 3339 instant.
    expires_at: Option<String>,
}

/// A tenant's tokens.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TokenList {
    tokens: Vec<Token>,
}

/// An application credential as listed (never its secret).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct App {
    id: String,
    name: String,
    /// Reads every tenant, those created later included.
    all_tenants: bool,
    /// The slugs it reads (empty when `all_tenants`).
    tenants: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    /// Recorded at most once a minute.
    last_used_at: Option<String>,
}

/// An application credential just issued: its secret, shown this once.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct IssuedApp {
    id: String,
    name: String,
    all_tenants: bool,
    tenants: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
    /// The secret (`scimbus_app_…`).
    token: String,
}

/// `POST /admin/v1/apps`: name the tenants, or set `all_tenants`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct IssueApp {
    name: String,
    /// Every tenant, those created later included (default false).
    all_tenants: Option<bool>,
    /// 1 to 10 000 live tenant slugs, when not `all_tenants`.
    tenants: Option<Vec<String>>,
    /// RFC 3339 instant.
    expires_at: Option<String>,
}

/// The application credentials.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AppList {
    apps: Vec<App>,
}

/// One tenant of the pull API's listing.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ReadableTenant {
    tenant: String,
    /// Deleted: its events, ending with `scimbus.tenant.deleted`, stay readable by an
    /// application credential until retention removes the tenant.
    deleted: bool,
}

/// A page of the tenants a credential may read.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct TenantPage {
    tenants: Vec<ReadableTenant>,
    /// The credential covers every tenant, those created later included.
    allTenants: bool,
    /// The `after` of the next page (the last slug returned), null at the end.
    next: Option<String>,
    hasMore: bool,
}

/// `POST /admin/v1/tenants/{slug}/events/purge`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PurgeRequest {
    /// `Users/{id}` or `Groups/{id}`.
    subject: String,
}

/// What erasure did.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PurgeResult {
    subject: String,
    /// Events whose `data` was redacted now.
    redacted: u64,
}

/// A schema extension to register: RFC 7643 §7's schema format, plus the resource type
/// it extends.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct SchemaDefinition {
    /// The extension's URN, e.g. `urn:okta:acme:1.0:user:custom`.
    id: String,
    name: Option<String>,
    description: Option<String>,
    /// `User` (default) or `Group`.
    resourceType: Option<String>,
    /// 1 to 200 RFC 7643 §7 attribute definitions; none `required`.
    #[schema(min_items = 1, max_items = 200)]
    attributes: Vec<AttributeDefinition>,
}

/// An RFC 7643 §7 attribute definition.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct AttributeDefinition {
    /// A letter, then letters, digits, `-` or `_`.
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9_-]{0,127}$")]
    name: String,
    /// `string` (default), `boolean`, `decimal`, `integer`, `dateTime`, `binary`,
    /// `reference` or `complex`.
    r#type: Option<String>,
    multiValued: Option<bool>,
    caseExact: Option<bool>,
    description: Option<String>,
    /// `readWrite` (default), `readOnly`, `immutable` or `writeOnly`.
    mutability: Option<String>,
    /// `default` (default), `always`, `never` or `request`.
    returned: Option<String>,
    canonicalValues: Option<Vec<String>>,
    referenceTypes: Option<Vec<String>>,
    /// For `complex` attributes: their sub-attributes (not complex themselves).
    #[schema(value_type = Option<Vec<Object>>)]
    subAttributes: Option<Value>,
}

/// A resource whose stored value does not fit the registered extension.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NonConforming {
    id: String,
    detail: String,
}

/// What a registration did.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct SchemaRegistration {
    /// The schema as `/Schemas` now serves it.
    schema: DiscoveryDocument,
    /// Resources of the extended type re-indexed.
    checked: u64,
    nonConformingCount: u64,
    /// The first 100 of them.
    nonConforming: Vec<NonConforming>,
}

/// A tenant's registered extensions.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SchemaList {
    schemas: Vec<DiscoveryDocument>,
}

/// One audit log entry.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AuditEntry {
    id: String,
    at: String,
    /// `admin:<token name>` or `os:<user>`.
    actor: String,
    action: String,
    tenant: Option<String>,
    target: Option<String>,
    #[schema(value_type = Object)]
    detail: Value,
}

/// A page of the audit log.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AuditPage {
    entries: Vec<AuditEntry>,
    /// The `after` of the next page, null at the end.
    next: Option<String>,
}

/// A CloudEvents 1.0 envelope; `openapi/events/*.json` has one JSON Schema per type.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct Event {
    specversion: String,
    id: String,
    source: String,
    r#type: String,
    subject: String,
    time: String,
    tenant: String,
    /// 19 zero-padded digits.
    sequence: String,
    #[schema(value_type = Object)]
    data: Value,
}

/// A page of the pull API.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct EventPage {
    events: Vec<Event>,
    /// The `after` of the next request.
    next: i64,
    hasMore: bool,
}

/// A page of snapshots.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct SnapshotPage {
    events: Vec<Event>,
    /// The `after` of the next page, null at the end.
    next: Option<String>,
    hasMore: bool,
    /// The tenant's latest sequence when the read began.
    sequence: i64,
}

/// `/healthz`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct Health {
    status: String,
}

/// `/readyz`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct Ready {
    /// `ready` or `not ready`.
    status: String,
    database: bool,
    migrations: bool,
    #[schema(value_type = Object)]
    relay: BTreeMap<String, Value>,
}

/// The whole document, from the routes `http::configure` mounts (admin API included).
pub fn document() -> utoipa::openapi::OpenApi {
    use utoipa_actix_web::AppExt;
    let (_, api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(|cfg| super::configure(cfg, true))
        .split_for_parts();
    api
}

/// The document as committed in `openapi/openapi.json`: pretty JSON and a final newline.
pub fn document_json() -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(&document())?;
    text.push('\n');
    Ok(text)
}
