//! The operator console under `/console/` (`SCIMBUS_CONSOLE=on`; docs/decisions.md,
//! Operator console): server-rendered pages (maud escapes every value), no script, the
//! setup page's style sheet, a strict Content-Security-Policy and no caching
//! (`context::security_headers`). An operator signs in with a named admin token; every form
//! that changes something carries the session's CSRF token and must come from the
//! console's own origin. Actions go through the same service functions as the admin API.

use actix_web::ResponseError;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{DOCTYPE, Markup, html};
use secrecy::ExposeSecret;
use serde::Deserialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::error::ApiError;
use super::setup::{loopback, same_origin};
use crate::domain::Scope;
use crate::domain::{JournalEntry, JournalQuery, Timestamp};
use crate::scim::error::ScimError;
use crate::service::audit::AuditEntry;
use crate::service::console::{self, BACKLOG_CAP, EventMinute, Operator};
use crate::service::{Context, ServiceError, audit, brake, jobs, journal, schemas, setup, tenants};

const SESSION_COOKIE: &str = "scimbus_console";

/// A console request's failure: the status the admin API would answer, as a page (a
/// browser shows it; a SCIM error body would be JSON to read). A 5xx's cause is logged in
/// the request's span and never shown.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Failure(#[from] pub ApiError);

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        Self(e.into())
    }
}

impl From<ScimError> for Failure {
    fn from(e: ScimError) -> Self {
        Self(e.into())
    }
}

impl actix_web::ResponseError for Failure {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = if status.is_server_error() {
            tracing::error!(error = ?self.0, "console request failed");
            "This failed on our side; the answer's X-Request-Id header names it in the log."
                .to_owned()
        } else {
            self.0.to_scim("").detail
        };
        page(
            status,
            status.canonical_reason().unwrap_or("Refused"),
            None,
            html! { p.refused #failure { (detail) } },
        )
    }
}

/// A form the console's pages never send, as a page: 415 for another media type, 413 for
/// a body over the limit, 400 for the rest.
fn bad_form(error: actix_web::error::UrlencodedError) -> actix_web::Error {
    use actix_web::error::UrlencodedError;
    let refused = match error {
        UrlencodedError::ContentType => ApiError::Scim(ScimError::new(
            415,
            None,
            "send the form as application/x-www-form-urlencoded",
        )),
        UrlencodedError::Overflow { limit, .. } => ApiError::PayloadTooLarge(limit),
        other => ApiError::Scim(ScimError::invalid_value(other.to_string())),
    };
    Failure(refused).into()
}

/// A form or query the console's pages never send: 400, as a page.
fn bad_input(detail: String) -> actix_web::Error {
    Failure(ApiError::Scim(ScimError::invalid_value(detail))).into()
}

const STYLE: &str = include_str!("setup/setup.css");

/// What a revoke form revokes.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "kebab-case")]
#[allow(dead_code)]
enum RevokedKind {
    Tokens,
    SetupLinks,
}

/// The console's own OpenAPI document (`openapi/console.json`, `scimbus openapi --console`):
/// its pages and forms, for the API fuzzing and for reference. Not part of the service's
/// API document: the console is for people, and off unless enabled.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "scimbus operator console",
        description = "The operator console's pages and forms under /console/ \
                       (SCIMBUS_CONSOLE=on): HTML for a browser. Sign in with a named operator \
                       token; the session cookie then authenticates, and every form that changes \
                       something carries the session's CSRF token and must come from the \
                       console's own origin.",
        license(name = "Apache-2.0")
    ),
    paths(
        home, style, sign_in, sign_out, tenant_list, tenant_page, entry_page, release, discard,
        audit_page, events_page, issue_token, create_setup_link, revoke
    ),
    components(schemas(RevokedKind)),
    modifiers(&SessionCookie),
    security(("session" = [])),
    tags((name = "Console", description = "The operator console")),
)]
pub struct ConsoleDoc;

struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The session cookie that signing in sets (HttpOnly, SameSite=Strict, 8 hours).",
            ))),
        );
    }
}

/// The console's OpenAPI document as `openapi/console.json` holds it.
pub fn document_json() -> Result<String, serde_json::Error> {
    // What no database stores (a NUL) is refused in every field and parameter, as in the
    // service's document (the URL check of `context::security_headers`).
    let mut doc = serde_json::to_value(ConsoleDoc::openapi())?;
    super::openapi::refine::storable_everywhere(&mut doc);
    let mut text = serde_json::to_string_pretty(&doc)?;
    text.push('\n');
    Ok(text)
}

