//! The OpenAPI document (utoipa): the handlers' `#[utoipa::path]` annotations are collected
//! by `utoipa-actix-web` from the same `configure` functions that mount them, so the
//! document cannot list a route the server lacks. This module holds what the handlers'
//! annotations refer to: the wire shapes of the bodies, the path and query parameters, the
//! bearer scheme, and the document's frame. `scimbus openapi` prints it;
//! `openapi/openapi.json` is the committed copy a test compares with the code.

pub(crate) mod refine;

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
        (name = "Security events", description = "RFC 9967 security event tokens: the signing keys (JWKS), RFC 8936 poll delivery (receiver credential), receivers and keys (admin token)"),
        (name = "Setup", description = "Customer setup links: the page a tenant's IdP admin opens with the link alone (HTML), its token reveal and connection check"),
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
    /// 1-based index of the first result (index paging); less than 1 counts as 1 (RFC 7644
    /// §3.4.2.4).
    startIndex: Option<i64>,
    /// Results per page, at most 1000 (larger is clamped); 0 gives only `totalResults`, and
    /// so does a negative value (RFC 7644 §3.4.2.4).
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

/// The body of POST and PUT on /Users: written by `refine` from the schema registry.
#[derive(Debug, ToSchema)]
pub struct UserRequest {}

/// The body of POST and PUT on /Groups: written by `refine` from the schema registry.
#[derive(Debug, ToSchema)]
pub struct GroupRequest {}

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
    #[schema(pattern = "^([Aa][Dd][Dd]|[Rr][Ee][Mm][Oo][Vv][Ee]|[Rr][Ee][Pp][Ll][Aa][Cc][Ee])$")]
    op: String,
    path: Option<String>,
    /// Any JSON value (an attribute's value, an object of them, a member list).
    value: Option<Value>,
}

/// What a PATCH operation needs besides its shape (`scim::patch::dialect`): `remove` a
/// `path` (RFC 7644 §3.5.2.2, else 400 `noTarget`); `add` and `replace` a `value`, which is an
/// object of attributes when there is no `path` (§3.5.2.1, §3.5.2.3). A blank path is none.
fn patch_operation_rules() -> Value {
    use refine::{NOT_BLANK, any_case};
    let path = serde_json::json!({ "required": ["path"], "properties": { "path": { "type": "string", "pattern": NOT_BLANK } } });
    serde_json::json!({ "allOf": [
        {
            "if": { "properties": { "op": { "pattern": any_case("remove") } } },
            "then": path,
        },
        {
            "if": { "properties": { "op": { "pattern": format!("{}|{}", any_case("add"), any_case("replace")) } } },
            "then": {
                "required": ["value"],
                "anyOf": [path, { "properties": { "value": { "type": "object" } } }],
            },
        },
    ] })
}

/// A PatchOp request (RFC 7644 §3.5.2).
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct PatchOp {
    /// `["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`.
    schemas: Vec<String>,
    #[schema(min_items = 1)]
    Operations: Vec<PatchOperation>,
}

/// A SearchRequest (RFC 7644 §3.4.3): the list parameters as a body.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct SearchRequest {
    /// May be left out; when present, it must contain the SearchRequest URN.
    schemas: Option<Vec<String>>,
    filter: Option<String>,
    startIndex: Option<i64>,
    count: Option<i64>,
    #[schema(inline)]
    attributes: Option<NameList>,
    #[schema(inline)]
    excludedAttributes: Option<NameList>,
    sortBy: Option<String>,
    #[schema(inline)]
    sortOrder: Option<SortOrder>,
    /// With a cursor (RFC 9865), `count` must not be negative.
    cursor: Option<String>,
}

/// Attribute names: a list, or one comma-separated string as in a query.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum NameList {
    List(Vec<String>),
    Text(String),
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
    /// Stop after this many errors (a positive integer).
    #[schema(minimum = 1)]
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

/// A tenant's tokens.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TokenList {
    tokens: Vec<Token>,
}

/// A tenant's setup links (never their addresses).
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct SetupLinkList {
    setupLinks: Vec<crate::service::setup::SetupLinkInfo>,
}

