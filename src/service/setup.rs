//! Customer setup links (docs/decisions.md, Setup links). An operator creates an expiring link for a tenant
//! (admin API, CLI); the tenant's IdP admin opens it without any other credential and
//! takes the SCIM base URL, one token (revealed once, on their click) and the Okta or Entra
//! steps, then watches the first requests of their IdP arrive (from the request journal).
//!
//! A link is single-use: revealing its token uses it, and from then on it answers only the
//! browser that did (its session cookie, kept as a hash); any other opening is refused
//! (410). It can be revoked, and it ends at its expiry. It shows nothing of other tenants:
//! every read goes through the link's own tenant.

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use super::audit::{self, Actor};
use super::tenants::live_tenant;
use super::{Context, ServiceError};
use crate::domain::{JournalEntry, JournalQuery, Scope, Tenant, Timestamp, TokenName};
use crate::scim::error::ScimError;
use crate::store::setup::{self as store, SetupLinkRow};
use crate::store::tokens::{self, NewToken};
use crate::store::{journal, tenants};
use crate::tenancy::token;

/// The prefix of a setup link's secret.
pub const LINK_PREFIX: &str = "scimbus_s_";
/// How long a link lives unless asked otherwise.
pub const DEFAULT_LIFETIME: Duration = Duration::hours(72);
/// The longest a link may live.
pub const MAX_LIFETIME: Duration = Duration::days(30);
/// How many of the IdP's first requests the connection check shows.
const CHECK_REQUESTS: u64 = 20;

/// A setup link as operators see it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SetupLinkInfo {
    pub id: String,
    pub tenant: String,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    /// The operator who created it (`admin:<name>`).
    #[serde(rename = "createdBy")]
    pub created_by: String,
    #[serde(rename = "expiresAt")]
    pub expires_at: String,
    /// `open` (not used yet), `used` (its token was revealed), `expired` or `revoked`.
    #[schema(example = "open")]
    pub state: &'static str,
    /// When its token was revealed.
    #[serde(rename = "usedAt", skip_serializing_if = "Option::is_none")]
    pub used_at: Option<String>,
    /// The id of the token it revealed (revoke it like any token).
    #[serde(rename = "tokenId", skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

fn info(link: SetupLinkRow, tenant: &Tenant, now: DateTime<Utc>) -> SetupLinkInfo {
    let state = if link.revoked_at.is_some() {
        "revoked"
    } else if link.used_at.is_some() {
        "used"
    } else if expired(&link, now) {
        "expired"
    } else {
        "open"
    };
    SetupLinkInfo {
        id: link.id,
        tenant: tenant.slug.to_string(),
        created_at: link.created_at.to_string(),
        created_by: link.created_by,
        expires_at: link.expires_at.to_string(),
        state,
        used_at: link.used_at.map(|t| t.to_string()),
        token_id: link.token_id,
    }
}

fn expired(link: &SetupLinkRow, now: DateTime<Utc>) -> bool {
    link.expires_at.instant().is_none_or(|at| at <= now)
}

/// The page's address for a link secret.
pub fn link_url(ctx: &Context, secret: &str) -> String {
    format!(
        "{}/setup/{secret}",
        ctx.public_url.as_str().trim_end_matches('/')
    )
}

/// Creates a link for the tenant `slug`, living `lifetime` (at most [`MAX_LIFETIME`]); its
/// address (holding the secret) is returned once and only the secret's hash is stored.
#[tracing::instrument(skip(ctx, actor), err(level = "debug"))]
pub async fn create(
    ctx: &Context,
    actor: &Actor,
    slug: &str,
    lifetime: Option<Duration>,
) -> Result<(SetupLinkInfo, SecretString), ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    let lifetime = lifetime.unwrap_or(DEFAULT_LIFETIME);
    if lifetime <= Duration::zero() || lifetime > MAX_LIFETIME {
        return Err(ServiceError::invalid_value(format!(
            "a setup link lives more than 0 and at most {} hours",
            MAX_LIFETIME.num_hours()
        )));
    }
    let now = ctx.clock.now();
    let secret = token::generate(LINK_PREFIX);
    let link = SetupLinkRow {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.id.clone(),
        created_at: Timestamp::at(now),
        created_by: actor.as_str().to_owned(),
        expires_at: Timestamp::at(now + lifetime),
        used_at: None,
        session_hash: None,
        token_id: None,
        revoked_at: None,
    };
    let txn = ctx.store.begin_write().await?;
    store::insert(&txn, &link, &token::hash_secret(&secret)).await?;
    audit::record(
        &txn,
        ctx,
        actor,
        "setup_link.create",
        Some(tenant.slug.as_str()),
        Some(&link.id),
        json!({ "expiresAt": link.expires_at }),
    )
    .await?;
    txn.commit().await?;
    let url = SecretString::from(link_url(ctx, secrecy::ExposeSecret::expose_secret(&secret)));
    Ok((info(link, &tenant, now), url))
}