/// Mounts the console (its own OpenAPI document, [`ConsoleDoc`]: its pages are HTML for
/// people).
pub fn configure(cfg: &mut web::ServiceConfig) {
    let get = |path, route: actix_web::Route| resource(path, "GET", route.method(Method::GET));
    let post = |path, route: actix_web::Route| resource(path, "POST", route.method(Method::POST));
    cfg.service(
        web::scope("/console")
            .app_data(web::FormConfig::default().error_handler(|e, _| bad_form(e)))
            .app_data(web::QueryConfig::default().error_handler(|e, _| bad_input(e.to_string())))
            .service(get("/", web::to(home)))
            .service(get("/assets/console.css", web::to(style)))
            .service(post("/sign-in", web::to(sign_in)))
            .service(post("/sign-out", web::to(sign_out)))
            .service(get("/tenants", web::to(tenant_list)))
            .service(get("/tenants/{slug}", web::to(tenant_page)))
            .service(get("/tenants/{slug}/journal/{id}", web::to(entry_page)))
            .service(post("/tenants/{slug}/brake/release", web::to(release)))
            .service(post("/tenants/{slug}/brake/discard", web::to(discard)))
            .service(get("/tenants/{slug}/audit", web::to(audit_page)))
            .service(get("/tenants/{slug}/events", web::to(events_page)))
            .service(post("/tenants/{slug}/tokens", web::to(issue_token)))
            .service(post(
                "/tenants/{slug}/setup-links",
                web::to(create_setup_link),
            ))
            .service(post("/tenants/{slug}/{kind}/{id}/revoke", web::to(revoke))),
    );
}

/// A console page or form: its one method, and 405 with `Allow` (as a page) for any other.
fn resource(path: &str, allow: &'static str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(move || async move {
            let mut answer =
                Failure(ApiError::MethodNotAllowed(Some(allow.to_owned()))).error_response();
            answer
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allow));
            answer
        }))
}

#[utoipa::path(
    get,
    path = "/console/assets/console.css",
    operation_id = "consoleStyle",
    tag = "Console",
    security(()),
    responses(
        (status = 200, description = "The console's style sheet", content_type = "text/css", body = String),
    )
)]
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
) -> Result<Result<Operator, HttpResponse>, Failure> {
    let Some(session) = session(req) else {
        return Ok(Err(see_other("/console/")));
    };
    Ok(match console::operator(ctx, &session).await? {
        Some(operator) => Ok(operator),
        None => Err(see_other("/console/")),
    })
}

/// A form that changes something: the session's CSRF token (hidden in every form).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CsrfForm {
    csrf: String,
}

/// The operator of a change's form: signed in, the form from the console's origin with the
/// session's CSRF token; otherwise the answer (sign in, or 403 with nothing changed).
async fn change(
    ctx: &Context,
    req: &HttpRequest,
    csrf: &str,
) -> Result<Result<Operator, HttpResponse>, Failure> {
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

#[utoipa::path(
    get,
    path = "/console/",
    operation_id = "consoleHome",
    tag = "Console",
    security(()),
    responses(
        (status = 200, description = "The sign-in form", content_type = "text/html", body = String),
        (status = 303, description = "Signed in: to the tenants", headers(("Location" = String))),
    )
)]
async fn home(ctx: web::Data<Context>, req: HttpRequest) -> Result<HttpResponse, Failure> {
    if let Ok(_operator) = signed_in(&ctx, &req).await? {
        return Ok(see_other("/console/tenants"));
    }
    Ok(page(StatusCode::OK, "Sign in", None, sign_in_form(None)))
}

/// The sign-in form: a named operator token (`scimbus_a_…`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignInForm {
    token: String,
}

