//! Security event tokens (RFC 9967) for receivers that poll (RFC 8936), shared by the
//! admin API, the CLI and the poll endpoint: signing keys (made on first need, rotated
//! with overlap, published as a JWKS), a tenant's receivers, and the poll itself.
//!
//! A receiver is a cursor over its tenant's event sequence, like a pull consumer: its
//! `position` is the last sequence whose SETs it has all acknowledged. A poll first records
//! the acknowledgements, moves the position over every event now fully acknowledged, then
//! renders and signs the SETs of the events after it that are not acknowledged yet, in
//! sequence order. Events a brake holds or that were discarded are never rendered (the
//! outbox page skips them); erased events are rendered without personal data.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::audit::{self, Actor};
use super::tenants::live_tenant;
use super::{Context, ServiceError};
use crate::config::SetSettings;
use crate::domain::{Tenant, Timestamp, TokenName};
pub use crate::events::jws::Alg;
use crate::events::jws::{self, KeyError, Sealer, Signer};
pub use crate::events::set::Form;
use crate::events::set::{self, Issue, Wanted};
use crate::events::signing::SigningPool;
use crate::scim::error::ScimError;
use crate::store::sets::{self as store, KeyRow, ReceiverRow};
use crate::store::{outbox, tenants};
use crate::tenancy::token;

/// Every event URI scimbus makes (RFC 9967 §4 `eventUris`).
pub const EVENT_URIS: [&str; 12] = set::uri::ALL;

/// Prefix of receiver credentials.
pub const RECEIVER_PREFIX: &str = "scimbus_r_";
/// Most SETs one poll answers with (`maxEvents` above it, or omitted, is this).
pub const MAX_EVENTS: usize = 1000;
/// Envelopes read per outbox page while a poll gathers SETs.
const PAGE: u64 = 200;
/// Pages one poll reads at most, moving the position or gathering SETs (a receiver that
/// filters most events out gets the rest of a long stretch in its next polls).
const MAX_SCAN_PAGES: usize = 25;
/// Longest a poll waits for an event (`returnImmediately: false`).
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The settings and this process's unsealed signers (by `kid`).
#[derive(Clone, Debug, Default)]
pub struct Sets {
    pub settings: SetSettings,
    signers: Arc<Mutex<HashMap<String, Arc<Signer>>>>,
    /// The signing threads, started by the first SET signed.
    signing: Arc<std::sync::OnceLock<SigningPool>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl Sets {
    pub fn new(settings: SetSettings) -> Self {
        Self {
            settings,
            signers: Arc::default(),
            signing: Arc::default(),
        }
    }

    /// Runs `work` on the signing threads (`events::signing`), starting them if need be.
    async fn sign<T, F>(&self, work: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let pool = match self.signing.get() {
            Some(pool) => pool,
            None => {
                let started =
                    SigningPool::start(self.settings.signing_threads, self.settings.signing_nice)
                        .map_err(|e| ServiceError::Internal(anyhow::anyhow!(e)))?;
                // Two first signers may race: one pool stays, the other's threads end.
                let _ = self.signing.set(started);
                self.signing
                    .get()
                    .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("no signing pool")))?
            }
        };
        pool.run(work)
            .await
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!(e)))
    }

    /// Whether SETs can be made here (`SCIMBUS_SET_KEY_SECRET` is set).
    pub fn enabled(&self) -> bool {
        self.settings.key_secret.is_some()
    }

    pub(super) fn sealer(&self) -> Result<Sealer, ServiceError> {
        Sealer::new(self.settings.key_secret.as_ref()).map_err(key_error)
    }
}

pub(super) fn key_error(error: KeyError) -> ServiceError {
    match error {
        KeyError::NoSecret => ServiceError::Invalid(ScimError::new(
            409,
            None,
            "security event tokens are off: set SCIMBUS_SET_KEY_SECRET (32 characters or more) \
             on every replica",
        )),
        other => ServiceError::Internal(anyhow::anyhow!(other)),
    }
}

/// A signing key as the admin API and the CLI show it: never its private part.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    pub kid: String,
    #[schema(value_type = String, example = "RS256")]
    pub alg: String,
    pub created_at: String,
    /// When a newer key of its algorithm replaced it; absent: it signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_at: Option<String>,
    /// When it leaves the JWKS; absent: published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpublish_at: Option<String>,
}

impl From<&KeyRow> for KeyInfo {
    fn from(k: &KeyRow) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            created_at: k.created_at.to_string(),
            replaced_at: k.replaced_at.as_ref().map(ToString::to_string),
            unpublish_at: k.unpublish_at.as_ref().map(ToString::to_string),
        }
    }
}

