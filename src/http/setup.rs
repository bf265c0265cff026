//! Customer setup links (docs/decisions.md, Setup links): the operators' routes under `/admin/v1`, and the pages
//! a tenant's IdP admin opens under `/setup/{link}` without any other credential.
//!
//! The pages are rendered here (maud escapes every value), their script and style are
//! served from the binary, and every answer has a strict Content-Security-Policy, no
//! caching and no referrer (the link's secret is in the path; the request span logs the
//! route, never the path: `telemetry::RequestSpan`).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::admin::parse;
use super::body::JsonBody;
use super::error::ApiError;
use super::openapi::{SCIM, ScimErrorBody};
use super::response;
use crate::scim::error::ScimError;
use crate::service::audit::Actor;
use crate::service::setup::{self, SetupView};
use crate::service::{Context, ServiceError};
use crate::tenancy::auth::AdminActor;

/// The cookie of the browser that revealed a link's token (scoped to the link's path).
const SESSION_COOKIE: &str = "scimbus_setup";
const SCRIPT: &str = include_str!("setup/setup.js");
const STYLE: &str = include_str!("setup/setup.css");

/// The admin routes (under `/admin/v1`).
pub fn configure_admin(cfg: &mut ServiceConfig) {
    cfg.service(create_link)
        .service(list_links)
        .service(revoke_link);
    super::other_methods(
        cfg,
        &[
            "/tenants/{slug}/setup-links",
            "/tenants/{slug}/setup-links/{id}",
        ],
    );
}

/// The customer's pages (under `/setup`).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(script)
        .service(style)
        .service(page)
        .service(reveal)
        .service(connection_check);
    super::other_methods(
        cfg,
        &[
            "/assets/setup.js",
            "/assets/setup.css",
            "/{link}",
            "/{link}/token",
            "/{link}/check",
        ],
    );
}

/// `POST /admin/v1/tenants/{slug}/setup-links`.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateLink {
    /// How long the link lives, in hours (1 to 720; default 72).
    #[serde(
        rename = "expiresInHours",
        default,
        deserialize_with = "crate::scim::validate::whole_or_null"
    )]
    #[validate(range(min = 1, max = 720))]
    #[schema(minimum = 1, maximum = 720)]
    expires_in_hours: Option<i64>,
}

/// A setup link with its address (holding its secret): in this answer only.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct CreatedLink {
    #[serde(flatten)]
    info: setup::SetupLinkInfo,
    /// The page to send the customer's IT admin. It holds the link's secret and is not
    /// shown again.
    url: String,
}