/// The tenant's links, newest first.
pub async fn list(ctx: &Context, slug: &str) -> Result<Vec<SetupLinkInfo>, ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    let now = ctx.clock.now();
    Ok(store::list(ctx.store.conn(), &tenant.id)
        .await?
        .into_iter()
        .map(|l| info(l, &tenant, now))
        .collect())
}

/// Revokes the tenant's link `id` (the token it revealed stays: revoke that as a token).
#[tracing::instrument(skip(ctx, actor), err(level = "debug"))]
pub async fn revoke(
    ctx: &Context,
    actor: &Actor,
    slug: &str,
    id: &str,
) -> Result<(), ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    let now = Timestamp::at(ctx.clock.now());
    let txn = ctx.store.begin_write().await?;
    if !store::revoke(&txn, &tenant.id, id, &now).await? {
        return Err(ServiceError::NotFound(format!(
            "setup link {id} not found in tenant {}",
            tenant.slug
        )));
    }
    audit::record(
        &txn,
        ctx,
        actor,
        "setup_link.revoke",
        Some(tenant.slug.as_str()),
        Some(id),
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// What the customer's page shows of a link.
#[derive(Debug, Clone)]
pub struct SetupView {
    pub link_id: String,
    pub tenant: Tenant,
    /// The SCIM base URL to enter in the IdP.
    pub scim_base: String,
    pub expires_at: Timestamp,
    /// Whether its token was revealed (to this browser).
    pub used: bool,
    /// The name of the token it revealed.
    pub token_name: Option<String>,
}

fn refused(status: u16, detail: &str) -> ServiceError {
    ScimError::new(status, None, detail).into()
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("no such setup link".to_owned())
}

/// The name of the token a link reveals.
fn token_name(link_id: &str) -> String {
    let tail = link_id.rsplit('-').next().unwrap_or(link_id);
    format!("setup-{tail}")
}

/// The link with this secret, if the caller may see it: a live link not used yet, or a
/// used one to the browser that used it (`session`).
async fn live_link(
    ctx: &Context,
    secret: &str,
    session: Option<&str>,
) -> Result<(SetupLinkRow, Tenant), ServiceError> {
    if !secret.starts_with(LINK_PREFIX) {
        return Err(not_found());
    }
    let conn = ctx.store.conn();
    let link = store::by_hash(conn, &token::hash(secret))
        .await?
        .ok_or_else(not_found)?;
    let tenant = tenants::find_by_id(conn, &link.tenant_id)
        .await?
        .filter(|t| t.deleted_at.is_none())
        .ok_or_else(not_found)?;
    if link.revoked_at.is_some() {
        return Err(refused(
            410,
            "this setup link was revoked; ask for a new one",
        ));
    }
    if expired(&link, ctx.clock.now()) {
        return Err(refused(
            410,
            "this setup link has expired; ask for a new one",
        ));
    }
    if link.used_at.is_some() {
        let mine = match (session, link.session_hash.as_deref()) {
            (Some(session), Some(hash)) => token::hash(session) == hash,
            _ => false,
        };
        if !mine {
            return Err(refused(
                410,
                "this setup link has been used; ask for a new one if you need another token",
            ));
        }
    }
    Ok((link, tenant))
}

fn view(ctx: &Context, link: &SetupLinkRow, tenant: Tenant) -> SetupView {
    SetupView {
        link_id: link.id.clone(),
        scim_base: ctx.scim_base(&tenant.slug),
        tenant,
        expires_at: link.expires_at.clone(),
        used: link.used_at.is_some(),
        token_name: link.used_at.as_ref().map(|_| token_name(&link.id)),
    }
}

/// Opens the link (the customer's page).
/// Opens the link (the customer's page) with its connection check, reading the link once.
pub async fn open(
    ctx: &Context,
    secret: &str,
    session: Option<&str>,
) -> Result<(SetupView, ConnectionCheck), ServiceError> {
    let (link, tenant) = live_link(ctx, secret, session).await?;
    let check = connection(ctx, &link, &tenant).await?;
    Ok((view(ctx, &link, tenant), check))
}

/// What revealing a link's token gives: the page, the token (once) and the browser's
/// session secret (its cookie).
pub struct Revealed {
    pub view: SetupView,
    pub token: SecretString,
    pub session: SecretString,
}

/// Reveals the link's token: issues a `scim` token for its tenant and uses the link, in one
/// transaction; of concurrent reveals only one succeeds, the others are refused as a reuse.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn reveal(ctx: &Context, secret: &str) -> Result<Revealed, ServiceError> {
    let (link, tenant) = live_link(ctx, secret, None).await?;
    let now = ctx.clock.now();
    let token = token::generate(token::TENANT_PREFIX);
    let session = token::generate("");
    let token_id = uuid::Uuid::now_v7().to_string();
    let name = TokenName::parse(&token_name(&link.id)).map_err(ServiceError::invalid_value)?;
    let txn = ctx.store.begin_write().await?;
    let at = Timestamp::at(now);
    if !store::mark_used(
        &txn,
        &link.id,
        &token::hash_secret(&session),
        &token_id,
        &at,
    )
    .await?
    {
        return Err(refused(
            410,
            "this setup link has been used; ask for a new one if you need another token",
        ));
    }
    tokens::insert(
        &txn,
        NewToken {
            tenant_id: &tenant.id,
            id: &token_id,
            name: name.as_str(),
            hash: &token::hash_secret(&token),
            scopes: &[Scope::Scim],
            now: &at,
            expires_at: None,
        },
    )
    .await?;
    let actor = Actor::setup_link(&link.id);
    audit::record(
        &txn,
        ctx,
        &actor,
        "setup_link.use",
        Some(tenant.slug.as_str()),
        Some(&link.id),
        json!({ "tokenId": token_id, "tokenName": name.as_str() }),
    )
    .await?;
    txn.commit().await?;
    let mut used = link;
    used.used_at = Some(at);
    Ok(Revealed {
        view: view(ctx, &used, tenant),
        token,
        session,
    })
}