/// Makes, seals and stores a new key of `alg`; the keys it replaces stay published for
/// `SCIMBUS_SET_KEY_OVERLAP_HOURS`.
pub async fn rotate(ctx: &Context, actor: &Actor, alg: Alg) -> Result<KeyInfo, ServiceError> {
    let sealer = ctx.sets.sealer()?;
    // RSA key generation takes a while: off the async workers.
    let key = tokio::task::spawn_blocking(move || jws::generate(alg))
        .await
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!(e)))?
        .map_err(key_error)?;
    let now = ctx.clock.now();
    let row = KeyRow {
        kid: key.kid.clone(),
        alg: alg.as_str().to_owned(),
        public_jwk: key.jwk.clone(),
        sealed_key: sealer.seal(&key.kid, &key.pkcs8).map_err(key_error)?,
        created_at: Timestamp::at(now),
        replaced_at: None,
        unpublish_at: None,
    };
    let overlap = chrono::TimeDelta::from_std(ctx.sets.settings.key_overlap)
        .unwrap_or(chrono::TimeDelta::days(7));
    let unpublish_at = Timestamp::at(now.checked_add_signed(overlap).unwrap_or(now));
    let txn = ctx.store.begin_write().await?;
    store::insert_key(&txn, &row).await?;
    let replaced =
        store::replace_keys(&txn, alg.as_str(), &key.kid, &row.created_at, &unpublish_at).await?;
    audit::record(
        &txn,
        ctx,
        actor,
        "set_key.rotate",
        None,
        Some(&key.kid),
        json!({"alg": alg.as_str(), "replaced": replaced}),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(kid = %key.kid, alg = alg.as_str(), replaced, "SET signing key rotated");
    Ok(KeyInfo::from(&row))
}

/// Every stored key, newest first.
pub async fn keys(ctx: &Context) -> Result<Vec<KeyInfo>, ServiceError> {
    Ok(store::keys(ctx.store.conn())
        .await?
        .iter()
        .map(KeyInfo::from)
        .collect())
}

/// The JWKS (RFC 7517): every key still published.
pub async fn jwks(ctx: &Context) -> Result<Value, ServiceError> {
    if !ctx.sets.enabled() {
        return Ok(json!({ "keys": [] }));
    }
    let now = ctx.now();
    let keys: Vec<Value> = store::keys(ctx.store.conn())
        .await?
        .into_iter()
        .filter(|k| k.unpublish_at.as_ref().is_none_or(|at| **at > *now))
        .map(|k| k.public_jwk)
        .collect();
    Ok(json!({ "keys": keys }))
}

/// The signer of `alg`: the newest key not replaced, made now when there is none.
async fn signer(ctx: &Context, alg: Alg) -> Result<Arc<Signer>, ServiceError> {
    let current = store::keys(ctx.store.conn())
        .await?
        .into_iter()
        .find(|k| k.alg == alg.as_str() && k.replaced_at.is_none());
    let Some(row) = current else {
        rotate(ctx, &Actor::system(), alg).await?;
        return Box::pin(signer(ctx, alg)).await;
    };
    let mut cache = ctx.sets.signers.lock().await;
    if let Some(signer) = cache.get(&row.kid) {
        return Ok(signer.clone());
    }
    let pkcs8 = ctx
        .sets
        .sealer()?
        .open(&row.kid, &row.sealed_key)
        .map_err(key_error)?;
    let signer = Arc::new(Signer::from_pkcs8(&row.kid, alg, &pkcs8).map_err(key_error)?);
    cache.insert(row.kid.clone(), signer.clone());
    Ok(signer)
}

/// What registering a receiver asks for.
#[derive(Debug, Clone, Default)]
pub struct ReceiverRequest {
    pub name: String,
    pub form: Form,
    /// Event URIs; empty: every URI of the form.
    pub events: Vec<String>,
    pub signals: bool,
    pub alg: Option<Alg>,
    /// `aud` of its SETs; default `urn:scimbus:set-receiver:{id}`.
    pub audience: Option<String>,
    /// Start after this sequence (replay what retention keeps); default: the tenant's
    /// latest, so the receiver gets what happens from now on.
    pub after: Option<i64>,
    /// Push delivery (RFC 8935) to this endpoint; `None`: the receiver polls (RFC 8936).
    pub push: Option<PushTarget>,
}

/// Where a push receiver's SETs go.
#[derive(Debug, Clone)]
pub struct PushTarget {
    pub endpoint: String,
    /// The `Authorization` header value sent with every SET (`Bearer …`, say).
    pub authorization: Option<SecretString>,
}