/// One request of a tenant's journal.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct JournalEntry {
    id: String,
    at: String,
    method: String,
    /// Path and query, as sent.
    target: String,
    status: i32,
    scimType: Option<String>,
    durationMs: i64,
    requestId: String,
    /// The name of the token the request came with.
    tokenName: String,
    /// `Users/{id}` or `Groups/{id}`, when the request was about one resource.
    subject: Option<String>,
    /// The request body as JSON text, redacted; or a note saying why it is not kept.
    requestBody: Option<String>,
    /// The response body as JSON text, redacted; or a note saying why it is not kept.
    responseBody: Option<String>,
}

/// A page of a tenant's journal, newest first.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct JournalPage {
    entries: Vec<JournalEntry>,
    /// The `before` of the next page, null at the end.
    next: Option<String>,
}

/// An operator's admin token as listed (never its secret).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct OperatorToken {
    id: String,
    /// The operator (`bootstrap` for the token of `SCIMBUS_ADMIN_TOKEN`).
    name: String,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    /// Not recorded for admin tokens: always null.
    last_used_at: Option<String>,
}

/// An admin token just issued: its secret, shown this once.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct IssuedOperatorToken {
    id: String,
    name: String,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
    /// The secret (`scimbus_a_…`).
    token: String,
}

/// The admin tokens.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct OperatorTokenList {
    tokens: Vec<OperatorToken>,
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

/// The application credentials.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AppList {
    apps: Vec<App>,
}

/// A SET receiver just registered: a poll receiver's credential, shown this once.
#[derive(Debug, serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct IssuedReceiver {
    #[serde(flatten)]
    receiver: crate::service::sets::ReceiverInfo,
    /// The credential (`scimbus_r_…`) for `POST /sets/v1/poll` (poll receivers only).
    token: Option<String>,
}

/// An application credential's SET receiver just registered: a polling one's credential,
/// shown this once.
#[derive(Debug, serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct IssuedGroup {
    #[serde(flatten)]
    receiver: crate::service::set_groups::GroupInfo,
    /// The credential (`scimbus_r_…`) for `POST /sets/v1/poll` (polling receivers only).
    token: Option<String>,
}

/// A tenant's SET receivers.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ReceiverList {
    receivers: Vec<crate::service::sets::ReceiverInfo>,
}

/// An application credential's SET receivers.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct GroupList {
    receivers: Vec<crate::service::set_groups::GroupInfo>,
}

/// A push receiver's parked SETs.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ParkedSetList {
    parked: Vec<crate::service::sets::ParkedSet>,
}

/// The SET signing keys.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SetKeyList {
    keys: Vec<crate::service::sets::KeyInfo>,
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
    /// The extension's URN, e.g. `urn:okta:acme:1.0:user:custom`: no white space, at most
    /// 300 bytes, not one of the built-in schemas.
    #[schema(pattern = "^[Uu][Rr][Nn]:[^\\s\\u0000]*$", max_length = 300)]
    id: String,
    name: Option<String>,
    description: Option<String>,
    /// `User` (default) or `Group`.
    #[schema(inline)]
    resourceType: Option<ExtendedType>,
    /// 1 to 200 RFC 7643 §7 attribute definitions; none `required`; names differ without
    /// regard to case.
    #[schema(min_items = 1, max_items = 200)]
    attributes: Vec<AttributeDefinition>,
}

/// The resource type an extension extends.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub enum ExtendedType {
    User,
    Group,
}

/// An RFC 7643 §7 attribute definition.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct AttributeDefinition {
    /// A letter, then letters, digits, `-` or `_`.
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9_-]{0,127}$")]
    name: String,
    /// Default `string`.
    #[schema(inline)]
    r#type: Option<AttributeType>,
    multiValued: Option<bool>,
    /// Extension attributes cannot be required: `false` or left out.
    required: Option<bool>,
    caseExact: Option<bool>,
    description: Option<String>,
    /// Default `readWrite`.
    #[schema(inline)]
    mutability: Option<AttributeMutability>,
    /// Default `default`.
    #[schema(inline)]
    returned: Option<AttributeReturned>,
    /// Only `none` (uniqueness of extension values is not enforced).
    #[schema(inline)]
    uniqueness: Option<AttributeUniqueness>,
    canonicalValues: Option<Vec<String>>,
    referenceTypes: Option<Vec<String>>,
    /// For `complex` attributes, and only for them: 1 or more sub-attributes, not complex
    /// themselves.
    #[schema(no_recursion)]
    subAttributes: Option<Vec<AttributeDefinition>>,
}