/// Creates a setup link for a tenant: an expiring, single-use page through which the
/// tenant's IdP admin takes the SCIM base URL, a token and the Okta or Entra steps.
#[utoipa::path(
    operation_id = "createSetupLink",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug.")),
    request_body(content = CreateLink, content_type = "application/json"),
    responses(
        (status = 201, description = "The link with its address", content_type = SCIM, body = CreatedLink),
        (status = "default", description = "A SCIM error (400, 401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[post("/tenants/{slug}/setup-links")]
async fn create_link(
    ctx: web::Data<Context>,
    actor: AdminActor,
    slug: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: CreateLink = parse(body)?;
    let lifetime = input.expires_in_hours.map(chrono::Duration::hours);
    let (info, url) = setup::create(&ctx, &Actor::admin(&actor.name), &slug, lifetime).await?;
    tracing::info!(actor = %actor.name, tenant = %slug, link = %info.id, "setup link created");
    Ok(response::scim(
        StatusCode::CREATED,
        &CreatedLink {
            info,
            url: url.expose_secret().to_owned(),
        },
    ))
}

/// Lists a tenant's setup links, newest first, never their addresses.
#[utoipa::path(
    operation_id = "listSetupLinks",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug.")),
    responses(
        (status = 200, description = "The links", content_type = SCIM, body = super::openapi::SetupLinkList),
        (status = "default", description = "A SCIM error (400, 401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[get("/tenants/{slug}/setup-links")]
async fn list_links(
    ctx: web::Data<Context>,
    _: AdminActor,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let links = setup::list(&ctx, &slug).await?;
    Ok(response::scim(
        StatusCode::OK,
        &json!({ "setupLinks": links }),
    ))
}

/// Revokes a setup link: its page answers 410 from now on. The token it revealed stays
/// (revoke it as a token).
#[utoipa::path(
    operation_id = "revokeSetupLink",
    tag = "Admin",
    params(("slug" = String, Path, description = "Tenant slug."), ("id" = String, Path, description = "Setup link id.")),
    responses(
        (status = 204, description = "Revoked"),
        (status = "default", description = "A SCIM error (400, 401, 404)", content_type = SCIM, body = ScimErrorBody),
    )
)]
#[delete("/tenants/{slug}/setup-links/{id}")]
async fn revoke_link(
    ctx: web::Data<Context>,
    actor: AdminActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    setup::revoke(&ctx, &Actor::admin(&actor.name), &slug, &id).await?;
    tracing::info!(actor = %actor.name, tenant = %slug, link = %id, "setup link revoked");
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    operation_id = "setupScript",
    tag = "Setup",
    responses((status = 200, description = "The setup page's script", content_type = "text/javascript", body = String)),
    security(())
)]
#[get("/assets/setup.js")]
async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

#[utoipa::path(
    operation_id = "setupStyle",
    tag = "Setup",
    responses((status = 200, description = "The setup page's style sheet", content_type = "text/css", body = String)),
    security(())
)]
#[get("/assets/setup.css")]
async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, text: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(text)
}

/// The link's session cookie, if the browser sent one.
fn session(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned())
}

/// Opens a setup link: the customer's page (HTML). 404 for an unknown link; 410 for a
/// revoked or expired one, or a used one opened by another browser than the one that
/// used it.
#[utoipa::path(
    operation_id = "openSetupLink",
    tag = "Setup",
    params(("link" = String, Path, description = "The link's secret (`scimbus_s_…`).")),
    responses(
        (status = 200, description = "The setup page", content_type = "text/html", body = String),
        (status = "default", description = "An error page (404, 410); a SCIM error for a request no link can match (400) or a failure of ours (5xx)", content(
            (String = "text/html"),
            (ScimErrorBody = "application/scim+json"),
        )),
    ),
    security(())
)]
#[get("/{link}")]
async fn page(
    ctx: web::Data<Context>,
    req: HttpRequest,
    link: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    match setup::open(&ctx, &link, session(&req).as_deref()).await {
        Ok((view, check)) => Ok(html_page(
            StatusCode::OK,
            &setup_page(&link, &view, None, &check),
        )),
        Err(e) => refusal(e),
    }
}

/// Reveals the link's token, once: the page with the token, and the session cookie that
/// lets this browser (only) come back to the page and its connection check. A second
/// reveal, from any browser, is refused (410).
#[utoipa::path(
    operation_id = "revealSetupToken",
    tag = "Setup",
    params(("link" = String, Path, description = "The link's secret (`scimbus_s_…`).")),
    responses(
        (status = 200, description = "The setup page with the token, shown once", content_type = "text/html", body = String),
        (status = "default", description = "An error page (403 for a form from another site, 404, 410); a SCIM error for a request no link can match (400) or a failure of ours (5xx)", content(
            (String = "text/html"),
            (ScimErrorBody = "application/scim+json"),
        )),
    ),
    security(())
)]
#[post("/{link}/token")]
async fn reveal(
    ctx: web::Data<Context>,
    req: HttpRequest,
    link: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !same_origin(&ctx, &req) {
        return refusal(
            ScimError::new(403, None, "this form may only be sent from its own page").into(),
        );
    }
    let revealed = match setup::reveal(&ctx, &link).await {
        Ok(revealed) => revealed,
        Err(e) => return refusal(e),
    };
    let check = setup::ConnectionCheck {
        state: "waiting",
        requests: vec![],
    };
    let body = setup_page(
        &link,
        &revealed.view,
        Some(revealed.token.expose_secret()),
        &check,
    );
    let secure = !loopback(&ctx.public_url);
    let max_age = revealed
        .view
        .expires_at
        .instant()
        .map(|at| (at - ctx.clock.now()).num_seconds().max(0))
        .unwrap_or(0);
    let cookie = Cookie::build(SESSION_COOKIE, revealed.session.expose_secret().to_owned())
        .path(format!("/setup/{}", link.as_str()))
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age))
        .finish();
    let mut response = html_page(StatusCode::OK, &body);
    response
        .add_cookie(&cookie)
        .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    Ok(response)
}