#[utoipa::path(
    post,
    path = "/console/sign-in",
    operation_id = "consoleSignIn",
    tag = "Console",
    security(()),
    request_body(content = SignInForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in: the session cookie, and to the tenants", headers(("Location" = String), ("Set-Cookie" = String))),
        (status = "default", description = "A page saying why (400, 401 not a live operator token, 403 from another origin); nothing changed", content_type = "text/html", body = String),
    )
)]
async fn sign_in(
    ctx: web::Data<Context>,
    req: HttpRequest,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, Failure> {
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

#[utoipa::path(
    post,
    path = "/console/sign-out",
    operation_id = "consoleSignOut",
    tag = "Console",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed out (or not signed in): to the sign-in page", headers(("Location" = String))),
        (status = "default", description = "A page saying why (400, 403); nothing changed", content_type = "text/html", body = String),
    )
)]
async fn sign_out(
    ctx: web::Data<Context>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, Failure> {
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

/// The tenants list's search and page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Slugs containing this text.
    q: Option<String>,
    /// Tenants after this slug (the previous page's last).
    after: Option<String>,
}

#[utoipa::path(
    get,
    path = "/console/tenants",
    operation_id = "consoleTenants",
    tag = "Console",
    params(ListParams),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 303, description = "Not signed in (or the session ended): to the sign-in page", headers(("Location" = String))),
        (status = "default", description = "A page saying why (400); nothing changed", content_type = "text/html", body = String),
    )
)]
async fn tenant_list(
    ctx: web::Data<Context>,
    req: HttpRequest,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, Failure> {
    let operator = match signed_in(&ctx, &req).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    let search = params.q.as_deref().filter(|q| !q.trim().is_empty());
    let (rows, more) = console::tenants(&ctx, search, params.after.as_deref()).await?;
    let now = ctx.clock.now();
    // Without a relay nothing is ever published: every event would count as backlog.
    let relay = ctx.keep_unpublished;
    let next = match rows.last() {
        Some(last) if more => {
            let mut next = url::form_urlencoded::Serializer::new(String::new());
            next.append_pair("after", &last.slug);
            if let Some(search) = search {
                next.append_pair("q", search);
            }
            Some(format!("/console/tenants?{}", next.finish()))
        }
        _ => None,
    };
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
                thead { tr {
                    th { "tenant" } th { "last IdP request" } th { "errors, last hour" }
                    th { "event backlog" } th { "oldest unpublished" } th { "brake" }
                } }
                tbody {
                    @for row in &rows {
                        tr data-tenant=(row.slug) {
                            td { a href={ "/console/tenants/" (row.slug) } { (row.slug) } }
                            td {
                                @if let Some((at, method, status)) = &row.last_request {
                                    (at.as_str()) " " (method) " → " (status)
                                } @else { "none yet" }
                            }
                            td.errors { (row.errors) }
                            @if relay {
                                td.backlog {
                                    (row.backlog.min(BACKLOG_CAP))
                                    @if row.backlog > BACKLOG_CAP { "+" }
                                }
                                td.oldest {
                                    @if let Some(at) = &row.oldest_unpublished {
                                        span title=(at.as_str()) { (age(now, at)) " old" }
                                    } @else { "—" }
                                }
                            } @else {
                                td.backlog { "no relay" } td.oldest { "—" }
                            }
                            td.brake {
                                @if let Some((since, n)) = &row.held { strong.refused { "holding since " (since.as_str()) " (" (n) @if *n == 1 { " event)" } @else { " events)" } } }
                                @else { "clear" }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = next {
                p { a #next href=(next) { "Next page" } }
            }
        },
    ))
}

/// The journal's filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct JournalParams {
    /// A status (`404`) or a class (`4xx`); empty: any.
    #[param(pattern = "^\\s*(|[1-5](xx|XX)|[1-5][0-9][0-9])\\s*$")]
    status: Option<String>,
    /// A method of SCIM; empty: any.
    #[param(pattern = "^(|GET|POST|PUT|PATCH|DELETE)$")]
    method: Option<String>,
    /// Only the last this many minutes: 15, 60, 1440 (a day); empty: any time.
    #[param(pattern = "^(|15|60|1440)$")]
    within: Option<String>,
}

/// How long ago `at` was, in its largest whole unit (`40 s`, `12 min`, `3 h`, `2 d`).
fn age(now: chrono::DateTime<chrono::Utc>, at: &Timestamp) -> String {
    let seconds = at.instant().map_or(0, |at| (now - at).num_seconds().max(0));
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7_200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3_600),
        s => format!("{} d", s / 86_400),
    }
}

/// The journal's time filter: its choices, in minutes, and their labels.
const JOURNAL_WITHIN: [(&str, &str); 3] = [
    ("15", "last 15 minutes"),
    ("60", "last hour"),
    ("1440", "last day"),
];