/// RFC 7643 §2.3 data types.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_camel_case_types)]
pub enum AttributeType {
    string,
    boolean,
    decimal,
    integer,
    dateTime,
    binary,
    reference,
    complex,
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_camel_case_types)]
pub enum AttributeMutability {
    readWrite,
    readOnly,
    immutable,
    writeOnly,
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_camel_case_types)]
pub enum AttributeReturned {
    default,
    always,
    never,
    request,
}

/// RFC 7643 §7 `uniqueness`, as extensions support it.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_camel_case_types)]
pub enum AttributeUniqueness {
    none,
}

/// What an attribute definition needs besides its shape (`scim::extension`): not
/// `required`; `subAttributes` on complex attributes only, and non-complex ones there.
fn attribute_definition_rules() -> Value {
    let complex = serde_json::json!({ "required": ["type"], "properties": { "type": { "const": "complex" } } });
    serde_json::json!({ "allOf": [
        { "properties": { "required": { "enum": [false, null] } } },
        {
            "if": complex,
            "then": {
                "required": ["subAttributes"],
                "properties": { "subAttributes": {
                    "type": "array",
                    "minItems": 1,
                    "items": { "not": complex, "properties": { "subAttributes": { "type": "null" } } },
                } },
            },
            "else": { "properties": { "subAttributes": { "type": "null" } } },
        },
    ] })
}

/// A resource whose stored value does not fit the registered extension.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NonConforming {
    id: String,
    detail: String,
}

/// What a change of an extension would do (a dry run; nothing was stored).
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct SchemaPreview {
    #[schema(inline)]
    action: SchemaAction,
    /// The schema as `/Schemas` would serve it (absent for a removal).
    schema: Option<DiscoveryDocument>,
    #[schema(inline)]
    resourceType: ExtendedType,
    /// Resources of the extended type that would be re-indexed.
    checked: u64,
    /// Those holding values under the URN: typed from then on (a removal: untyped).
    withValues: u64,
    /// How many would hold values that do not fit (kept as they are).
    nonConformingCount: u64,
    /// The first 100 of them.
    nonConforming: Vec<NonConforming>,
}

/// What changed an extension.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_camel_case_types)]
pub enum SchemaAction {
    register,
    update,
    remove,
}

/// A schema job's state: `superseded` when a later change of the same resource type's
/// extensions re-indexes instead; `failed` when the tenant was deleted.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_camel_case_types)]
pub enum SchemaJobState {
    queued,
    running,
    succeeded,
    superseded,
    failed,
}

/// The re-index that follows a change of an extension.
#[derive(Debug, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct SchemaJob {
    id: String,
    #[schema(inline)]
    action: SchemaAction,
    /// The extension's URN.
    schema: String,
    #[schema(inline)]
    resourceType: ExtendedType,
    #[schema(inline)]
    state: SchemaJobState,
    /// Resources to re-index (counted when queued; the number processed once finished).
    total: u64,
    /// Resources re-indexed so far.
    processed: u64,
    /// How many hold values that do not fit (kept as they are, left out of filters).
    nonConformingCount: u64,
    /// The first 100 of them.
    nonConforming: Vec<NonConforming>,
    error: Option<String>,
    /// `admin:<operator>` or `os:<user>`.
    actor: String,
    #[schema(format = DateTime)]
    createdAt: String,
    #[schema(format = DateTime)]
    updatedAt: String,
    #[schema(format = DateTime)]
    finishedAt: Option<String>,
}

/// A change of an extension, accepted: the schema as served now and its re-index job.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SchemaChangeAccepted {
    /// The schema as `/Schemas` now serves it (absent after a removal).
    schema: Option<DiscoveryDocument>,
    job: SchemaJob,
}

/// A tenant's schema jobs, newest first.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SchemaJobList {
    jobs: Vec<SchemaJob>,
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
    /// The `X-Request-Id` of the request that made the change; absent for changes no
    /// request made.
    correlationid: Option<String>,
    /// W3C `traceparent` of the request that made the change (CloudEvents distributed
    /// tracing); absent without one.
    traceparent: Option<String>,
    /// W3C `tracestate` that came with `traceparent`; absent when none or empty.
    tracestate: Option<String>,
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