/// A receiver as the admin API and the CLI show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverInfo {
    pub id: String,
    pub tenant: String,
    pub name: String,
    /// `poll` (RFC 8936) or `push` (RFC 8935).
    pub delivery: String,
    /// Where SETs are pushed (push receivers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub form: Form,
    /// The event URIs it gets; empty: every URI of its form.
    pub events: Vec<String>,
    /// Whether it also gets CAEP and RISC events for deactivated and deleted users.
    pub signals: bool,
    #[schema(value_type = String, example = "RS256")]
    pub alg: String,
    /// `aud` of its SETs.
    pub audience: String,
    /// Its SETs' `iss`: the tenant's SCIM base URL.
    pub issuer: String,
    /// The last sequence whose SETs it has all acknowledged.
    pub position: i64,
    /// The tenant's latest sequence: `latest - position` events are still to come.
    pub latest: i64,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_polled_at: Option<String>,
    /// The application credential it was registered for: it is one lane (this tenant's)
    /// of that credential's receiver `group`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `ok`, or `failing`: a push receiver whose deliveries have failed for
    /// `SCIMBUS_SET_PUSH_FAILING_AFTER_SECONDS`, or that refused our credentials, key,
    /// issuer or audience. It is still retried.
    pub state: String,
    /// Consecutive failed push attempts.
    pub attempts: i32,
    /// The first failure of the current run of failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
    /// The next push attempt is not before this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The last time a SET was pushed to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_delivered_at: Option<String>,
    /// SETs it refused for good (HTTP 400 about the SET): counted as delivered, listed by
    /// `GET …/receivers/{id}/parked` until retention prunes their events.
    pub parked: i64,
}

pub(super) fn info(ctx: &Context, tenant: &Tenant, r: &ReceiverRow, latest: i64) -> ReceiverInfo {
    ReceiverInfo {
        id: r.id.clone(),
        tenant: tenant.slug.to_string(),
        name: r.name.clone(),
        delivery: r.delivery.clone(),
        endpoint: r.endpoint.clone(),
        form: Form::parse(&r.form).unwrap_or_default(),
        events: r.events.clone(),
        signals: r.signals,
        alg: r.alg.clone(),
        audience: r.audience.clone(),
        issuer: ctx.scim_base(&tenant.slug),
        position: r.position,
        latest,
        created_at: r.created_at.to_string(),
        last_polled_at: r.last_polled_at.as_ref().map(ToString::to_string),
        app: r.app_id.clone(),
        group: r.group_id.clone(),
        state: if r.lane.state.is_empty() {
            "ok".to_owned()
        } else {
            r.lane.state.clone()
        },
        attempts: r.lane.attempts,
        failing_since: r.lane.failing_since.as_ref().map(ToString::to_string),
        retry_at: r.lane.retry_at.as_ref().map(ToString::to_string),
        last_error: r.lane.last_error.clone(),
        last_delivered_at: r.lane.delivered_at.as_ref().map(ToString::to_string),
        parked: r.lane.parked,
    }
}

/// Checks a request's events against its form: each a URI scimbus makes, in that form.
fn check_events(request: &ReceiverRequest) -> Result<(), ServiceError> {
    for event in &request.events {
        if !set::uri::ALL.contains(&event.as_str()) {
            return Err(ServiceError::invalid_value(format!(
                "`{event}` is not an event URI scimbus makes (see the service provider \
                 configuration's securityEvents.eventUris)"
            )));
        }
        if set::uri::form_of(event).is_some_and(|f| f != request.form) {
            return Err(ServiceError::invalid_value(format!(
                "`{event}` is not in the receiver's form `{}`",
                request.form.as_str()
            )));
        }
        if !set::uri::is_scim(event) && !request.signals {
            return Err(ServiceError::invalid_value(format!(
                "`{event}` is a Shared Signals event: set `signals: true` to receive it"
            )));
        }
    }
    Ok(())
}

/// A registration's settings once checked.
pub struct Checked {
    pub name: TokenName,
    pub request: ReceiverRequest,
    pub alg: Alg,
}

/// Checks what registering a receiver asks for (name, events, endpoint, authorization),
/// and makes its signing key when there is none yet.
pub(super) async fn check(
    ctx: &Context,
    request: ReceiverRequest,
) -> Result<Checked, ServiceError> {
    if !ctx.sets.enabled() {
        return Err(key_error(KeyError::NoSecret));
    }
    let name = TokenName::parse(&request.name).map_err(ServiceError::invalid_value)?;
    let mut request = request;
    // A URI named twice counts once.
    let mut seen = HashSet::new();
    request.events.retain(|e| seen.insert(e.clone()));
    check_events(&request)?;
    if let Some(push) = &request.push {
        crate::events::push::check_endpoint(&push.endpoint, ctx.sets.settings.push_allow_private)
            .map_err(|e| ServiceError::invalid_value(format!("`endpoint`: {e}")))?;
        if let Some(a) = &push.authorization {
            let a = a.expose_secret();
            if a.is_empty()
                || a.len() > 4096
                || a.bytes().any(|b| b.is_ascii_control() || !b.is_ascii())
            {
                return Err(ServiceError::invalid_value(
                    "`authorization` must be 1 to 4096 visible ASCII characters (an HTTP \
                     header value such as `Bearer …`)",
                ));
            }
        }
    }
    if let Some(a) = request.audience.as_deref()
        && (a.is_empty() || a.chars().count() > 2000 || a.contains('\0'))
    {
        return Err(ServiceError::invalid_value(
            "`audience` must be 1 to 2000 characters, none of them NUL",
        ));
    }
    let alg = request.alg.unwrap_or(Alg::RS256);
    // Its key exists before it is used (made here on first need).
    signer(ctx, alg).await?;
    Ok(Checked { name, request, alg })
}