#[utoipa::path(
    get,
    path = "/console/tenants/{slug}",
    operation_id = "consoleTenant",
    tag = "Console",
    params(("slug" = String, Path, description = "Tenant slug."), JournalParams),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 303, description = "Not signed in (or the session ended): to the sign-in page", headers(("Location" = String))),
        (status = "default", description = "A page saying why (400 a status filter that is no status, 404); nothing changed", content_type = "text/html", body = String),
    )
)]
async fn tenant_page(
    ctx: web::Data<Context>,
    req: HttpRequest,
    slug: web::Path<String>,
    params: web::Query<JournalParams>,
) -> Result<HttpResponse, Failure> {
    let operator = match signed_in(&ctx, &req).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    tenant_view(&ctx, &operator, &slug, &params, None).await
}

/// What the page that answers a form shows once: a token just issued, a setup link just
/// made, or why the form changed nothing.
enum Issued {
    Token {
        name: String,
        secret: String,
    },
    SetupLink {
        url: String,
    },
    Refused {
        section: &'static str,
        detail: String,
    },
}

/// The notice of `issued` for a section of the tenant's page.
fn refusal<'a>(issued: &'a Option<Issued>, of: &str) -> Option<&'a str> {
    match issued {
        Some(Issued::Refused { section, detail }) if *section == of => Some(detail),
        _ => None,
    }
}

/// The methods the journal's filter offers.
const JOURNAL_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Jobs and audit entries shown on the tenant's page (the rest on their own pages).
const SHOWN_ON_TENANT_PAGE: u64 = 10;

