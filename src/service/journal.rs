//! The request journal (DESIGN 20): what each tenant's IdP sent and what it was answered,
//! so a failed provisioning can be seen without asking the IdP's admin for logs.
//!
//! `http::journal` captures each authenticated SCIM request with its bodies as they were
//! ([`Captured`]: shared buffers, no copy, no parsing) and hands it to [`Journal::record`],
//! which never waits: the capture goes to a bounded queue (a full queue drops it and counts
//! it). [`run`] takes the queue in batches, off the request path: it redacts each batch on a
//! blocking thread ([`Captured::into_entry`], [`Redactor`]) and writes it (one statement),
//! pruning each tenant to its newest `SCIMBUS_JOURNAL_ENTRIES` younger than
//! `SCIMBUS_JOURNAL_MAX_AGE_HOURS` at most once a second while it is busy, and at once when
//! it goes idle. Passwords, `writeOnly` attributes and the request's own bearer token never
//! reach the database; with `SCIMBUS_JOURNAL_MASK=on` every other string but the
//! structural ones is masked too. Erasure of a subject and tenant purge remove entries.

use std::collections::BTreeSet;
use std::sync::Arc;

use sea_orm::ConnectionTrait;
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, watch};

use super::{Context, ServiceError};
use crate::config::JournalSettings;
use crate::domain::{JournalEntry, JournalQuery, TenantId, Timestamp};
use crate::scim::schema::{Mutability, Registry, ResourceType};
use crate::store::journal;

/// Entries waiting to be written, at most (a burst beyond it is dropped and counted).
const QUEUE: usize = 10_000;
/// Entries written per transaction.
const BATCH: usize = 200;
/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";
/// What replaces a masked value.
const MASKED: &str = "***";

/// A body as the request path saw it; the writer redacts it ([`Captured::into_entry`]).
/// Its `Debug` shows sizes only: the bytes are unredacted.
#[derive(Clone)]
pub enum CapturedBody {
    /// No body (or one the journal could not read: its size unknown).
    Empty,
    /// The body, within the journal's limit (a shared buffer, not a copy).
    Kept(bytes::Bytes),
    /// A body over the journal's limit: its size only.
    Over(u64),
}

impl std::fmt::Debug for CapturedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("Empty"),
            Self::Kept(bytes) => write!(f, "Kept({} bytes)", bytes.len()),
            Self::Over(n) => write!(f, "Over({n} bytes)"),
        }
    }
}

impl CapturedBody {
    /// The body as the journal keeps it, before redaction: `None` for none, a note for one
    /// over the limit.
    fn over_note(&self) -> Option<String> {
        match self {
            Self::Over(n) => Some(format!("[{n} bytes: over the journal's limit, not kept]")),
            _ => None,
        }
    }
}

/// The resource type a journaled request was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapturedKind {
    User,
    Group,
}

/// What the request path hands to the journal: the entry's facts and both bodies as they
/// were. Parsing and redacting them is the writer's work ([`Captured::into_entry`]), so a
/// journaled request waits for none of it; unredacted bodies stay in the process's memory
/// until the writer takes them, and only redacted ones are written. Its `Debug` shows no
/// body and no token.
pub struct Captured {
    /// The entry without what the bodies give: its bodies, `scimType` and subject.
    pub entry: JournalEntry,
    /// The tenant's schemas (its `writeOnly` attributes).
    pub registry: Arc<Registry>,
    pub kind: Option<CapturedKind>,
    /// The request's bearer token, redacted wherever a body repeats it.
    pub bearer: Option<zeroize::Zeroizing<String>>,
    pub request: CapturedBody,
    pub response: CapturedBody,
}

impl std::fmt::Debug for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captured")
            .field("id", &self.entry.id)
            .field("method", &self.entry.method)
            .field("status", &self.entry.status)
            .field("kind", &self.kind)
            .field("bearer", &self.bearer.as_ref().map(|_| REDACTED))
            .field("request", &self.request)
            .field("response", &self.response)
            .finish_non_exhaustive()
    }
}