impl Checked {
    /// A lane of this registration in `tenant_id` at `position`; `id` is the lane's, `owner`
    /// the id its audience and sealed authorization are bound to (the lane's own, or its
    /// group's).
    pub(super) fn lane(
        &self,
        ctx: &Context,
        id: &str,
        owner: &str,
        tenant_id: &crate::domain::TenantId,
        position: i64,
        authorization: Option<Vec<u8>>,
    ) -> ReceiverRow {
        let request = &self.request;
        ReceiverRow {
            id: id.to_owned(),
            tenant_id: tenant_id.clone(),
            name: self.name.as_str().to_owned(),
            form: request.form.as_str().to_owned(),
            events: request.events.clone(),
            signals: request.signals,
            alg: self.alg.as_str().to_owned(),
            audience: request
                .audience
                .clone()
                .unwrap_or_else(|| format!("urn:scimbus:set-receiver:{owner}")),
            position,
            created_at: ctx.now(),
            last_polled_at: None,
            delivery: if request.push.is_some() {
                "push"
            } else {
                "poll"
            }
            .to_owned(),
            endpoint: request.push.as_ref().map(|p| p.endpoint.clone()),
            authorization,
            lane: store::LaneState {
                state: "ok".to_owned(),
                ..store::LaneState::default()
            },
            group_id: None,
            app_id: None,
            lease_owner: None,
        }
    }

    /// The push authorization sealed for `owner`.
    pub(super) fn sealed_authorization(
        &self,
        ctx: &Context,
        owner: &str,
    ) -> Result<Option<Vec<u8>>, ServiceError> {
        match self
            .request
            .push
            .as_ref()
            .and_then(|p| p.authorization.as_ref())
        {
            Some(a) => Ok(Some(
                ctx.sets
                    .sealer()?
                    .seal(owner, a.expose_secret().as_bytes())
                    .map_err(key_error)?,
            )),
            None => Ok(None),
        }
    }
}

/// Where a new lane of the tenant starts by default: its latest sequence, but never past
/// what a brake holds (those events are still to come); with the latest.
pub(super) async fn start_of(
    ctx: &Context,
    tenant_id: &crate::domain::TenantId,
) -> Result<(i64, i64), ServiceError> {
    crate::events::sequencer::number_tenant(&ctx.store, tenant_id).await?;
    let latest = tenants::event_sequence(ctx.store.conn(), tenant_id).await?;
    let held_from = crate::store::brake::held_from(ctx.store.conn(), tenant_id).await?;
    Ok((held_from.map_or(latest, |h| latest.min(h - 1)), latest))
}

/// Registers a receiver of the tenant's SETs; a poll receiver's credential is returned
/// once (a push receiver has none).
pub async fn register(
    ctx: &Context,
    actor: &Actor,
    slug: &str,
    request: ReceiverRequest,
) -> Result<(ReceiverInfo, Option<SecretString>), ServiceError> {
    let checked = check(ctx, request).await?;
    let tenant = live_tenant(ctx, slug).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let (start, latest) = start_of(ctx, &tenant.id).await?;
    let position = match checked.request.after {
        None => start,
        Some(after) if after < 0 || after > latest => {
            return Err(ServiceError::invalid_value(format!(
                "`after` must be between 0 and the tenant's latest sequence, {latest}"
            )));
        }
        Some(after) => after,
    };
    let pruned = tenants::events_pruned_through(ctx.store.conn(), &tenant.id).await?;
    if position < pruned {
        return Err(ServiceError::invalid_value(format!(
            "events up to sequence {pruned} are past retention: start after it"
        )));
    }
    let secret = token::generate(RECEIVER_PREFIX);
    let authorization = checked.sealed_authorization(ctx, &id)?;
    let row = checked.lane(ctx, &id, &id, &tenant.id, position, authorization);
    let txn = ctx.store.begin_write().await?;
    store::insert_receiver(&txn, &row, &token::hash_secret(&secret)).await?;
    audit::record(
        &txn,
        ctx,
        actor,
        "set_receiver.register",
        Some(tenant.slug.as_str()),
        Some(&id),
        json!({"name": row.name, "form": row.form, "events": row.events,
               "signals": row.signals, "alg": row.alg, "after": position,
               "delivery": row.delivery, "endpoint": row.endpoint}),
    )
    .await?;
    txn.commit().await?;
    if row.delivery == "push" {
        // The pusher takes it from here (in this process or another).
        ctx.event_waiters.wake(tenant.id.as_str());
        return Ok((info(ctx, &tenant, &row, latest), None));
    }
    Ok((info(ctx, &tenant, &row, latest), Some(secret)))
}

/// The tenant's receivers.
pub async fn list(ctx: &Context, slug: &str) -> Result<Vec<ReceiverInfo>, ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    let latest = tenants::event_sequence(ctx.store.conn(), &tenant.id).await?;
    Ok(store::receivers(ctx.store.conn(), &tenant.id)
        .await?
        .iter()
        .map(|r| info(ctx, &tenant, r, latest))
        .collect())
}