/// The connection check (JSON): the first requests that came with the link's token, and
/// whether one succeeded. Only for the browser that revealed the token.
#[utoipa::path(
    operation_id = "checkSetupConnection",
    tag = "Setup",
    params(("link" = String, Path, description = "The link's secret (`scimbus_s_…`).")),
    responses(
        (status = 200, description = "The connection check", content_type = "application/json", body = setup::ConnectionCheck),
        (status = "default", description = "A SCIM error (404, 410)", content_type = SCIM, body = ScimErrorBody),
    ),
    security(())
)]
#[get("/{link}/check")]
async fn connection_check(
    ctx: web::Data<Context>,
    req: HttpRequest,
    link: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let check = setup::check(&ctx, &link, session(&req).as_deref()).await?;
    Ok(HttpResponse::Ok().json(check))
}

/// Whether a form came from this service's own pages: its `Origin` (browsers send it with
/// every POST) is the public URL's or names the host the request was sent to (the admin
/// listener's address, say), or is absent (a client that is not a browser). A form on
/// another site carries that site's origin.
pub(super) fn same_origin(ctx: &Context, req: &HttpRequest) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin == ctx.public_url.origin().ascii_serialization() {
        return true;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    let origin_host = url::Url::parse(origin).ok().and_then(|u| {
        let host = u.host_str()?.to_ascii_lowercase();
        Some(match u.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        })
    });
    matches!((host, origin_host), (Some(h), Some(o)) if h == o)
}

pub(super) fn loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

fn html_page(status: StatusCode, markup: &Markup) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.0.clone())
}

/// A refused link as a page; a failure of ours as the usual error (logged).
fn refusal(e: ServiceError) -> Result<HttpResponse, ApiError> {
    let status = e.status();
    if status >= 500 {
        return Err(e.into());
    }
    let detail = e.to_scim("").detail;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let title = match status.as_u16() {
        404 => "This setup link does not exist",
        410 => "This setup link can no longer be used",
        _ => "This request was refused",
    };
    Ok(html_page(
        status,
        &layout(
            title,
            html! {
                p.refused { (detail) }
                p { "Ask the team that sent you this link for a new one." }
            },
        ),
    ))
}

fn layout(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex, nofollow";
                title { (title) " · scimbus" }
                link rel="stylesheet" href="/setup/assets/setup.css";
                script src="/setup/assets/setup.js" defer {}
            }
            body {
                main {
                    h1 { (title) }
                    (content)
                }
            }
        }
    }
}

