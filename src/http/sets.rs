//! Security event tokens over HTTP (RFC 9967): `/sets/v1/jwks.json` (the public signing
//! keys, unauthenticated), `/sets/v1/poll` (RFC 8936 poll delivery, with a receiver's
//! credential), and under `/admin/v1` the receivers of a tenant and the signing keys.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::admin::{issued, parse};
use super::body::JsonBody;
use super::error::ApiError;
use super::openapi::{SCIM, ScimErrorBody};
use super::response;
use crate::domain::TokenName;
use crate::service::audit::Actor;
use crate::service::set_groups;
use crate::service::sets::{self, Alg, Form, PollRequest, PollResponse, ReceiverRequest};
use crate::service::{Context, ServiceError};
use crate::tenancy::auth::{AdminActor, bearer};

/// The unauthenticated and receiver-authenticated routes under `/sets/v1`.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(jwks).service(poll);
    super::other_methods(cfg, &["/jwks.json", "/poll"]);
}

/// The admin routes (under `/admin/v1`).
pub fn configure_admin(cfg: &mut ServiceConfig) {
    cfg.service(list_receivers)
        .service(register_receiver)
        .service(remove_receiver)
        .service(replay_receiver)
        .service(parked_sets)
        .service(register_app_receiver)
        .service(list_app_receivers)
        .service(remove_app_receiver)
        .service(list_keys)
        .service(rotate_key);
    super::other_methods(
        cfg,
        &[
            "/tenants/{slug}/receivers",
            "/tenants/{slug}/receivers/{id}",
            "/tenants/{slug}/receivers/{id}/replay",
            "/tenants/{slug}/receivers/{id}/parked",
            "/apps/{id}/receivers",
            "/apps/{id}/receivers/{receiver}",
            "/set-keys",
            "/set-keys/rotate",
        ],
    );
}

/// The public keys that verify scimbus's security event tokens (RFC 7517 JWK Set): the
/// current key of each algorithm and, for `SCIMBUS_SET_KEY_OVERLAP_HOURS` after a
/// rotation, the keys it replaced.
#[utoipa::path(
    operation_id = "getSetJwks",
    tag = "Security events",
    responses(
        (status = 200, description = "The JWK Set", content_type = "application/json", body = Object),
    ),
    security(())
)]
#[get("/jwks.json")]
async fn jwks(ctx: web::Data<Context>) -> Result<HttpResponse, ApiError> {
    let keys = sets::jwks(&ctx).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(keys))
}

/// An error as RFC 8936 §2.4.4 (and RFC 8935 §2.3) write it.
fn set_error(status: StatusCode, err: &str, description: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    response.json(json!({"err": err, "description": description}))
}

/// RFC 8936 poll delivery: acknowledges the SETs named in `ack` (and `setErrs`), then
/// answers the receiver's next SETs (oldest event first, at most `maxEvents`, up to 1000),
/// waiting up to 30 s for one unless `returnImmediately`. A SET not acknowledged is
/// delivered again by the next poll. Authenticated with the receiver's credential.
#[utoipa::path(
    operation_id = "pollSets",
    tag = "Security events",
    request_body(content = Option<PollRequest>, description = "The poll request; an empty body polls with the defaults", content_type = "application/json"),
    responses(
        (status = 200, description = "The next SETs, by `jti`", content_type = "application/json", body = PollResponse),
        (status = 400, description = "`{\"err\": \"invalid_request\", \"description\"}`: the body is not a poll request", content_type = "application/json", body = Object),
        (status = 401, description = "`{\"err\": \"authentication_failed\"}`: no valid receiver credential", content_type = "application/json", body = Object),
        (status = 409, description = "`{\"err\": \"invalid_request\"}`: security event tokens were turned off (`SCIMBUS_SET_KEY_SECRET` unset)", content_type = "application/json", body = Object),
        (status = 410, description = "`{\"err\": \"invalid_request\"}`: events the receiver had not acknowledged are past retention; resync and replay", content_type = "application/json", body = Object),
        (status = 503, description = "The service cannot answer now; retry", content_type = "application/json", body = Object),
    ),
    security(("bearer" = []))
)]
#[post("/poll")]
async fn poll(
    ctx: web::Data<Context>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(secret) = bearer(header) else {
        return Ok(set_error(
            StatusCode::UNAUTHORIZED,
            "authentication_failed",
            "send the receiver's credential as a bearer token",
        ));
    };
    let Some(poller) = sets::authenticate(&ctx, secret).await? else {
        return Ok(set_error(
            StatusCode::UNAUTHORIZED,
            "authentication_failed",
            "unknown or removed receiver credential",
        ));
    };
    let request: PollRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PollRequest::default()
    } else {
        // JSON first, refused as every body is when no database could store it (a NUL
        // character, a number beyond ±1e300), then read as a poll request.
        let parsed = serde_json::from_slice::<serde_json::Value>(&body)
            .map_err(|e| e.to_string())
            .and_then(|value| {
                crate::scim::validate::storable(&value, 0)
                    .map_err(|e| e.detail)
                    .map(|()| value)
            })
            .and_then(|value| {
                serde_json::from_value::<Option<PollRequest>>(value).map_err(|e| e.to_string())
            });
        match parsed {
            Ok(request) => request.unwrap_or_default(),
            Err(e) => {
                return Ok(set_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("the body is not an RFC 8936 poll request: {e}"),
                ));
            }
        }
    };
    match sets::poll(&ctx, &poller, &request).await {
        Ok(answer) => Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(answer)),
        Err(ServiceError::Invalid(e)) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            Ok(set_error(status, "invalid_request", &e.detail))
        }
        // Removed while this poll was in hand.
        Err(ServiceError::NotFound(_)) => Ok(set_error(
            StatusCode::UNAUTHORIZED,
            "authentication_failed",
            "unknown or removed receiver credential",
        )),
        Err(other) => Err(other.into()),
    }
}