impl Captured {
    /// The entry as the journal keeps it: bodies redacted, the answer's `scimType` and the
    /// subject read from it.
    pub fn into_entry(self, mask: bool) -> JournalEntry {
        let resource_type = match self.kind {
            Some(CapturedKind::User) => Some(self.registry.user()),
            Some(CapturedKind::Group) => Some(self.registry.group()),
            None => None,
        };
        let bearer = self.bearer.as_ref().map(|b| b.as_str());
        let redactor = Redactor::new(&self.registry, resource_type, bearer, mask);
        let mut entry = self.entry;
        entry.request_body = match &self.request {
            CapturedBody::Kept(bytes) => redactor.body(bytes),
            other => other.over_note(),
        };
        // The answer is parsed once: its `scimType` and `id` are read, then it is redacted.
        let answered = match &self.response {
            CapturedBody::Kept(bytes) => serde_json::from_slice::<Value>(bytes).ok(),
            _ => None,
        };
        entry.scim_type = answered
            .as_ref()
            .filter(|_| entry.status >= 400)
            .and_then(|v| v.get("scimType"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        entry.subject = subject(&entry.target, answered.as_ref());
        entry.response_body = match (&self.response, answered) {
            (CapturedBody::Kept(_), Some(value)) => Some(redactor.value(value)),
            (CapturedBody::Kept(bytes), None) => redactor.body(bytes),
            (other, _) => other.over_note(),
        };
        entry
    }
}

/// The resource a request was about: the `{id}` of its path, or the `id` a create answered.
fn subject(target: &str, answered: Option<&Value>) -> Option<String> {
    let path = target.split('?').next().unwrap_or(target);
    let mut parts = path.rsplit('/');
    let last = parts.next()?;
    let kind = parts.next()?;
    if matches!(kind, "Users" | "Groups") && !last.starts_with('.') {
        return Some(format!("{kind}/{last}"));
    }
    if matches!(last, "Users" | "Groups") {
        let id = answered?.get("id")?.as_str()?;
        return Some(format!("{last}/{id}"));
    }
    None
}

/// Redacts a batch on a blocking thread (parsing and re-serialising bodies is CPU work the
/// async workers should not carry); a panic in it loses the batch, logged.
async fn redact(batch: Vec<Captured>, mask: bool) -> Vec<JournalEntry> {
    if batch.is_empty() {
        return Vec::new();
    }
    let entries = batch.len();
    match tokio::task::spawn_blocking(move || {
        batch
            .into_iter()
            .map(|c| c.into_entry(mask))
            .collect::<Vec<_>>()
    })
    .await
    {
        Ok(redacted) => redacted,
        Err(error) => {
            tracing::error!(%error, entries, "journal entries not redacted: not written");
            Vec::new()
        }
    }
}

/// The journal's queue and settings, shared by the request path and the writer.
#[derive(Debug, Clone)]
pub struct Journal {
    sender: mpsc::Sender<Captured>,
    receiver: Arc<Mutex<Option<mpsc::Receiver<Captured>>>>,
    pub settings: JournalSettings,
    /// `scimbus_journal_dropped_entries_total`.
    dropped: prometheus_client::metrics::counter::Counter,
}

impl Journal {
    /// A journal whose queue counts what it drops in `dropped` (the metric).
    pub fn new(
        settings: JournalSettings,
        dropped: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        Self {
            sender,
            receiver: Arc::new(Mutex::new(Some(receiver))),
            settings,
            dropped,
        }
    }

    /// Whether requests of `slug` are journaled.
    pub fn enabled_for(&self, slug: &str) -> bool {
        self.settings.entries > 0 && !self.settings.tenants_off.iter().any(|s| s == slug)
    }

    /// Queues a request's capture; never waits. A full queue drops it (counted in
    /// [`Journal::dropped`]).
    pub fn record(&self, entry: Captured) {
        if self.sender.try_send(entry).is_err() {
            self.dropped.inc();
        }
    }

    /// Entries dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

/// How long the writer gathers entries after the first before it writes them.
const LINGER: std::time::Duration = std::time::Duration::from_millis(200);

/// How often a tenant's journal is pruned at most while requests keep coming; an idle
/// writer prunes what is left at once.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes queued entries until `stop`, then what is still queued. One process writes its
/// own entries; every replica's go to the one database.
pub async fn run(ctx: Context, mut stop: watch::Receiver<bool>) {
    let Some(mut receiver) = ctx.journal.receiver.lock().await.take() else {
        return;
    };
    // Tenants written since their last prune, and when each was last pruned.
    let mut dirty: std::collections::HashSet<TenantId> = std::collections::HashSet::new();
    let mut pruned: std::collections::HashMap<TenantId, std::time::Instant> =
        std::collections::HashMap::new();
    loop {
        let first = tokio::select! {
            entry = receiver.recv() => entry.map(Some),
            _ = stop.changed() => None,
            () = tokio::time::sleep(PRUNE_EVERY), if !dirty.is_empty() => Some(None),
        };
        let batch = match first {
            None => break,
            // Idle: the tenants written since their last prune are pruned now.
            Some(None) => Vec::new(),
            Some(Some(first)) => {
                // More entries for up to `LINGER`: a busy process writes one transaction
                // per batch, not one per request.
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + LINGER;
                while batch.len() < BATCH {
                    match tokio::time::timeout_at(deadline, receiver.recv()).await {
                        Ok(Some(entry)) => batch.push(entry),
                        _ => break,
                    }
                }
                batch
            }
        };
        let idle = batch.is_empty();
        let batch = redact(batch, ctx.journal.settings.mask).await;
        for entry in &batch {
            dirty.insert(entry.tenant_id.clone());
        }
        let now = std::time::Instant::now();
        let due: Vec<TenantId> = dirty
            .iter()
            .filter(|t| idle || pruned.get(*t).is_none_or(|at| now - *at >= PRUNE_EVERY))
            .cloned()
            .collect();
        match write(&ctx, &batch, &due).await {
            Ok(()) => {
                for tenant in due {
                    dirty.remove(&tenant);
                    pruned.insert(tenant, now);
                }
            }
            Err(error) => {
                tracing::warn!(%error, entries = batch.len(), "journal entries not written");
            }
        }
    }
    receiver.close();
    let mut rest = Vec::new();
    while let Ok(entry) = receiver.try_recv() {
        rest.push(entry);
    }
    let rest = redact(rest, ctx.journal.settings.mask).await;
    for entry in &rest {
        dirty.insert(entry.tenant_id.clone());
    }
    let due: Vec<TenantId> = dirty.into_iter().collect();
    if let Err(error) = write(&ctx, &rest, &due).await {
        tracing::warn!(%error, entries = rest.len(), "journal entries not written at stop");
    }
}

/// Inserts `batch` and prunes the tenants `due`, in one transaction.
async fn write(
    ctx: &Context,
    batch: &[JournalEntry],
    due: &[TenantId],
) -> Result<(), ServiceError> {
    if batch.is_empty() && due.is_empty() {
        return Ok(());
    }
    let txn = ctx.store.begin_write().await?;
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        // The journal is diagnostics: its commit need not wait for the disk (a crash may
        // lose the last fraction of a second of entries, never a resource or an event),
        // and it leaves the fsyncs to the writes that need them.
        txn.execute_unprepared("SET LOCAL synchronous_commit TO off")
            .await?;
    }
    for chunk in batch.chunks(BATCH) {
        journal::insert(&txn, chunk).await?;
    }
    let settings = &ctx.journal.settings;
    let cutoff = ctx
        .clock
        .now()
        .checked_sub_signed(chrono::TimeDelta::from_std(settings.max_age).unwrap_or_default())
        .map(Timestamp::at)
        .unwrap_or_default();
    for tenant in due {
        journal::prune(&txn, tenant, settings.entries, &cutoff).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// A page of a tenant's journal, newest first.
pub async fn list(
    ctx: &Context,
    slug: &str,
    query: &JournalQuery<'_>,
) -> Result<Vec<JournalEntry>, ServiceError> {
    let tenant = super::tenants::live_tenant(ctx, slug).await?;
    Ok(journal::list(ctx.store.conn(), &tenant.id, query).await?)
}

/// Parses a status filter: `404`, or a class such as `4xx`.
pub fn status_range(text: &str) -> Option<(i32, i32)> {
    let text = text.trim();
    if let Some(class) = text.strip_suffix("xx").or_else(|| text.strip_suffix("XX")) {
        let digit: i32 = class.parse().ok().filter(|d| (1..=5).contains(d))?;
        return Some((digit * 100, digit * 100 + 100));
    }
    let status: i32 = text.parse().ok().filter(|s| (100..600).contains(s))?;
    Some((status, status + 1))
}

/// The names (lower case) whose values a body never keeps: `password` and every
/// `writeOnly` attribute of the resource type's schemas.
fn secret_names(registry: &Registry, resource_type: Option<&ResourceType>) -> BTreeSet<String> {
    let mut names = BTreeSet::from(["password".to_owned()]);
    let schemas = resource_type.into_iter().flat_map(|rt| {
        std::iter::once(rt.schema.as_str()).chain(rt.extensions.iter().map(|e| e.schema.as_str()))
    });
    for schema in schemas.filter_map(|id| registry.schema(id)) {
        for attr in &schema.attributes {
            if attr.mutability == Mutability::WriteOnly {
                names.insert(attr.name.to_lowercase());
            }
            for sub in &attr.sub_attributes {
                if sub.mutability == Mutability::WriteOnly {
                    names.insert(sub.name.to_lowercase());
                }
            }
        }
    }
    names
}

/// Keys whose string values are structure, not personal data (kept when masking).
const STRUCTURAL: [&str; 16] = [
    "schemas",
    "op",
    "path",
    "id",
    "type",
    "status",
    "scimtype",
    "method",
    "bulkid",
    "version",
    "resourcetype",
    "location",
    "created",
    "lastmodified",
    "$ref",
    "sortorder",
];

/// Redacts the bodies of one request (built once per request: the secret names come from
/// the tenant's registry). A kept body is JSON with secrets redacted (and, with `mask`,
/// personal data masked) and the request's bearer token nowhere.
pub struct Redactor<'a> {
    /// `password` and the `writeOnly` attributes, lower case.
    secrets: BTreeSet<String>,
    /// The same names as the end of a URN-qualified key (`:password`).
    qualified: Vec<String>,
    bearer: Option<&'a str>,
    mask: bool,
}

impl<'a> Redactor<'a> {
    pub fn new(
        registry: &Registry,
        resource_type: Option<&ResourceType>,
        bearer: Option<&'a str>,
        mask: bool,
    ) -> Self {
        let secrets = secret_names(registry, resource_type);
        let qualified = secrets.iter().map(|s| format!(":{s}")).collect();
        Self {
            secrets,
            qualified,
            bearer: bearer.filter(|b| !b.is_empty()),
            mask,
        }
    }

    /// A body as the journal keeps it; `None` for an empty body. A body that is not JSON is
    /// kept only as its size (it cannot be redacted).
    pub fn body(&self, body: &[u8]) -> Option<String> {
        if body.is_empty() {
            return None;
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => Some(self.value(value)),
            Err(_) => Some(format!("[{} bytes, not JSON: not kept]", body.len())),
        }
    }

    /// A parsed body as the journal keeps it.
    pub fn value(&self, mut value: Value) -> String {
        self.scrub(&mut value, None);
        let text = value.to_string();
        match self.bearer {
            Some(bearer) => text.replace(bearer, REDACTED),
            None => text,
        }
    }

    /// Whether a PATCH path (`password`, `urn:…:User:password`, `emails[…].value`) ends at
    /// a secret attribute.
    fn names_secret(&self, path: &str) -> bool {
        let head = path.split('[').next().unwrap_or(path);
        let last = head.rsplit([':', '.']).next().unwrap_or(head);
        self.secrets.contains(&last.trim().to_lowercase())
    }

    fn scrub(&self, value: &mut Value, key: Option<&str>) {
        match value {
            Value::Object(map) => {
                // A PATCH operation whose path names a secret: its value is the secret.
                let secret_path = map
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                    .and_then(|(_, p)| p.as_str())
                    .is_some_and(|p| self.names_secret(p));
                for (k, v) in map.iter_mut() {
                    let lower = k.to_lowercase();
                    let is_secret = self.secrets.contains(&lower)
                        || (secret_path && lower == "value")
                        || self.qualified.iter().any(|s| lower.ends_with(s.as_str()));
                    if is_secret {
                        *v = Value::String(REDACTED.to_owned());
                    } else {
                        self.scrub(v, Some(&lower));
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.scrub(item, key);
                }
            }
            Value::String(s) if self.mask => {
                let structural =
                    key.is_some_and(|k| STRUCTURAL.contains(&k) || k.starts_with("urn:"));
                if !structural {
                    *s = MASKED.to_owned();
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_write_only_values_and_the_bearer_token_are_redacted() {
        let registry = Registry::core();
        let user = Some(registry.user());
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bjensen",
            "PassWord": "hunter2",
            "note": "token scimbus_t_secret",
            "Operations": [
                {"op": "replace", "path": "password", "value": "hunter3"},
                {"op": "replace", "value": {"password": "hunter4", "displayName": "B"}},
            ],
        })
        .to_string();
        let kept = Redactor::new(registry, user, Some("scimbus_t_secret"), false)
            .body(body.as_bytes())
            .unwrap_or_default();
        for secret in ["hunter2", "hunter3", "hunter4", "scimbus_t_secret"] {
            assert!(!kept.contains(secret), "{kept}");
        }
        assert!(kept.contains("bjensen"), "{kept}");
        let masked = Redactor::new(registry, user, None, true)
            .body(body.as_bytes())
            .unwrap_or_default();
        assert!(
            !masked.contains("bjensen") && masked.contains("replace"),
            "{masked}"
        );
    }

    /// A capture of a user request, with a bearer token to redact.
    fn captured(
        target: &str,
        status: i32,
        request: CapturedBody,
        response: CapturedBody,
    ) -> Captured {
        Captured {
            entry: JournalEntry {
                id: "e".into(),
                tenant_id: TenantId::from("t"),
                at: Timestamp::default(),
                method: "POST".into(),
                target: target.into(),
                status,
                scim_type: None,
                duration_ms: 1,
                request_id: "r".into(),
                token_name: "okta".into(),
                subject: None,
                request_body: None,
                response_body: None,
            },
            registry: Registry::core_shared(),
            kind: Some(CapturedKind::User),
            bearer: Some(zeroize::Zeroizing::new("scimbus_t_secret".to_owned())),
            request,
            response,
        }
    }

    /// What the request path captures, as the writer turns it into an entry: bodies
    /// redacted, over-limit bodies as notes, `scimType` of an error and the subject read
    /// from the answer.
    #[test]
    fn a_capture_becomes_a_redacted_entry_off_the_request_path() {
        let json = |v: Value| CapturedBody::Kept(bytes::Bytes::from(v.to_string()));
        let created = captured(
            "/scim/v2/acme/Users",
            201,
            json(
                serde_json::json!({"userName": "bjensen", "password": "hunter2",
                "nickName": "scimbus_t_secret"}),
            ),
            json(serde_json::json!({"id": "u1", "userName": "bjensen", "scimType": "x"})),
        )
        .into_entry(false);
        let request = created.request_body.unwrap_or_default();
        assert!(!request.contains("hunter2") && !request.contains("scimbus_t_secret"));
        assert!(request.contains("bjensen"), "{request}");
        assert_eq!(created.subject.as_deref(), Some("Users/u1"));
        assert_eq!(created.scim_type, None, "a 2xx has no scimType");
        assert!(
            created
                .response_body
                .unwrap_or_default()
                .contains("bjensen")
        );
        let refused = captured(
            "/scim/v2/acme/Users/u2?attributes=userName",
            400,
            CapturedBody::Over(70_000),
            json(serde_json::json!({"status": "400", "scimType": "invalidValue"})),
        )
        .into_entry(true);
        assert_eq!(refused.scim_type.as_deref(), Some("invalidValue"));
        assert_eq!(refused.subject.as_deref(), Some("Users/u2"));
        assert_eq!(
            refused.request_body.as_deref(),
            Some("[70000 bytes: over the journal's limit, not kept]")
        );
        let empty = captured(
            "/scim/v2/acme/Users",
            204,
            CapturedBody::Empty,
            CapturedBody::Empty,
        )
        .into_entry(false);
        assert_eq!((empty.request_body, empty.response_body), (None, None));
        let not_json = captured(
            "/scim/v2/acme/Users",
            400,
            CapturedBody::Kept(bytes::Bytes::from_static(b"<xml/>")),
            CapturedBody::Over(9),
        )
        .into_entry(false);
        assert_eq!(
            not_json.request_body.as_deref(),
            Some("[6 bytes, not JSON: not kept]")
        );
        assert_eq!(
            not_json.response_body.as_deref(),
            Some("[9 bytes: over the journal's limit, not kept]")
        );
    }

    /// A capture's `Debug` (what a log line would print) shows neither bodies nor the token.
    #[test]
    fn a_captures_debug_shows_no_body_and_no_token() {
        let body = CapturedBody::Kept(bytes::Bytes::from_static(b"{\"password\":\"hunter2\"}"));
        let shown = format!(
            "{:?}",
            captured("/scim/v2/acme/Users", 201, body.clone(), body)
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("scimbus_t_secret"),
            "{shown}"
        );
        assert!(shown.contains("Kept(22 bytes)"), "{shown}");
    }

    /// A full queue drops what comes next and counts it in the metric; nothing waits.
    #[test]
    fn a_full_queue_drops_and_counts() {
        let dropped = prometheus_client::metrics::counter::Counter::default();
        let journal = Journal::new(JournalSettings::default(), dropped.clone());
        for _ in 0..QUEUE + 3 {
            journal.record(captured(
                "/scim/v2/t/Users",
                200,
                CapturedBody::Empty,
                CapturedBody::Empty,
            ));
        }
        assert_eq!((journal.dropped(), dropped.get()), (3, 3));
    }

    #[test]
    fn status_filters_are_codes_or_classes() {
        assert_eq!(status_range("4xx"), Some((400, 500)));
        assert_eq!(status_range("409"), Some((409, 410)));
        assert_eq!(status_range("9xx"), None);
        assert_eq!(status_range("teapot"), None);
    }
}