/// A SET a push receiver refused for good, as the admin API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParkedSet {
    pub jti: String,
    /// The sequence of the event it came from.
    pub sequence: i64,
    /// The receiver's RFC 8935 error code.
    pub err: String,
    pub description: String,
    pub parked_at: String,
}

/// The SETs a push receiver refused for good, newest first (at most 1000).
pub async fn parked(ctx: &Context, slug: &str, id: &str) -> Result<Vec<ParkedSet>, ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    if store::find_receiver(ctx.store.conn(), &tenant.id, id, false)
        .await?
        .is_none()
    {
        return Err(no_receiver(id));
    }
    Ok(store::parked(ctx.store.conn(), id, 1000)
        .await?
        .into_iter()
        .map(|p| ParkedSet {
            jti: p.jti,
            sequence: p.sequence,
            err: p.err,
            description: p.description,
            parked_at: p.parked_at.to_string(),
        })
        .collect())
}

pub(super) fn no_receiver(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("no SET receiver {id} in this tenant"))
}

/// Removes a receiver: its credential stops working, retention stops keeping events for it.
pub async fn remove(
    ctx: &Context,
    actor: &Actor,
    slug: &str,
    id: &str,
) -> Result<(), ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    let txn = ctx.store.begin_write().await?;
    if let Some(group) = store::find_receiver(&txn, &tenant.id, id, false)
        .await?
        .and_then(|r| r.group_id)
    {
        return Err(ServiceError::invalid_value(format!(
            "this is the lane of the application credential's receiver {group}: remove that \
             receiver (DELETE /admin/v1/apps/{{app}}/receivers/{group})"
        )));
    }
    if !store::delete_receiver(&txn, &tenant.id, id).await? {
        return Err(no_receiver(id));
    }
    audit::record(
        &txn,
        ctx,
        actor,
        "set_receiver.remove",
        Some(tenant.slug.as_str()),
        Some(id),
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Moves a receiver back (or forward) to `after`: its next polls deliver the SETs of the
/// events after it again, acknowledged or not.
pub async fn replay(
    ctx: &Context,
    actor: &Actor,
    slug: &str,
    id: &str,
    after: i64,
) -> Result<ReceiverInfo, ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    crate::events::sequencer::number_tenant(&ctx.store, &tenant.id).await?;
    let latest = tenants::event_sequence(ctx.store.conn(), &tenant.id).await?;
    let pruned = tenants::events_pruned_through(ctx.store.conn(), &tenant.id).await?;
    if after < pruned || after > latest {
        return Err(ServiceError::invalid_value(format!(
            "`after` must be between {pruned} (retention) and {latest} (the latest sequence)"
        )));
    }
    let txn = ctx.store.begin_write().await?;
    let Some(mut row) = store::find_receiver(&txn, &tenant.id, id, true).await? else {
        return Err(no_receiver(id));
    };
    store::set_position(&txn, id, after).await?;
    store::clear_acks(&txn, id).await?;
    store::reset_lane(&txn, id).await?;
    audit::record(
        &txn,
        ctx,
        actor,
        "set_receiver.replay",
        Some(tenant.slug.as_str()),
        Some(id),
        json!({"from": row.position, "after": after}),
    )
    .await?;
    txn.commit().await?;
    row.position = after;
    row.lane.state = "ok".to_owned();
    row.lane.attempts = 0;
    row.lane.retry_at = None;
    row.lane.failing_since = None;
    ctx.event_waiters.wake(tenant.id.as_str());
    Ok(info(ctx, &tenant, &row, latest))
}

/// An RFC 8936 poll request (§2.2).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollRequest {
    /// `jti`s of SETs received and processed: they are not delivered again.
    #[serde(default)]
    pub ack: Vec<String>,
    /// `jti`s of SETs the receiver could not process, with why; they count as
    /// acknowledged (delivering them again would fail again) and are logged.
    #[serde(default)]
    pub set_errs: HashMap<String, SetError>,
    /// At most this many SETs (0: acknowledge only); omitted: up to 1000.
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "crate::scim::validate::whole_or_null")]
    pub max_events: Option<i64>,
    /// `true`: answer at once even when there is nothing; `false` (default): wait up to
    /// 30 s for a SET (long poll).
    #[serde(default)]
    pub return_immediately: bool,
}

/// RFC 8936 §2.4.4 / RFC 8935 §2.3: an error a receiver reports for one SET.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct SetError {
    pub err: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// An RFC 8936 poll response (§2.3).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    /// `jti` → the SET (a compact JWS), written in the tenant's sequence order.
    #[schema(value_type = HashMap<String, String>)]
    pub sets: OrderedSets,
    /// More SETs wait beyond this answer.
    pub more_available: bool,
}

/// `jti` → SET pairs, serialised as one JSON object in their order (a map would sort
/// them by `jti`, which is not the sequence order across processes).
#[derive(Debug, Clone, Default)]
pub struct OrderedSets(pub Vec<(String, String)>);

