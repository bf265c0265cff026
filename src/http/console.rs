//! The operator console under `/console/` (`SCIMBUS_CONSOLE=on`; docs/decisions.md,
//! Operator console): server-rendered pages (maud escapes every value), no script, the
//! setup page's style sheet, a strict Content-Security-Policy and no caching
//! (`context::security_headers`). An operator signs in with a named admin token; every form
//! that changes something carries the session's CSRF token and must come from the
//! console's own origin. Actions go through the same service functions as the admin API.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{DOCTYPE, Markup, html};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::error::ApiError;
use super::setup::{loopback, same_origin};
use crate::domain::Scope;
use crate::domain::{JournalEntry, JournalQuery};
use crate::scim::error::ScimError;
use crate::service::console::{self, Operator};
use crate::service::{Context, ServiceError, brake, journal, setup, tenants};

const SESSION_COOKIE: &str = "scimbus_console";
const STYLE: &str = include_str!("setup/setup.css");

/// Mounts the console (outside the OpenAPI document: its pages are HTML for people).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .route("/", web::get().to(home))
            .route("/assets/console.css", web::get().to(style))
            .route("/sign-in", web::post().to(sign_in))
            .route("/sign-out", web::post().to(sign_out))
            .route("/tenants", web::get().to(tenant_list))
            .route("/tenants/{slug}", web::get().to(tenant_page))
            .route("/tenants/{slug}/journal/{id}", web::get().to(entry_page))
            .route("/tenants/{slug}/brake/release", web::post().to(release))
            .route("/tenants/{slug}/tokens", web::post().to(issue_token))
            .route(
                "/tenants/{slug}/setup-links",
                web::post().to(create_setup_link),
            )
            .route("/tenants/{slug}/{kind}/{id}/revoke", web::post().to(revoke)),
    );
}

async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(STYLE)
}

fn page(
    status: StatusCode,
    title: &str,
    operator: Option<&Operator>,
    content: Markup,
) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex, nofollow";
                title { (title) " · scimbus console" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                main {
                    @if let Some(operator) = operator {
                        nav {
                            a href="/console/tenants" { "Tenants" }
                            " · signed in as " strong #operator { (operator.name) } " "
                            form.inline method="post" action="/console/sign-out" {
                                input type="hidden" name="csrf" value=(operator.csrf);
                                button #sign-out type="submit" { "Sign out" }
                            }
                        }
                    }
                    h1 { (title) }
                    (content)
                }
            }
        }
    };
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.0)
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

fn session(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned())
}

/// The signed-in operator, or the answer that sends the browser to sign in.
async fn signed_in(
    ctx: &Context,
    req: &HttpRequest,
) -> Result<Result<Operator, HttpResponse>, ApiError> {
    let Some(session) = session(req) else {
        return Ok(Err(see_other("/console/")));
    };
    Ok(match console::operator(ctx, &session).await? {
        Some(operator) => Ok(operator),
        None => Err(see_other("/console/")),
    })
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// The operator of a change's form: signed in, the form from the console's origin with the
/// session's CSRF token; otherwise the answer (sign in, or 403 with nothing changed).
async fn change(
    ctx: &Context,
    req: &HttpRequest,
    csrf: &str,
) -> Result<Result<Operator, HttpResponse>, ApiError> {
    let operator = match signed_in(ctx, req).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(Err(answer)),
    };
    if same_origin(ctx, req) && csrf == operator.csrf {
        return Ok(Ok(operator));
    }
    Ok(Err(page(
        StatusCode::FORBIDDEN,
        "Refused",
        Some(&operator),
        html! { p.refused { "This form did not come from this console's page: nothing was changed." } },
    )))
}

fn sign_in_form(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message { p.refused { (message) } }
        form method="post" action="/console/sign-in" {
            p { label for="token" { "Operator token (" code { "scimbus_a_…" } ")" } }
            input #token type="password" name="token" autocomplete="off" required;
            p { button #sign-in type="submit" { "Sign in" } }
        }
    }
}

async fn home(ctx: web::Data<Context>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if let Ok(_operator) = signed_in(&ctx, &req).await? {
        return Ok(see_other("/console/tenants"));
    }
    Ok(page(StatusCode::OK, "Sign in", None, sign_in_form(None)))
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    token: String,
}