/// The connection check: the first requests that came with the link's token.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectionCheck {
    /// `waiting` (no request yet, or the token not revealed), `connected` (a request
    /// succeeded) or `failing` (requests came, none succeeded).
    #[schema(example = "connected")]
    pub state: &'static str,
    /// The requests, oldest first (at most 20), without bodies.
    pub requests: Vec<CheckedRequest>,
}

/// One request of the IdP, as the connection check shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckedRequest {
    pub at: String,
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub status: i32,
    #[serde(rename = "scimType", skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<String>,
    /// The error's detail, for a failed request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn checked(entry: JournalEntry) -> CheckedRequest {
    let detail = (entry.status >= 400)
        .then(|| {
            entry
                .response_body
                .as_deref()
                .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
                .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        })
        .flatten();
    CheckedRequest {
        at: entry.at.to_string(),
        method: entry.method,
        target: entry.target,
        status: entry.status,
        scim_type: entry.scim_type,
        detail,
    }
}

/// The connection check of the link (to the browser that used it).
pub async fn check(
    ctx: &Context,
    secret: &str,
    session: Option<&str>,
) -> Result<ConnectionCheck, ServiceError> {
    let (link, tenant) = live_link(ctx, secret, session).await?;
    connection(ctx, &link, &tenant).await
}

/// The connection check of a link the caller may see.
async fn connection(
    ctx: &Context,
    link: &SetupLinkRow,
    tenant: &Tenant,
) -> Result<ConnectionCheck, ServiceError> {
    let (Some(used_at), Some(name)) = (
        link.used_at.as_ref(),
        link.used_at.as_ref().map(|_| token_name(&link.id)),
    ) else {
        return Ok(ConnectionCheck {
            state: "waiting",
            requests: vec![],
        });
    };
    // The journal's newest first; the check reads a few pages since the token was issued.
    let mut requests = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..5 {
        let page = journal::list(
            ctx.store.conn(),
            &tenant.id,
            &JournalQuery {
                id: None,
                before: before.as_deref(),
                since: Some(used_at),
                status: None,
                method: None,
                limit: 200,
            },
        )
        .await?;
        let full = page.len() == 200;
        before = page.last().map(|e| e.id.clone());
        requests.extend(page.into_iter().filter(|e| e.token_name == name));
        if !full {
            break;
        }
    }
    requests.reverse();
    requests.truncate(usize::try_from(CHECK_REQUESTS).unwrap_or(20));
    let state = if requests.iter().any(|e| (200..300).contains(&e.status)) {
        "connected"
    } else if requests.is_empty() {
        "waiting"
    } else {
        "failing"
    };
    Ok(ConnectionCheck {
        state,
        requests: requests.into_iter().map(checked).collect(),
    })
}