impl OrderedSets {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl Serialize for OrderedSets {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (jti, jws) in &self.0 {
            map.serialize_entry(jti, jws)?;
        }
        map.end()
    }
}

/// Who polls with a credential: a receiver of one tenant, or an application credential's
/// receiver (its lanes, one per tenant, are polled together).
#[derive(Debug, Clone)]
pub enum Poller {
    Receiver(Box<ReceiverRow>, Box<Tenant>),
    Group(store::GroupRow),
}

/// The receiver a poll credential belongs to.
pub async fn authenticate(ctx: &Context, secret: &str) -> Result<Option<Poller>, ServiceError> {
    if !secret.starts_with(RECEIVER_PREFIX) {
        return Ok(None);
    }
    let hash = token::hash(secret);
    let Some(receiver) = store::receiver_by_hash(ctx.store.conn(), &hash).await? else {
        return super::set_groups::authenticate(ctx, &hash).await;
    };
    if receiver.delivery != "poll" {
        return Ok(None);
    }
    let tenant = tenants::find_by_id(ctx.store.conn(), &receiver.tenant_id).await?;
    Ok(tenant
        .filter(|t| t.deleted_at.is_none())
        .map(|t| Poller::Receiver(Box::new(receiver), Box::new(t))))
}

/// The SETs `receiver` wants of `envelope`.
fn render(
    ctx: &Context,
    tenant: &Tenant,
    receiver: &ReceiverRow,
    envelope: &Value,
) -> Vec<set::Claims> {
    let issuer = ctx.scim_base(&tenant.slug);
    set::render(
        envelope,
        &Wanted {
            form: Form::parse(&receiver.form).unwrap_or_default(),
            events: &receiver.events,
            signals: receiver.signals,
        },
        &Issue {
            issuer: &issuer,
            audience: &receiver.audience,
            issued_at: ctx.clock.now().timestamp(),
        },
    )
}

/// The event id a `jti` scimbus made names (`{id}` or `{id}-{n}`); `None` for any other text
/// (an acknowledgement of it is ignored).
pub(super) fn event_id(jti: &str) -> Option<&str> {
    let id = jti.get(..36)?;
    uuid::Uuid::parse_str(id).ok()?;
    match jti.get(36..)? {
        "" => Some(id),
        rest => {
            let n = rest.strip_prefix('-')?;
            (!n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit())).then_some(id)
        }
    }
}

pub(super) fn gone(pruned: i64) -> ServiceError {
    ScimError::new(
        410,
        None,
        format!(
            "events up to sequence {pruned} are past retention before this receiver \
             acknowledged them: resync the tenant's resources through SCIM, then move the \
             receiver past them (admin API: POST …/receivers/{{id}}/replay)"
        ),
    )
    .into()
}

/// Logs the errors a poll reports for SETs (they count as acknowledged), and returns every
/// `jti` it acknowledges.
pub(super) fn acknowledged<'r>(request: &'r PollRequest, receiver: &str) -> Vec<&'r str> {
    for (jti, error) in &request.set_errs {
        tracing::warn!(receiver, jti, err = %error.err,
            description = error.description.as_deref().unwrap_or_default(),
            "a SET receiver reported an error for a SET; it counts as acknowledged");
    }
    request
        .ack
        .iter()
        .map(String::as_str)
        .chain(request.set_errs.keys().map(String::as_str))
        .collect()
}

/// Records the acknowledgements `jtis` of a receiver (those of its tenant's events past
/// its position), then moves its position over every event now fully acknowledged.
/// Returns the receiver as it now is, and the sequence of each acknowledgement recorded.
pub(super) async fn acknowledge(
    ctx: &Context,
    tenant: &Tenant,
    receiver_id: &str,
    jtis: &[&str],
) -> Result<(ReceiverRow, HashMap<String, i64>), ServiceError> {
    let txn = ctx.store.begin_write().await?;
    let Some(mut current) = store::find_receiver(&txn, &tenant.id, receiver_id, true).await? else {
        return Err(no_receiver(receiver_id));
    };
    let recorded = record_acks(&txn, tenant, &current, jtis).await?;
    current.position = advance(&txn, ctx, tenant, &current).await?;
    store::touch_receiver(&txn, receiver_id, &ctx.now()).await?;
    txn.commit().await?;
    Ok((current, recorded))
}

/// Records acknowledgements of SETs past the receiver's position (a `jti` scimbus did not
/// make, or of an event already covered, is ignored); returns the sequence of each
/// recorded one.
pub(super) async fn record_acks(
    txn: &impl sea_orm::ConnectionTrait,
    tenant: &Tenant,
    current: &ReceiverRow,
    jtis: &[&str],
) -> Result<HashMap<String, i64>, ServiceError> {
    let jtis: Vec<(&str, &str)> = jtis
        .iter()
        .filter_map(|jti| event_id(jti).map(|id| (*jti, id)))
        .collect();
    if jtis.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<&str> = jtis.iter().map(|(_, id)| *id).collect();
    let sequences = outbox::sequences_of(txn, &tenant.id, &ids).await?;
    let acks: Vec<(String, i64)> = jtis
        .iter()
        .filter_map(|(jti, id)| {
            sequences
                .get(*id)
                .filter(|s| **s > current.position)
                .map(|s| ((*jti).to_owned(), *s))
        })
        .collect();
    store::insert_acks(txn, &current.id, &acks).await?;
    Ok(acks.into_iter().collect())
}