async fn tenant_view(
    ctx: &Context,
    operator: &Operator,
    slug: &str,
    params: &JournalParams,
    issued: Option<Issued>,
) -> Result<HttpResponse, Failure> {
    let brake = brake::show(ctx, slug).await?;
    let tokens = tenants::list_tokens(ctx, slug).await?;
    let links = setup::list(ctx, slug).await?;
    let schemas = schemas::list(ctx, slug).await?;
    let jobs = jobs::list(ctx, slug).await?;
    let audit_entries = audit::newest(ctx, slug, None, SHOWN_ON_TENANT_PAGE).await?;
    let status = params.status.as_deref().filter(|s| !s.trim().is_empty());
    let method = params.method.as_deref().filter(|m| !m.is_empty());
    if method.is_some_and(|m| !JOURNAL_METHODS.contains(&m)) {
        return Err(
            ScimError::invalid_value("`method` is one of GET, POST, PUT, PATCH, DELETE").into(),
        );
    }
    let range = match status {
        Some(s) => Some(journal::status_range(s).ok_or_else(|| {
            ApiError::Scim(ScimError::invalid_value(
                "`status` is a status or a class such as 4xx",
            ))
        })?),
        None => None,
    };
    let within = params.within.as_deref().filter(|w| !w.is_empty());
    let since = match within {
        None => None,
        Some(w) => {
            let minutes = JOURNAL_WITHIN
                .iter()
                .find(|(value, _)| *value == w)
                .and_then(|(value, _)| value.parse::<i64>().ok())
                .ok_or_else(|| ScimError::invalid_value("`within` is 15, 60 or 1440 minutes"))?;
            Some(Timestamp::at(
                ctx.clock.now() - chrono::Duration::minutes(minutes),
            ))
        }
    };
    let query = JournalQuery {
        status: range,
        method,
        since: since.as_deref(),
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
                @if let Some(detail) = refusal(&issued, "brake") { p.refused #brake-refused { (detail) } }
                @if let Some(hold) = &brake.hold {
                    p.refused #brake-state { "Holding its events since " (hold.held_at.as_str()) " (tripped: " (hold.tripped.join(", ")) ")." }
                    ul #held { @for (kind, n) in &hold.counts { li { (n) " × " code { (kind) } } } }
                    @if let (Some(first), Some(last)) = (&hold.first, &hold.last) {
                        p { "From event " (first.sequence) " (" code { (first.event_type) } " of " (first.subject) ", " (first.time) ")"
                            " to event " (last.sequence) " (" code { (last.event_type) } " of " (last.subject) ", " (last.time) ")." }
                    }
                    form method="post" action={ "/console/tenants/" (slug) "/brake/release" } {
                        input type="hidden" name="csrf" value=(operator.csrf);
                        button #release type="submit" { "Release the held events, in order" }
                    }
                    form method="post" action={ "/console/tenants/" (slug) "/brake/discard" } {
                        input type="hidden" name="csrf" value=(operator.csrf);
                        p {
                            label for="confirm" {
                                "Or discard the held deprovisioning events — only when the IdP has since restored every resource they are of (the rest flow) — by typing the tenant's slug "
                                code { (slug) } " to confirm:"
                            }
                        }
                        input #confirm type="text" name="confirm" autocomplete="off" required;
                        " " button #discard type="submit" { "Discard" }
                    }
                } @else {
                    p #brake-state { "Not holding: events flow." }
                }
            }
            section #extensions {
                h2 { "Extension schemas" }
                @if schemas.is_empty() {
                    p #schema-list { "None: the core User and Group schemas only." }
                } @else {
                    table #schema-list {
                        thead { tr { th { "schema" } th { "name" } th { "attributes" } } }
                        tbody {
                            @for schema in &schemas {
                                tr {
                                    td { code { (schema["id"].as_str().unwrap_or("")) } }
                                    td { (schema["name"].as_str().unwrap_or("")) }
                                    td { (schema["attributes"].as_array().map_or(0, Vec::len)) }
                                }
                            }
                        }
                    }
                }
                h3 { "Re-index jobs" }
                @if jobs.is_empty() {
                    p #job-list { "None." }
                } @else {
                    table #job-list {
                        thead { tr { th { "queued" } th { "change" } th { "state" } th { "progress" } th { "values that do not fit" } } }
                        tbody {
                            @for job in jobs.iter().take(SHOWN_ON_TENANT_PAGE as usize) {
                                tr data-job=(job.id) {
                                    td { (job.created_at.as_str()) }
                                    td { (job.action) " " code { (job.schema) } " (" (job.resource_type) ")" }
                                    td.state { (job.state) @if let Some(e) = &job.error { ": " (e) } }
                                    td {
                                        progress value=(job.processed) max=(job.total.max(1)) {}
                                        " " span.progress { (job.processed) " of " (job.total) }
                                    }
                                    td { (job.non_conforming_count) }
                                }
                            }
                        }
                    }
                }
            }
            section #audit {
                h2 { "Audit log" }
                (audit_table(&audit_entries))
                p { a #all-audit href={ "/console/tenants/" (slug) "/audit" } { "The whole audit log" } }
            }
            section #events {
                h2 { "Events" }
                p { a #events-chart href={ "/console/tenants/" (slug) "/events" } { "Events per minute and relay lag" } }
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
                        @for m in JOURNAL_METHODS { option value=(m) selected[selected(m, method)] { (m) } }
                    }
                    " "
                    select name="within" {
                        option value="" selected[within.is_none()] { "any time" }
                        @for (value, label) in JOURNAL_WITHIN { option value=(value) selected[selected(value, within)] { (label) } }
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

#[utoipa::path(
    get,
    path = "/console/tenants/{slug}/journal/{id}",
    operation_id = "consoleJournalEntry",
    tag = "Console",
    params(("slug" = String, Path, description = "Tenant slug."), ("id" = String, Path, description = "Journal entry id.")),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 303, description = "Not signed in (or the session ended): to the sign-in page", headers(("Location" = String))),
        (status = "default", description = "A page saying why (404); nothing changed", content_type = "text/html", body = String),
    )
)]
async fn entry_page(
    ctx: web::Data<Context>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Failure> {
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

#[utoipa::path(
    post,
    path = "/console/tenants/{slug}/brake/release",
    operation_id = "consoleReleaseBrake",
    tag = "Console",
    params(("slug" = String, Path, description = "Tenant slug.")),
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Done: back to the tenant's page", headers(("Location" = String))),
        (status = "default", description = "A page saying why (400, 403, 404, 409 nothing held); nothing changed", content_type = "text/html", body = String),
    )
)]
async fn release(
    ctx: web::Data<Context>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, Failure> {
    let operator = match change(&ctx, &req, &form.csrf).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    let released = brake::release(&ctx, &operator.actor(), &slug).await?;
    tracing::info!(actor = %operator.name, tenant = %slug, released = released.released, "brake released from the console");
    Ok(see_other(&format!("/console/tenants/{}", slug.as_str())))
}

/// The discard form: the tenant's slug typed to confirm.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DiscardForm {
    csrf: String,
    confirm: String,
}