fn setup_page(
    link: &str,
    view: &SetupView,
    token: Option<&str>,
    check: &setup::ConnectionCheck,
) -> Markup {
    let entra_url = format!("{}?aadOptscim062020", view.scim_base);
    let title = format!("Connect {} to your identity provider", view.tenant.slug);
    let token_value = match token {
        Some(token) => token,
        None if view.used => "the token you copied from this page",
        None => "the token from step 2",
    };
    layout(
        &title,
        html! {
            p.lead {
                "This page sets up automatic provisioning (SCIM 2.0) from Okta or Microsoft Entra ID. "
                "It works until " time datetime=(view.expires_at.as_str()) { (view.expires_at.as_str()) }
                ", and its token can be revealed once."
            }
            section #url {
                h2 { "1. The SCIM base URL" }
                input #scim-base type="text" readonly value=(view.scim_base) aria-label="SCIM base URL";
            }
            section #token {
                h2 { "2. The token" }
                @if let Some(token) = token {
                    p.warning { "Copy this token into your identity provider now: it is not shown again." }
                    input #token-value type="text" readonly value=(token) aria-label="Token";
                } @else if view.used {
                    p #token-used {
                        "The token of this link was revealed (named "
                        code { (view.token_name.as_deref().unwrap_or("")) }
                        ") and is not shown again. If it was lost, ask for a new link."
                    }
                } @else {
                    p { "The token is shown once, when you click. Have your identity provider's settings open." }
                    form method="post" action={ "/setup/" (link) "/token" } {
                        button #reveal type="submit" { "Reveal the token" }
                    }
                }
            }
            section #steps {
                h2 { "3. Enter them in your identity provider" }
                details #okta open {
                    summary { "Okta" }
                    ol {
                        li { "In the Admin Console, open your app integration (for a new one: " em { "Applications → Create App Integration" } ", then on its " em { "General" } " tab choose " em { "Provisioning: SCIM" } ")." }
                        li { "On its " em { "Provisioning" } " tab choose " em { "Integration → Edit" } " and enter:"
                            table {
                                tr { th { "SCIM connector base URL" } td { code { (view.scim_base) } } }
                                tr { th { "Unique identifier field for users" } td { code { "userName" } } }
                                tr { th { "Supported provisioning actions" } td { "Push New Users, Push Profile Updates, Push Groups (Import New Users and Profile Updates too, if you like)" } }
                                tr { th { "Authentication Mode" } td { "HTTP Header" } }
                                tr { th { "Authorization (Bearer)" } td { code.secret { (token_value) } } }
                            }
                        }
                        li { em { "Test Connector Configuration" } " must succeed; then save." }
                        li { "Under " em { "Provisioning → To App" } ", enable " em { "Create Users" } ", " em { "Update User Attributes" } " and " em { "Deactivate Users" } ". Leave " em { "Sync Password" } " off." }
                        li { "Assign users and groups to the app, and push the groups on its " em { "Push Groups" } " tab." }
                    }
                }
                details #entra open {
                    summary { "Microsoft Entra ID" }
                    ol {
                        li { "In " em { "Enterprise applications" } ", open your application (a non-gallery application), then " em { "Provisioning" } " and set " em { "Provisioning Mode" } " to " em { "Automatic" } "." }
                        li { "Under " em { "Admin Credentials" } " enter:"
                            table {
                                tr { th { "Tenant URL" } td { code { (entra_url) } } }
                                tr { th { "Secret Token" } td { code.secret { (token_value) } } }
                            }
                        }
                        li { em { "Test Connection" } " must succeed; then save." }
                        li { "Under " em { "Settings" } " choose " em { "Sync only assigned users and groups" } ", assign users and groups, and set " em { "Provisioning Status" } " to " em { "On" } ". " em { "Provision on demand" } " sends one user at once: the quickest test." }
                    }
                }
            }
            section #connection data-check-url={ "/setup/" (link) "/check" } data-state=(check.state) {
                h2 { "4. Connection check" }
                p #check-state { (state_text(check.state)) }
                table #check-requests {
                    thead { tr { th { "time" } th { "request" } th { "status" } th { "error" } } }
                    tbody {
                        @for r in &check.requests {
                            tr {
                                td { (r.at) }
                                td { (r.method) " " (r.target) }
                                td { (r.status) }
                                td { (r.scim_type.as_deref().unwrap_or("")) " " (r.detail.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
                noscript { p { "Reload this page to see new requests." } }
            }
            (PreEscaped(""))
        },
    )
}

/// What the connection check's state says (the script shows the same words).
fn state_text(state: &str) -> &'static str {
    match state {
        "connected" => "Connected: your identity provider's requests arrive and succeed.",
        "failing" => "Requests arrive but fail: see the errors below.",
        _ => "Waiting for the first request from your identity provider…",
    }
}
