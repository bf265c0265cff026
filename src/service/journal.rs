//! The request journal (DESIGN 20): what each tenant's IdP sent and what it was answered,
//! so a failed provisioning can be seen without asking the IdP's admin for logs.
//!
//! `http::journal` captures each authenticated SCIM request with its bodies and hands it to
//! [`Journal::record`], which never waits: the entry goes to a bounded queue (a full queue
//! drops it and counts it) that [`run`] writes in batches (one statement each), off the
//! request path, pruning each tenant to its newest `SCIMBUS_JOURNAL_ENTRIES` younger than
//! `SCIMBUS_JOURNAL_MAX_AGE_HOURS` at most once a second while it is busy, and at once when
//! it goes idle. Bodies are redacted before they are queued ([`Redactor`]):
//! passwords, `writeOnly` attributes and the request's own bearer token never reach the
//! database; with `SCIMBUS_JOURNAL_MASK=on` every other string but the structural ones is
//! masked too. Erasure of a subject and tenant purge remove entries.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// The journal's queue and settings, shared by the request path and the writer.
#[derive(Debug, Clone)]
pub struct Journal {
    sender: mpsc::Sender<JournalEntry>,
    receiver: Arc<Mutex<Option<mpsc::Receiver<JournalEntry>>>>,
    pub settings: JournalSettings,
    dropped: Arc<AtomicU64>,
}

impl Journal {
    pub fn new(settings: JournalSettings) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        Self {
            sender,
            receiver: Arc::new(Mutex::new(Some(receiver))),
            settings,
            dropped: Arc::default(),
        }
    }

    /// Whether requests of `slug` are journaled.
    pub fn enabled_for(&self, slug: &str) -> bool {
        self.settings.entries > 0 && !self.settings.tenants_off.iter().any(|s| s == slug)
    }

    /// Queues an entry; never waits. A full queue drops it (counted in [`Journal::dropped`]).
    pub fn record(&self, entry: JournalEntry) {
        if self.sender.try_send(entry).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Entries dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
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

    #[test]
    fn status_filters_are_codes_or_classes() {
        assert_eq!(status_range("4xx"), Some((400, 500)));
        assert_eq!(status_range("409"), Some((409, 410)));
        assert_eq!(status_range("9xx"), None);
        assert_eq!(status_range("teapot"), None);
    }
}