/// `POST /admin/v1/tenants/{slug}/receivers` (no `Debug`: it holds a secret).
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterReceiver {
    /// 1 to 100 characters, not only spaces (kept trimmed).
    #[schema(
        value_type = String,
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    name: TokenName,
    /// `full` (default: SETs carry the resource) or `notice` (attribute names only).
    #[serde(default)]
    form: Form,
    /// Event URIs to receive, each one the service provider configuration's
    /// `securityEvents.eventUris` lists, in the receiver's form (one named twice counts
    /// once); omitted or empty: all of the form.
    #[serde(default)]
    events: Vec<String>,
    /// Also the Shared Signals events: CAEP `session-revoked` and RISC
    /// `account-disabled` / `account-purged` for deactivated and deleted users.
    #[serde(default)]
    signals: bool,
    /// `RS256` (default) or `ES256`.
    alg: Option<Alg>,
    /// The `aud` of its SETs (default `urn:scimbus:set-receiver:{id}`).
    #[schema(min_length = 1, max_length = 2000, pattern = "^[^\\u0000]*$")]
    audience: Option<String>,
    /// Start after this sequence, replaying what retention keeps (default: the tenant's
    /// latest: the events from now on).
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "crate::scim::validate::whole_or_null")]
    after: Option<i64>,
    /// Push the SETs here (RFC 8935): `https` (`http` only to a loopback host); loopback,
    /// private and link-local addresses only with `SCIMBUS_SET_PUSH_ALLOW_PRIVATE`.
    /// Omitted: the receiver polls (RFC 8936).
    #[schema(min_length = 1, max_length = 2000)]
    endpoint: Option<String>,
    /// The `Authorization` header value sent with every pushed SET (`Bearer …`); stored
    /// encrypted, never shown again. Only with `endpoint`.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[\\x20-\\x7e]+$")]
    authorization: Option<String>,
}

/// Registers a receiver of the tenant's SETs: one that polls over RFC 8936 at
/// `/sets/v1/poll` with the credential in this response (shown this once), or, with an
/// `endpoint`, one they are pushed to over RFC 8935, in order, retried until accepted.
#[utoipa::path(
    operation_id = "registerSetReceiver",
    tag = "Security events",
    params(("slug" = String, Path, description = "Tenant slug.")),
    request_body(content = RegisterReceiver, content_type = "application/json"),
    responses(
        (status = 201, description = "The receiver; a poll receiver with its credential (`token`)", content_type = SCIM, body = super::openapi::IssuedReceiver),
        (status = "default", description = "A SCIM error (400 invalidValue or invalidSyntax; 401; 404 unknown tenant; 409 SETs are off)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/tenants/{slug}/receivers")]