/// Discards the held deprovisioning events once the operator typed the tenant's slug;
/// otherwise, or when the service refuses (a resource still deprovisioned), the tenant's
/// page says why and nothing changed.
#[utoipa::path(
    post,
    path = "/console/tenants/{slug}/brake/discard",
    operation_id = "consoleDiscardHold",
    tag = "Console",
    params(("slug" = String, Path, description = "Tenant slug.")),
    request_body(content = DiscardForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Done: back to the tenant's page", headers(("Location" = String))),
        (status = "default", description = "A page saying why (400 unconfirmed, 403, 404, 409 nothing held or a resource still deprovisioned); nothing changed", content_type = "text/html", body = String),
    )
)]
async fn discard(
    ctx: web::Data<Context>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<DiscardForm>,
) -> Result<HttpResponse, Failure> {
    let operator = match change(&ctx, &req, &form.csrf).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    let outcome = if form.confirm.trim() != slug.as_str() {
        Err((
            StatusCode::BAD_REQUEST,
            format!("Type the tenant's slug ({slug}) to confirm: nothing was discarded."),
        ))
    } else {
        match brake::discard(&ctx, &operator.actor(), &slug).await {
            Ok(done) => Ok(done),
            Err(ServiceError::Invalid(e)) => Err((
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::CONFLICT),
                format!("Nothing was discarded: {}", e.detail),
            )),
            Err(e) => return Err(e.into()),
        }
    };
    match outcome {
        Ok(done) => {
            tracing::info!(actor = %operator.name, tenant = %slug, discarded = done.discarded, released = done.released, "brake discarded from the console");
            Ok(see_other(&format!("/console/tenants/{}", slug.as_str())))
        }
        Err((status, detail)) => {
            let notice = Issued::Refused {
                section: "brake",
                detail,
            };
            let mut page = tenant_view(
                &ctx,
                &operator,
                &slug,
                &JournalParams::default(),
                Some(notice),
            )
            .await?;
            *page.status_mut() = status;
            Ok(page)
        }
    }
}

fn audit_table(entries: &[AuditEntry]) -> Markup {
    html! {
        table.audit {
            thead { tr { th { "time" } th { "actor" } th { "action" } th { "target" } th { "detail" } } }
            tbody {
                @for e in entries {
                    tr {
                        td { (e.at.as_str()) }
                        td { (e.actor) }
                        td { code { (e.action) } }
                        td { (e.target.as_deref().unwrap_or("")) }
                        td { code { (e.detail) } }
                    }
                }
            }
        }
    }
}

/// Audit entries on one page of the tenant's audit log.
const AUDIT_PER_PAGE: u64 = 100;

/// The audit log's page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditParams {
    /// Entries before this entry id (the previous page's last).
    before: Option<String>,
}