/// Moves the receiver's position over every event whose SETs are all acknowledged, or
/// that makes none for it (one it filters out, `tenant.*`), a bounded stretch per call;
/// returns the new position. Refuses (410) when events it had not acknowledged are past
/// retention: it must resync, and its position must not jump the gap.
pub(super) async fn advance(
    txn: &impl sea_orm::ConnectionTrait,
    ctx: &Context,
    tenant: &Tenant,
    current: &ReceiverRow,
) -> Result<i64, ServiceError> {
    let pruned = tenants::events_pruned_through(txn, &tenant.id).await?;
    if current.position < pruned {
        return Err(gone(pruned));
    }
    let acked = store::acked(txn, &current.id, current.position).await?;
    // Read before the pages: every event numbered up to it is on them unless discarded.
    let latest = tenants::event_sequence(txn, &tenant.id).await?;
    let held_from = crate::store::brake::held_from(txn, &tenant.id).await?;
    let ceiling = held_from.map_or(latest, |h| latest.min(h - 1));
    let mut position = current.position;
    'pages: for _ in 0..MAX_SCAN_PAGES {
        let page = outbox::page(txn, &tenant.id, position, &[], PAGE).await?;
        let full = page.len() as u64 == PAGE;
        for (sequence, envelope) in &page {
            let all = render(ctx, tenant, current, envelope)
                .iter()
                .all(|c| acked.contains(&c.jti));
            if !all {
                break 'pages;
            }
            position = *sequence;
        }
        if !full {
            // The end: what lies between here and the ceiling was discarded.
            position = position.max(ceiling);
            break;
        }
    }
    if position != current.position {
        store::set_position(txn, &current.id, position).await?;
    }
    Ok(position)
}

/// Gathers up to `max` signed SETs after the receiver's position that it has not
/// acknowledged, and whether more wait.
pub(super) async fn gather(
    ctx: &Context,
    tenant: &Tenant,
    receiver: &ReceiverRow,
    max: usize,
) -> Result<PollResponse, ServiceError> {
    let collected = collect(ctx, tenant, receiver, max).await?;
    let more_available = collected.more;
    Ok(PollResponse {
        sets: sign(ctx, vec![collected]).await?.pop().unwrap_or_default(),
        more_available,
    })
}

/// What a receiver's next SETs are, before signing.
pub(super) struct Collected {
    alg: Alg,
    pending: Vec<set::Claims>,
    /// More SETs wait after these.
    pub more: bool,
}

impl Collected {
    /// Nothing read, more waiting (a lane a poll had no room for).
    pub fn unread() -> Self {
        Self {
            alg: Alg::RS256,
            pending: Vec::new(),
            more: true,
        }
    }

    /// How many SETs it holds.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Reads up to `max` SETs after the receiver's position that it has not acknowledged,
/// rendered but not signed (a group's poll collects again with more room before it signs).
pub(super) async fn collect(
    ctx: &Context,
    tenant: &Tenant,
    receiver: &ReceiverRow,
    max: usize,
) -> Result<Collected, ServiceError> {
    let conn = ctx.store.conn();
    crate::events::sequencer::number_tenant(&ctx.store, &tenant.id).await?;
    let acked: HashSet<String> = store::acked(conn, &receiver.id, receiver.position).await?;
    let alg = Alg::parse(&receiver.alg).unwrap_or(Alg::RS256);
    let mut pending: Vec<set::Claims> = Vec::new();
    let mut more = false;
    let mut after = receiver.position;
    let mut pages = 0;
    'pages: loop {
        pages += 1;
        if pages > MAX_SCAN_PAGES {
            more = true;
            break;
        }
        let page = outbox::page(conn, &tenant.id, after, &[], PAGE).await?;
        // Read after the page: a prune that committed before it shows here.
        let pruned = tenants::events_pruned_through(conn, &tenant.id).await?;
        if receiver.position < pruned {
            return Err(gone(pruned));
        }
        let full = page.len() as u64 == PAGE;
        for (sequence, envelope) in &page {
            for claims in render(ctx, tenant, receiver, envelope) {
                if acked.contains(&claims.jti) {
                    continue;
                }
                if pending.len() >= max {
                    more = true;
                    break 'pages;
                }
                pending.push(claims);
            }
            after = *sequence;
        }
        if !full {
            break;
        }
    }
    Ok(Collected { alg, pending, more })
}