/// The whole document, from the routes `http::configure` mounts (admin API included), with
/// what the annotations cannot state added by [`refine`].
pub fn document() -> Result<Value, serde_json::Error> {
    use utoipa_actix_web::AppExt;
    let (_, api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(|cfg| super::configure(cfg, true))
        .split_for_parts();
    let mut doc = serde_json::to_value(api)?;
    refine::messages(
        &mut doc,
        &[
            ("PatchOp", crate::scim::patch::PATCH_OP_URN),
            ("SearchRequest", super::search::SEARCH_REQUEST_URN),
            ("BulkRequest", crate::service::bulk::BULK_REQUEST_URN),
        ],
    );
    refine::rules(&mut doc, "PatchOperation", patch_operation_rules());
    refine::rules(
        &mut doc,
        "AttributeDefinition",
        attribute_definition_rules(),
    );
    // RFC 9865: with a cursor, a negative `count` is an error (invalidCount).
    refine::rules(
        &mut doc,
        "SearchRequest",
        serde_json::json!({
            "if": { "required": ["cursor"], "properties": { "cursor": { "type": "string" } } },
            "then": { "properties": { "count": { "minimum": 0 } } },
        }),
    );
    // `all_tenants: true`, or a list of `tenants`: one of the two.
    refine::rules(
        &mut doc,
        "IssueApp",
        serde_json::json!({ "oneOf": [
            {
                "required": ["all_tenants"],
                "properties": { "all_tenants": { "const": true }, "tenants": { "type": "null" } },
            },
            {
                "required": ["tenants"],
                "properties": { "all_tenants": { "const": false }, "tenants": { "type": "array" } },
            },
        ] }),
    );
    // A receiver's `events`: URIs scimbus makes (repeats count once), of its form (`…:full` only in
    // the full form, `…:notice` only in the notice form), the Shared Signals ones only
    // with `signals`.
    if let Some(events) = doc.pointer_mut("/components/schemas/RegisterReceiver/properties/events")
    {
        events["items"]["enum"] = serde_json::json!(crate::service::sets::EVENT_URIS);
    }
    refine::rules(
        &mut doc,
        "RegisterReceiver",
        serde_json::json!({ "allOf": [
            {
                "if": { "required": ["form"], "properties": { "form": { "const": "notice" } } },
                "then": { "properties": { "events": { "items": { "not": { "pattern": ":full$" } } } } },
                "else": { "properties": { "events": { "items": { "not": { "pattern": ":notice$" } } } } },
            },
            {
                "if": { "required": ["signals"], "properties": { "signals": { "const": true } } },
                "else": { "properties": { "events": { "items": { "pattern": "^urn:ietf:params:scim:event:" } } } },
            },
        ] }),
    );
    // An application credential's receiver takes the same body without `after` (each of
    // its lanes starts at its tenant's latest event; the service refuses `after`).
    if let Some(mut body) = doc.pointer("/components/schemas/RegisterReceiver").cloned() {
        if let Some(properties) = body["properties"].as_object_mut() {
            properties.remove("after");
        }
        body["description"] = Value::String(
            "`POST /admin/v1/apps/{id}/receivers`: a tenant's receiver body without `after`."
                .to_owned(),
        );
        doc["components"]["schemas"]["RegisterAppReceiver"] = body;
        if let Some(schema) = doc.pointer_mut(
            "/paths/~1admin~1v1~1apps~1{id}~1receivers/post/requestBody/content/application~1json/schema",
        ) {
            *schema = serde_json::json!({ "$ref": "#/components/schemas/RegisterAppReceiver" });
        }
    }
    refine::parameter(
        &mut doc,
        "pullEvents",
        "types",
        "pattern",
        Value::String(super::events::types_pattern()),
    );
    refine::refine(&mut doc);
    Ok(doc)
}

/// The document as committed in `openapi/openapi.json`: pretty JSON and a final newline.
pub fn document_json() -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(&document()?)?;
    text.push('\n');
    Ok(text)
}

/// The document as `/openapi.json` serves it.
pub struct Served(pub actix_web::web::Bytes);

/// GET /openapi.json (public, like Swagger UI under /docs/ that reads it).
pub async fn serve(doc: actix_web::web::Data<Served>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}