/// The tenant's audit log, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/console/tenants/{slug}/audit",
    operation_id = "consoleAudit",
    tag = "Console",
    params(("slug" = String, Path, description = "Tenant slug."), AuditParams),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 303, description = "Not signed in (or the session ended): to the sign-in page", headers(("Location" = String))),
        (status = "default", description = "A page saying why (400, 404); nothing changed", content_type = "text/html", body = String),
    )
)]
async fn audit_page(
    ctx: web::Data<Context>,
    req: HttpRequest,
    slug: web::Path<String>,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, Failure> {
    let operator = match signed_in(&ctx, &req).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    // One more than a page: whether anything older exists (a full last page has no link).
    let mut entries =
        audit::newest(&ctx, &slug, params.before.as_deref(), AUDIT_PER_PAGE + 1).await?;
    let more = entries.len() as u64 > AUDIT_PER_PAGE;
    entries.truncate(usize::try_from(AUDIT_PER_PAGE).unwrap_or(usize::MAX));
    let older = match entries.last() {
        Some(last) if more => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("before", &last.id);
            Some(format!("/console/tenants/{slug}/audit?{}", query.finish()))
        }
        _ => None,
    };
    Ok(page(
        StatusCode::OK,
        &format!("Audit log of {slug}"),
        Some(&operator),
        html! {
            (audit_table(&entries))
            @if let Some(older) = older { p { a #older href=(older) { "Older entries" } } }
            p { a href={ "/console/tenants/" (slug.as_str()) } { "Back to the tenant" } }
        },
    ))
}

/// The events chart's window.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsParams {
    /// The last hours shown, 1 to 24 (default 3).
    #[param(minimum = 1, maximum = 24)]
    hours: Option<i64>,
}

/// The chart's drawing area, in SVG user units.
const CHART_WIDTH: f64 = 720.0;
const CHART_HEIGHT: f64 = 160.0;

/// One series of the events page as an SVG chart (rendered here: no script, no library):
/// a bar per minute, the axis labelled with the series' maximum and the window's ends.
fn chart(
    id: &str,
    title: &str,
    unit: &str,
    minutes: &[EventMinute],
    value: fn(&EventMinute) -> f64,
) -> Markup {
    let top = minutes.iter().map(value).fold(0.0_f64, f64::max);
    let scale = if top > 0.0 { CHART_HEIGHT / top } else { 0.0 };
    let step = CHART_WIDTH / minutes.len().max(1) as f64;
    let first = minutes.first().map_or("", |m| m.minute.as_str());
    let last = minutes.last().map_or("", |m| m.minute.as_str());
    let shown = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    html! {
        figure {
            figcaption { (title) ": at most " strong { (shown(top)) } " " (unit) " in a minute" }
            svg #(id) xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
                viewBox={ "0 0 " (CHART_WIDTH + 60.0) " " (CHART_HEIGHT + 30.0) } width="100%" {
                line x1="0" y1=(CHART_HEIGHT) x2=(CHART_WIDTH) y2=(CHART_HEIGHT) stroke="#888" {}
                line x1="0" y1="0" x2=(CHART_WIDTH) y2="0" stroke="#ddd" {}
                text x=(CHART_WIDTH + 4.0) y="10" font-size="11" { (shown(top)) " " (unit) }
                text x=(CHART_WIDTH + 4.0) y=(CHART_HEIGHT) font-size="11" { "0" }
                @for (i, m) in minutes.iter().enumerate() {
                    @let h = value(m) * scale;
                    @if h > 0.0 {
                        rect x=(format!("{:.2}", i as f64 * step)) y=(format!("{:.2}", CHART_HEIGHT - h))
                            width=(format!("{:.2}", step.max(1.0))) height=(format!("{:.2}", h)) fill="#2b6cb0" {
                            title { (m.minute) ": " (shown(value(m))) " " (unit) }
                        }
                    }
                }
                text x="0" y=(CHART_HEIGHT + 20.0) font-size="11" { (first) }
                text x=(CHART_WIDTH) y=(CHART_HEIGHT + 20.0) font-size="11" text-anchor="end" { (last) " UTC" }
            }
        }
    }
}

/// A tenant's events per minute and relay lag over the last hours.
#[utoipa::path(
    get,
    path = "/console/tenants/{slug}/events",
    operation_id = "consoleEvents",
    tag = "Console",
    params(("slug" = String, Path, description = "Tenant slug."), EventsParams),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 303, description = "Not signed in (or the session ended): to the sign-in page", headers(("Location" = String))),
        (status = "default", description = "A page saying why (400, 404); nothing changed", content_type = "text/html", body = String),
    )
)]
async fn events_page(
    ctx: web::Data<Context>,
    req: HttpRequest,
    slug: web::Path<String>,
    params: web::Query<EventsParams>,
) -> Result<HttpResponse, Failure> {
    let operator = match signed_in(&ctx, &req).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    let hours = params.hours.unwrap_or(3);
    if !(1..=console::CHART_MAX_HOURS).contains(&hours) {
        return Err(ScimError::invalid_value(format!(
            "`hours` is 1 to {}",
            console::CHART_MAX_HOURS
        ))
        .into());
    }
    let minutes = console::event_minutes(&ctx, &slug, hours).await?;
    let total: i64 = minutes.iter().map(|m| m.events).sum();
    Ok(page(
        StatusCode::OK,
        &format!("Events of {slug}"),
        Some(&operator),
        html! {
            form method="get" action={ "/console/tenants/" (slug.as_str()) "/events" } {
                select name="hours" {
                    @for h in [1, 3, 6, 12, 24] { option value=(h) selected[h == hours] { "last " (h) " h" } }
                }
                " " button #show type="submit" { "Show" }
            }
            p #event-total { (total) " events in the last " (hours) " h." }
            (chart("events-per-minute", "Events per minute", "events", &minutes, |m| m.events as f64))
            @if ctx.keep_unpublished {
                (chart("relay-lag", "Relay lag (the longest wait from written to published)", "s", &minutes, |m| m.max_lag_seconds))
            } @else {
                p #no-relay { "No relay publishes this deployment's events to RabbitMQ (retention prunes unpublished events: SCIMBUS_RETENTION_UNPUBLISHED=prune, the default on SQLite without SCIMBUS_AMQP_URL): apps read them through the pull API or SET receivers, and there is no relay lag to show." }
            }
            p { a href={ "/console/tenants/" (slug.as_str()) } { "Back to the tenant" } }
        },
    ))
}