async fn register_receiver(
    ctx: web::Data<Context>,
    actor: AdminActor,
    slug: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let request = receiver_request(parse(body)?)?;
    let (info, secret) = sets::register(&ctx, &Actor::admin(&actor.name), &slug, request).await?;
    tracing::info!(actor = %actor.name, tenant = %slug, receiver = %info.id,
        delivery = %info.delivery, "SET receiver registered");
    match secret {
        Some(secret) => issued(&info, &secret),
        None => Ok(response::scim(StatusCode::CREATED, &info)),
    }
}

fn receiver_request(input: RegisterReceiver) -> Result<ReceiverRequest, ApiError> {
    if input.authorization.is_some() && input.endpoint.is_none() {
        return Err(ServiceError::invalid_value(
            "`authorization` is for push receivers: give an `endpoint`",
        )
        .into());
    }
    Ok(ReceiverRequest {
        name: input.name.as_str().to_owned(),
        form: input.form,
        events: input.events,
        signals: input.signals,
        alg: input.alg,
        audience: input.audience,
        after: input.after,
        push: input.endpoint.map(|endpoint| sets::PushTarget {
            endpoint,
            authorization: input.authorization.map(secrecy::SecretString::from),
        }),
    })
}

/// Registers a receiver of every tenant an application credential reads: one lane per
/// tenant (its own order, position and state), sharing the form, events, audience and,
/// pushed to, the endpoint and authorization; without an `endpoint` it polls
/// `/sets/v1/poll` with the credential in this response (shown this once), every lane at
/// once. Tenants the credential gains later get a lane from the start of what retention
/// keeps, tenants it loses (or its revocation) end theirs. Each lane starts at its tenant's
/// latest event (`after` is refused).
#[utoipa::path(
    operation_id = "registerAppSetReceiver",
    tag = "Security events",
    params(("id" = String, Path, description = "Application credential id.")),
    request_body(content = RegisterReceiver, content_type = "application/json"),
    responses(
        (status = 201, description = "The receiver with its lanes; a polling one with its credential (`token`)", content_type = SCIM, body = super::openapi::IssuedGroup),
        (status = "default", description = "A SCIM error (400 invalidValue: `after`, a bad endpoint; 401; 404 no live credential; 409 SETs are off)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/apps/{id}/receivers")]
async fn register_app_receiver(
    ctx: web::Data<Context>,
    actor: AdminActor,
    app: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let request = receiver_request(parse(body)?)?;
    let (group, secret) =
        set_groups::register(&ctx, &Actor::admin(&actor.name), &app, request).await?;
    tracing::info!(actor = %actor.name, app = %app, receiver = %group.id,
        lanes = group.lanes.len(), delivery = %group.delivery,
        "SET receiver of an application credential registered");
    match secret {
        Some(secret) => issued(&group, &secret),
        None => Ok(response::scim(StatusCode::CREATED, &group)),
    }
}

/// An application credential's SET receivers, each with its lanes.
#[utoipa::path(
    operation_id = "listAppSetReceivers",
    tag = "Security events",
    params(("id" = String, Path, description = "Application credential id.")),
    responses(
        (status = 200, description = "The receivers", content_type = SCIM, body = super::openapi::GroupList),
        (status = "default", description = "A SCIM error (401, 404 no such credential)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/apps/{id}/receivers")]
async fn list_app_receivers(
    ctx: web::Data<Context>,
    _: AdminActor,
    app: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let receivers = set_groups::list(&ctx, &app).await?;
    Ok(response::scim(
        StatusCode::OK,
        &json!({ "receivers": receivers }),
    ))
}