/// Signs what was collected, in one trip to the signing threads (`events::signing`;
/// RS256 costs about a millisecond a SET): each part's SETs, in its order.
pub(super) async fn sign(
    ctx: &Context,
    parts: Vec<Collected>,
) -> Result<Vec<OrderedSets>, ServiceError> {
    if parts.iter().all(Collected::is_empty) {
        return Ok(parts.iter().map(|_| OrderedSets::default()).collect());
    }
    let mut work = Vec::with_capacity(parts.len());
    for part in parts {
        let signer = if part.is_empty() {
            None
        } else {
            Some(signer(ctx, part.alg).await?)
        };
        work.push((signer, part.pending));
    }
    let signed = ctx
        .sets
        .sign(move || {
            work.into_iter()
                .map(|(signer, pending)| match signer {
                    None => Ok(OrderedSets::default()),
                    Some(signer) => pending
                        .into_iter()
                        .map(|c| signer.sign(&c.claims).map(|jws| (c.jti, jws)))
                        .collect::<Result<Vec<_>, KeyError>>()
                        .map(OrderedSets),
                })
                .collect::<Result<Vec<_>, KeyError>>()
        })
        .await?
        .map_err(key_error)?;
    let count: usize = signed.iter().map(|s| s.0.len()).sum();
    ctx.metrics.sets_signed.inc_by(count as u64);
    Ok(signed)
}

/// The most SETs a poll asks for.
fn max_events(request: &PollRequest) -> Result<usize, ServiceError> {
    match request.max_events {
        None => Ok(MAX_EVENTS),
        Some(n) if n < 0 => Err(ServiceError::invalid_value(
            "`maxEvents` must not be negative",
        )),
        Some(n) => Ok(usize::try_from(n).unwrap_or(MAX_EVENTS).min(MAX_EVENTS)),
    }
}

/// One RFC 8936 poll: acknowledgements first, then the SETs that follow (waiting up to
/// [`MAX_WAIT`] for one unless `returnImmediately`, holding no database connection while
/// waiting).
pub async fn poll(
    ctx: &Context,
    poller: &Poller,
    request: &PollRequest,
) -> Result<PollResponse, ServiceError> {
    let max = max_events(request)?;
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    // Acknowledgements first; a receiver of one tenant reads on from where they leave it.
    let poller = match poller {
        Poller::Receiver(receiver, tenant) => {
            let jtis = acknowledged(request, &receiver.id);
            let (current, _) = acknowledge(ctx, tenant, &receiver.id, &jtis).await?;
            Poller::Receiver(Box::new(current), tenant.clone())
        }
        Poller::Group(group) => {
            super::set_groups::acknowledge(ctx, group, request).await?;
            Poller::Group(group.clone())
        }
    };
    if max == 0 {
        return Ok(PollResponse::default());
    }
    loop {
        // Subscribed before gathering: an event committed meanwhile wakes the wait. A
        // group's wait is woken by its own lanes' tenants' events (read again each time:
        // its lanes follow the credential), by any tenant's for a credential that reads
        // every tenant (those created while it waits included).
        let (mut woken, answer) = match &poller {
            Poller::Receiver(receiver, tenant) => (
                ctx.event_waiters.subscribe(tenant.id.as_str()),
                gather(ctx, tenant, receiver, max).await?,
            ),
            Poller::Group(group) => (
                match super::set_groups::watched_tenants(ctx, group).await? {
                    Some(ids) => ctx.event_waiters.subscribe_tenants(ids),
                    None => ctx.event_waiters.subscribe_any(),
                },
                super::set_groups::gather(ctx, group, max).await?,
            ),
        };
        if !wait(ctx, request, &answer, deadline, &mut woken).await {
            return Ok(answer);
        }
    }
}

/// Whether a poll that gathered `answer` waits and gathers again: it found nothing, may
/// wait, and was woken by an event before `deadline`.
async fn wait(
    ctx: &Context,
    request: &PollRequest,
    answer: &PollResponse,
    deadline: tokio::time::Instant,
    woken: &mut tokio::sync::watch::Receiver<u64>,
) -> bool {
    if !answer.sets.is_empty() || request.return_immediately || ctx.event_waiters.is_closed() {
        return false;
    }
    matches!(
        tokio::time::timeout_at(deadline, woken.changed()).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use super::event_id;

    #[test]
    fn only_jtis_scimbus_makes_name_an_event() {
        let id = "0193c1f2-7f3a-7b4c-9d2e-3f4a5b6c7d8e";
        assert_eq!(event_id(id), Some(id));
        assert_eq!(event_id(&format!("{id}-1")), Some(id));
        assert_eq!(event_id(&format!("{id}-12")), Some(id));
        for other in [
            format!("{id}-"),
            format!("{id}-123"),
            format!("{id}x"),
            format!("{id}-1\0"),
            "0193c1f2-7f3a-7b4c-9d2e-3f4a5b6c7d8".to_owned(),
            "not a jti".to_owned(),
            "é".repeat(40),
        ] {
            assert_eq!(event_id(&other), None, "{other}");
        }
    }
}