async fn sign_in(
    ctx: web::Data<Context>,
    req: HttpRequest,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, ApiError> {
    if !same_origin(&ctx, &req) {
        return Ok(page(
            StatusCode::FORBIDDEN,
            "Sign in",
            None,
            sign_in_form(Some("This form did not come from this console's page.")),
        ));
    }
    let (_operator, session, expires) = match console::sign_in(&ctx, &form.token).await {
        Ok(signed) => signed,
        Err(ServiceError::Invalid(e)) if e.status == 401 => {
            return Ok(page(
                StatusCode::UNAUTHORIZED,
                "Sign in",
                None,
                sign_in_form(Some(&e.detail)),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let max_age = (expires - ctx.clock.now()).num_seconds().max(0);
    let cookie = Cookie::build(SESSION_COOKIE, session.expose_secret().to_owned())
        .path("/console")
        .http_only(true)
        .secure(!loopback(&ctx.public_url))
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age))
        .finish();
    let mut response = see_other("/console/tenants");
    response
        .add_cookie(&cookie)
        .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    Ok(response)
}

async fn sign_out(
    ctx: web::Data<Context>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ApiError> {
    if let Err(answer) = change(&ctx, &req, &form.csrf).await? {
        return Ok(answer);
    }
    if let Some(session) = session(&req) {
        console::sign_out(&ctx, &session).await?;
    }
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/console").finish();
    gone.make_removal();
    let mut response = see_other("/console/");
    response
        .add_cookie(&gone)
        .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct ListParams {
    q: Option<String>,
    after: Option<String>,
}

async fn tenant_list(
    ctx: web::Data<Context>,
    req: HttpRequest,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let operator = match signed_in(&ctx, &req).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    let search = params.q.as_deref().filter(|q| !q.trim().is_empty());
    let (rows, more) = console::tenants(&ctx, search, params.after.as_deref()).await?;
    let next = rows.last().map(|r| r.tenant.slug.to_string());
    Ok(page(
        StatusCode::OK,
        "Tenants",
        Some(&operator),
        html! {
            form method="get" action="/console/tenants" {
                input #search type="search" name="q" value=(search.unwrap_or("")) placeholder="slug contains…";
                " " button type="submit" { "Search" }
            }
            table #tenants {
                thead { tr { th { "tenant" } th { "last IdP request" } th { "errors, last hour" } th { "brake" } } }
                tbody {
                    @for row in &rows {
                        tr data-tenant=(row.tenant.slug.as_str()) {
                            td { a href={ "/console/tenants/" (row.tenant.slug.as_str()) } { (row.tenant.slug.as_str()) } }
                            td {
                                @if let Some(last) = &row.last_request {
                                    (last.at.as_str()) " " (last.method) " → " (last.status)
                                } @else { "none yet" }
                            }
                            td { (row.errors_last_hour) }
                            td.brake {
                                @if let Some(since) = &row.held_since { strong.refused { "holding since " (since.as_str()) } }
                                @else { "clear" }
                            }
                        }
                    }
                }
            }
            @if more {
                @if let Some(next) = next {
                    p { a href={ "/console/tenants?after=" (next) "&q=" (search.unwrap_or("")) } { "Next page" } }
                }
            }
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
struct JournalParams {
    status: Option<String>,
    method: Option<String>,
}

async fn tenant_page(
    ctx: web::Data<Context>,
    req: HttpRequest,
    slug: web::Path<String>,
    params: web::Query<JournalParams>,
) -> Result<HttpResponse, ApiError> {
    let operator = match signed_in(&ctx, &req).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    tenant_view(&ctx, &operator, &slug, &params, None).await
}

/// A token just issued, or a setup link just made: shown once, on the page that answers
/// the form.
enum Issued {
    Token { name: String, secret: String },
    SetupLink { url: String },
}

async fn tenant_view(
    ctx: &Context,
    operator: &Operator,
    slug: &str,
    params: &JournalParams,
    issued: Option<Issued>,
) -> Result<HttpResponse, ApiError> {
    let brake = brake::show(ctx, slug).await?;
    let tokens = tenants::list_tokens(ctx, slug).await?;
    let links = setup::list(ctx, slug).await?;
    let status = params.status.as_deref().filter(|s| !s.is_empty());
    let method = params.method.as_deref().filter(|m| !m.is_empty());
    let range = match status {
        Some(s) => Some(journal::status_range(s).ok_or_else(|| {
            ApiError::Scim(ScimError::invalid_value(
                "`status` is a status or a class such as 4xx",
            ))
        })?),
        None => None,
    };
    let query = JournalQuery {
        status: range,
        method,
        limit: 50,
        ..JournalQuery::default()
    };
    let entries = journal::list(ctx, slug, &query).await?;
    let selected = |value: &str, current: Option<&str>| current == Some(value);
    Ok(page(
        StatusCode::OK,
        &format!("Tenant {slug}"),
        Some(operator),
        html! {
            section #tokens {
                h2 { "Tokens" }
                @if let Some(Issued::Token { name, secret }) = &issued {
                    p.warning { "The secret of " code { (name) } ", shown once: copy it now." }
                    input #issued-token type="text" readonly value=(secret) aria-label="Token";
                }
                table #token-list {
                    thead { tr { th { "name" } th { "scopes" } th { "created" } th { "last used" } th { "state" } th {} } }
                    tbody {
                        @for t in &tokens {
                            tr data-token=(t.name) {
                                td { (t.name) }
                                td { (Scope::join(&t.scopes)) }
                                td { (t.created_at.as_str()) }
                                td { (t.last_used_at.as_ref().map_or("never", |at| at.as_str())) }
                                td.state {
                                    @if let Some(at) = &t.revoked_at { "revoked " (at.as_str()) }
                                    @else if let Some(at) = &t.expires_at { "expires " (at.as_str()) }
                                    @else { "live" }
                                }
                                td {
                                    @if t.revoked_at.is_none() {
                                        form.inline method="post" action={ "/console/tenants/" (slug) "/tokens/" (t.id) "/revoke" } {
                                            input type="hidden" name="csrf" value=(operator.csrf);
                                            button.revoke type="submit" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form method="post" action={ "/console/tenants/" (slug) "/tokens" } {
                    input type="hidden" name="csrf" value=(operator.csrf);
                    input #token-name type="text" name="name" placeholder="name (okta, entra…)" required;
                    " " button #issue type="submit" { "Issue a SCIM token" }
                }
            }
            section #setup-links {
                h2 { "Setup links" }
                p { "A link for the customer's IT admin: the SCIM URL, one token revealed once, the Okta and Entra steps and a connection check (72 hours, single-use)." }
                @if let Some(Issued::SetupLink { url }) = &issued {
                    p.warning { "Send this address to the customer's IT admin; it is not shown again." }
                    input #issued-link type="text" readonly value=(url) aria-label="Setup link";
                }
                table #link-list {
                    thead { tr { th { "created" } th { "by" } th { "expires" } th { "state" } th {} } }
                    tbody {
                        @for l in &links {
                            tr data-link=(l.id) {
                                td { (l.created_at) } td { (l.created_by) } td { (l.expires_at) }
                                td.state { (l.state) }
                                td {
                                    @if l.state == "open" {
                                        form.inline method="post" action={ "/console/tenants/" (slug) "/setup-links/" (l.id) "/revoke" } {
                                            input type="hidden" name="csrf" value=(operator.csrf);
                                            button.revoke type="submit" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form method="post" action={ "/console/tenants/" (slug) "/setup-links" } {
                    input type="hidden" name="csrf" value=(operator.csrf);
                    button #create-link type="submit" { "Create a setup link" }
                }
            }
            section #brake {
                h2 { "Brake" }
                @if let Some(hold) = &brake.hold {
                    p.refused #brake-state { "Holding its events since " (hold.held_at.as_str()) " (tripped: " (hold.tripped.join(", ")) ")." }
                    ul { @for (kind, n) in &hold.counts { li { (n) " × " code { (kind) } } } }
                    form method="post" action={ "/console/tenants/" (slug) "/brake/release" } {
                        input type="hidden" name="csrf" value=(operator.csrf);
                        button #release type="submit" { "Release the held events, in order" }
                    }
                } @else {
                    p #brake-state { "Not holding: events flow." }
                }
            }
            section #journal {
                h2 { "Request journal" }
                form method="get" action={ "/console/tenants/" (slug) } {
                    select name="status" {
                        option value="" selected[status.is_none()] { "any status" }
                        @for class in ["2xx", "4xx", "5xx"] { option value=(class) selected[selected(class, status)] { (class) } }
                    }
                    " "
                    select name="method" {
                        option value="" selected[method.is_none()] { "any method" }
                        @for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] { option value=(m) selected[selected(m, method)] { (m) } }
                    }
                    " " button #filter type="submit" { "Filter" }
                }
                table #entries {
                    thead { tr { th { "time" } th { "request" } th { "status" } th { "error" } th { "token" } } }
                    tbody {
                        @for e in &entries {
                            tr {
                                td { a href={ "/console/tenants/" (slug) "/journal/" (e.id) } { (e.at.as_str()) } }
                                td { (e.method) " " (e.target) }
                                td { (e.status) }
                                td { (e.scim_type.as_deref().unwrap_or("")) }
                                td { (e.token_name) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

fn body_text(body: Option<&str>) -> String {
    match body {
        None => "(none)".to_owned(),
        Some(text) => serde_json::from_str::<serde_json::Value>(text)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| text.to_owned()),
    }
}

async fn entry_page(
    ctx: web::Data<Context>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let operator = match signed_in(&ctx, &req).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    let (slug, id) = path.into_inner();
    let entry: JournalEntry = console::journal_entry(&ctx, &slug, &id).await?;
    Ok(page(
        StatusCode::OK,
        &format!("{} {}", entry.method, entry.target),
        Some(&operator),
        html! {
            p #entry-meta {
                (entry.at.as_str()) " · status " strong { (entry.status) }
                @if let Some(t) = &entry.scim_type { " · " code { (t) } }
                " · " (entry.duration_ms) " ms · token " code { (entry.token_name) }
                " · request id " code { (entry.request_id) }
            }
            div.bodies {
                section { h2 { "Request body (redacted)" } pre #request-body { (body_text(entry.request_body.as_deref())) } }
                section { h2 { "Response body" } pre #response-body { (body_text(entry.response_body.as_deref())) } }
            }
            p { a href={ "/console/tenants/" (slug) } { "Back to the tenant" } }
        },
    ))
}

async fn release(
    ctx: web::Data<Context>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ApiError> {
    let operator = match change(&ctx, &req, &form.csrf).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    let released = brake::release(&ctx, &operator.actor(), &slug).await?;
    tracing::info!(actor = %operator.name, tenant = %slug, released = released.released, "brake released from the console");
    Ok(see_other(&format!("/console/tenants/{}", slug.as_str())))
}

#[derive(Debug, Deserialize)]
struct IssueForm {
    csrf: String,
    name: String,
}

/// Issues a `scim` token for the tenant and shows its secret once, on the page that
/// answers (never cached; a reload re-posts and issues another, as the browser warns).
async fn issue_token(
    ctx: web::Data<Context>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<IssueForm>,
) -> Result<HttpResponse, ApiError> {
    let operator = match change(&ctx, &req, &form.csrf).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    let request = tenants::TokenRequest {
        name: form.name.clone(),
        scopes: vec![Scope::Scim],
        expires_at: None,
    };
    let (info, secret) = tenants::issue_token(&ctx, &operator.actor(), &slug, request).await?;
    tracing::info!(actor = %operator.name, tenant = %slug, token = %info.id, "token issued from the console");
    let issued = Issued::Token {
        name: info.name,
        secret: secret.expose_secret().to_owned(),
    };
    tenant_view(
        &ctx,
        &operator,
        &slug,
        &JournalParams::default(),
        Some(issued),
    )
    .await
}

/// Creates a setup link for the tenant and shows its address once.
async fn create_setup_link(
    ctx: web::Data<Context>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ApiError> {
    let operator = match change(&ctx, &req, &form.csrf).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    let (info, url) = setup::create(&ctx, &operator.actor(), &slug, None).await?;
    tracing::info!(actor = %operator.name, tenant = %slug, link = %info.id, "setup link created from the console");
    let issued = Issued::SetupLink {
        url: url.expose_secret().to_owned(),
    };
    tenant_view(
        &ctx,
        &operator,
        &slug,
        &JournalParams::default(),
        Some(issued),
    )
    .await
}

/// Revokes one of the tenant's tokens or setup links (`kind`: `tokens` or `setup-links`).
async fn revoke(
    ctx: web::Data<Context>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ApiError> {
    let operator = match change(&ctx, &req, &form.csrf).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    let (slug, kind, id) = path.into_inner();
    match kind.as_str() {
        "tokens" => tenants::revoke_token(&ctx, &operator.actor(), &slug, &id).await?,
        "setup-links" => setup::revoke(&ctx, &operator.actor(), &slug, &id).await?,
        _ => return Err(ApiError::not_found("no such endpoint".to_owned())),
    }
    tracing::info!(actor = %operator.name, tenant = %slug, %kind, %id, "revoked from the console");
    Ok(see_other(&format!("/console/tenants/{slug}")))
}