/// Removes an application credential's receiver: every lane of it.
#[utoipa::path(
    operation_id = "removeAppSetReceiver",
    tag = "Security events",
    params(
        ("id" = String, Path, description = "Application credential id."),
        ("receiver" = String, Path, description = "Receiver id."),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = "default", description = "A SCIM error (401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[delete("/apps/{id}/receivers/{receiver}")]
async fn remove_app_receiver(
    ctx: web::Data<Context>,
    actor: AdminActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (app, receiver) = path.into_inner();
    set_groups::remove(&ctx, &Actor::admin(&actor.name), &app, &receiver).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The tenant's SET receivers, never their credentials.
#[utoipa::path(
    operation_id = "listSetReceivers",
    tag = "Security events",
    params(("slug" = String, Path, description = "Tenant slug.")),
    responses(
        (status = 200, description = "The receivers", content_type = SCIM, body = super::openapi::ReceiverList),
        (status = "default", description = "A SCIM error (401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/tenants/{slug}/receivers")]
async fn list_receivers(
    ctx: web::Data<Context>,
    _: AdminActor,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let receivers = sets::list(&ctx, &slug).await?;
    Ok(response::scim(
        StatusCode::OK,
        &json!({ "receivers": receivers }),
    ))
}

/// Removes a receiver: its credential stops working and retention stops keeping events
/// for it.
#[utoipa::path(
    operation_id = "removeSetReceiver",
    tag = "Security events",
    params(
        ("slug" = String, Path, description = "Tenant slug."),
        ("id" = String, Path, description = "Receiver id."),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = "default", description = "A SCIM error (401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[delete("/tenants/{slug}/receivers/{id}")]
async fn remove_receiver(
    ctx: web::Data<Context>,
    actor: AdminActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    sets::remove(&ctx, &Actor::admin(&actor.name), &slug, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /admin/v1/tenants/{slug}/receivers/{id}/replay`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
struct Replay {
    /// Deliver again the SETs of the events after this sequence (not past retention).
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "crate::scim::validate::whole")]
    after: i64,
}

/// Moves a receiver to a position: its next polls deliver the SETs of the events after it,
/// acknowledged before or not.
#[utoipa::path(
    operation_id = "replaySetReceiver",
    tag = "Security events",
    params(
        ("slug" = String, Path, description = "Tenant slug."),
        ("id" = String, Path, description = "Receiver id."),
    ),
    request_body(content = Replay, content_type = "application/json"),
    responses(
        (status = 200, description = "The receiver at its new position", content_type = SCIM, body = sets::ReceiverInfo),
        (status = "default", description = "A SCIM error (400 invalidValue: past retention or beyond the latest; 401; 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/tenants/{slug}/receivers/{id}/replay")]
async fn replay_receiver(
    ctx: web::Data<Context>,
    actor: AdminActor,
    path: web::Path<(String, String)>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    let input: Replay = parse(body)?;
    let info = sets::replay(&ctx, &Actor::admin(&actor.name), &slug, &id, input.after).await?;
    Ok(response::scim(StatusCode::OK, &info))
}

/// The SETs a push receiver refused for good (HTTP 400 about the SET), newest first, at
/// most 1000: each counted as delivered; a replay from before it sends it again.
#[utoipa::path(
    operation_id = "listParkedSets",
    tag = "Security events",
    params(
        ("slug" = String, Path, description = "Tenant slug."),
        ("id" = String, Path, description = "Receiver id."),
    ),
    responses(
        (status = 200, description = "The parked SETs", content_type = SCIM, body = super::openapi::ParkedSetList),
        (status = "default", description = "A SCIM error (401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/tenants/{slug}/receivers/{id}/parked")]
async fn parked_sets(
    ctx: web::Data<Context>,
    _: AdminActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    let parked = sets::parked(&ctx, &slug, &id).await?;
    Ok(response::scim(StatusCode::OK, &json!({ "parked": parked })))
}

/// The SET signing keys, newest first: never their private parts.
#[utoipa::path(
    operation_id = "listSetKeys",
    tag = "Security events",
    responses(
        (status = 200, description = "The keys", content_type = SCIM, body = super::openapi::SetKeyList),
        (status = "default", description = "A SCIM error (401)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/set-keys")]
async fn list_keys(ctx: web::Data<Context>, _: AdminActor) -> Result<HttpResponse, ApiError> {
    let keys = sets::keys(&ctx).await?;
    Ok(response::scim(StatusCode::OK, &json!({ "keys": keys })))
}

/// `POST /admin/v1/set-keys/rotate`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// `RS256` or `ES256`.
    alg: Alg,
}

/// Makes a new signing key of an algorithm: it signs from now on, and the key it replaces
/// stays in the JWKS for `SCIMBUS_SET_KEY_OVERLAP_HOURS`.
#[utoipa::path(
    operation_id = "rotateSetKey",
    tag = "Security events",
    request_body(content = Rotate, content_type = "application/json"),
    responses(
        (status = 201, description = "The new key", content_type = SCIM, body = sets::KeyInfo),
        (status = "default", description = "A SCIM error (400; 401; 409 SETs are off)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/set-keys/rotate")]
async fn rotate_key(
    ctx: web::Data<Context>,
    actor: AdminActor,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: Rotate = parse(body)?;
    let key = sets::rotate(&ctx, &Actor::admin(&actor.name), input.alg).await?;
    Ok(response::scim(StatusCode::CREATED, &key))
}