/// The token form: the new token's name (scope `scim`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct IssueForm {
    csrf: String,
    /// 1 to 100 characters, not only spaces (kept trimmed).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    name: String,
}

/// Issues a `scim` token for the tenant and shows its secret once, on the page that
/// answers (never cached; a reload re-posts and issues another, as the browser warns).
#[utoipa::path(
    post,
    path = "/console/tenants/{slug}/tokens",
    operation_id = "consoleIssueToken",
    tag = "Console",
    params(("slug" = String, Path, description = "Tenant slug.")),
    request_body(content = IssueForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The tenant's page with the new token's secret, shown once", content_type = "text/html", body = String),
        (status = 303, description = "Not signed in (or the session ended): to the sign-in page", headers(("Location" = String))),
        (status = "default", description = "A page saying why (400, 403, 404); nothing changed", content_type = "text/html", body = String),
    )
)]
async fn issue_token(
    ctx: web::Data<Context>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<IssueForm>,
) -> Result<HttpResponse, Failure> {
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
#[utoipa::path(
    post,
    path = "/console/tenants/{slug}/setup-links",
    operation_id = "consoleCreateSetupLink",
    tag = "Console",
    params(("slug" = String, Path, description = "Tenant slug.")),
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The tenant's page with the link's address, shown once", content_type = "text/html", body = String),
        (status = 303, description = "Not signed in (or the session ended): to the sign-in page", headers(("Location" = String))),
        (status = "default", description = "A page saying why (400, 403, 404); nothing changed", content_type = "text/html", body = String),
    )
)]
async fn create_setup_link(
    ctx: web::Data<Context>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, Failure> {
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
#[utoipa::path(
    post,
    path = "/console/tenants/{slug}/{kind}/{id}/revoke",
    operation_id = "consoleRevoke",
    tag = "Console",
    params(("slug" = String, Path, description = "Tenant slug."), ("kind" = RevokedKind, Path, description = "What to revoke."), ("id" = String, Path, description = "The token's or setup link's id.")),
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Done: back to the tenant's page", headers(("Location" = String))),
        (status = "default", description = "A page saying why (400, 403, 404); nothing changed", content_type = "text/html", body = String),
    )
)]
async fn revoke(
    ctx: web::Data<Context>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, Failure> {
    let operator = match change(&ctx, &req, &form.csrf).await? {
        Ok(operator) => operator,
        Err(answer) => return Ok(answer),
    };
    let (slug, kind, id) = path.into_inner();
    match kind.as_str() {
        "tokens" => tenants::revoke_token(&ctx, &operator.actor(), &slug, &id).await?,
        "setup-links" => setup::revoke(&ctx, &operator.actor(), &slug, &id).await?,
        _ => return Err(ApiError::not_found("no such endpoint".to_owned()).into()),
    }
    tracing::info!(actor = %operator.name, tenant = %slug, %kind, %id, "revoked from the console");
    Ok(see_other(&format!("/console/tenants/{slug}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_age_is_shown_in_its_largest_whole_unit() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-03T00:00:00Z")
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        for (at, shown) in [
            ("2026-01-03T00:00:00.000Z", "0 s"),
            ("2026-01-02T23:58:01.000Z", "119 s"),
            ("2026-01-02T23:58:00.000Z", "2 min"),
            ("2026-01-02T22:00:01.000Z", "119 min"),
            ("2026-01-02T22:00:00.000Z", "2 h"),
            ("2026-01-01T00:00:00.000Z", "2 d"),
            ("2026-01-04T00:00:00.000Z", "0 s"),
        ] {
            assert_eq!(age(now, &Timestamp::from(at)), shown, "{at}");
        }
    }
}
