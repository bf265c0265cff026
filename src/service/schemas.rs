//! Tenant schema extensions (custom attributes of Okta and Entra): registration, update and
//! removal through the admin API or CLI — each previewed on request (a dry run against the
//! stored resources) and followed by a background re-index (`service::jobs`) — and each
//! tenant's registry, the core plus its extensions, cached by the tenant's
//! `schema_version`, which every request reads with the tenant row, so a change on one
//! replica is seen by all on their next request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};

use super::audit::{self, Actor};
use super::jobs::{self, JobView};
use super::{Context, ServiceError};
use crate::domain::TenantId;
use crate::domain::{ResourceId, ResourceKind, Tenant, Timestamp};
use crate::scim::discovery;
use crate::scim::extension::{ExtensionDefinition, check_widening, parse_definition};
use crate::scim::schema::Registry;
use crate::scim::validate::validate_resource;
use crate::store::schemas::StoredSchema;
use crate::store::{StoreError, groups, schemas, tenants, users};

/// Resources read per step of a dry run.
const BATCH: u64 = 500;
/// Most non-conforming resources a report lists (it counts them all).
pub(crate) const MAX_REPORTED: usize = 100;

/// A tenant's registry and the schema version it was built for.
type Cached = (i64, Arc<Registry>);

/// Each tenant's registry, by tenant id.
#[derive(Debug, Clone, Default)]
pub struct Registries(Arc<Mutex<HashMap<TenantId, Cached>>>);

/// Builds the registry of `definitions` over the core.
pub(crate) fn build(definitions: &[StoredSchema]) -> Result<Registry, ServiceError> {
    let mut registry = Registry::core().clone();
    for stored in definitions {
        let ExtensionDefinition {
            schema,
            resource_type,
        } = parse_definition(&stored.definition).map_err(|e| {
            ServiceError::Internal(anyhow::anyhow!(
                "stored schema {} no longer parses: {e}",
                stored.urn
            ))
        })?;
        registry = registry.extended(schema, &resource_type);
    }
    Ok(registry)
}

/// `tenant` with its registry: the core when it registered nothing, else its own.
pub async fn with_registry(ctx: &Context, mut tenant: Tenant) -> Result<Tenant, ServiceError> {
    if tenant.schema_version == 0 {
        return Ok(tenant);
    }
    let cached = ctx
        .registries
        .0
        .lock()
        .ok()
        .and_then(|cache| cache.get(&tenant.id).cloned())
        .filter(|(version, _)| *version == tenant.schema_version);
    let registry = match cached {
        Some((_, registry)) => registry,
        None => {
            let definitions = schemas::list(ctx.store.conn(), &tenant.id).await?;
            let registry = Arc::new(build(&definitions)?);
            if let Ok(mut cache) = ctx.registries.0.lock() {
                cache.insert(tenant.id.clone(), (tenant.schema_version, registry.clone()));
            }
            registry
        }
    };
    tenant.registry = registry;
    Ok(tenant)
}

/// A resource whose stored value does not fit a registered extension: kept as it is,
/// reported so the admin can fix it at the IdP.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct NonConforming {
    pub id: ResourceId,
    pub detail: String,
}

/// A change of a tenant's extensions.
#[derive(Debug, Clone)]
pub enum Change {
    /// A new extension, from its definition.
    Register(Value),
    /// A new definition of a registered extension (by URN) that only widens it.
    Update(String, Value),
    /// The removal of a registered extension (by URN); stored values stay as they are.
    Remove(String),
}

impl Change {
    fn action(&self) -> &'static str {
        match self {
            Self::Register(_) => "register",
            Self::Update(..) => "update",
            Self::Remove(_) => "remove",
        }
    }
}

/// A change checked against the tenant's definitions: what it stores and the registry it
/// leads to.
struct Plan {
    urn: String,
    kind: ResourceKind,
    /// The definition to store (none for a removal).
    definition: Option<Value>,
    /// Whether the URN is registered now (an update or removal) or not (a registration).
    existing: bool,
    registry: Registry,
}

/// Checks `change` against the tenant's stored definitions (no I/O).
fn plan(stored: &[StoredSchema], change: &Change) -> Result<Plan, ServiceError> {
    let position = |urn: &str| stored.iter().position(|s| s.urn.eq_ignore_ascii_case(urn));
    let not_registered = |urn: &str| {
        ServiceError::NotFound(format!("schema {urn} is not registered for this tenant"))
    };
    match change {
        Change::Register(definition) => {
            let parsed = parse_definition(definition).map_err(ServiceError::invalid_value)?;
            if position(&parsed.schema.id).is_some() {
                return Err(ServiceError::uniqueness(format!(
                    "schema {} is already registered for this tenant; update it with PUT",
                    parsed.schema.id
                )));
            }
            let mut after = stored.to_vec();
            after.push(stored_schema(&parsed, definition));
            Ok(Plan {
                urn: parsed.schema.id,
                kind: kind_of(&parsed.resource_type)?,
                definition: Some(definition.clone()),
                existing: false,
                registry: build(&after)?,
            })
        }
        Change::Update(urn, definition) => {
            let i = position(urn).ok_or_else(|| not_registered(urn))?;
            let parsed = parse_definition(definition).map_err(ServiceError::invalid_value)?;
            if !parsed.schema.id.eq_ignore_ascii_case(urn) {
                return Err(ServiceError::invalid_value(format!(
                    "the definition's `id` ({}) is not the URN it updates ({urn})",
                    parsed.schema.id
                )));
            }
            let old = parse_definition(&stored[i].definition).map_err(|e| {
                ServiceError::Internal(anyhow::anyhow!("stored schema {urn} no longer parses: {e}"))
            })?;
            check_widening(&old, &parsed).map_err(|e| {
                ServiceError::invalid_value(format!(
                    "an update may only add attributes and widen types: {e}; to change it \
                     otherwise, remove the extension and register the new definition"
                ))
            })?;
            let mut after = stored.to_vec();
            after[i] = StoredSchema {
                definition: definition.clone(),
                ..after[i].clone()
            };
            Ok(Plan {
                urn: stored[i].urn.clone(),
                kind: kind_of(&parsed.resource_type)?,
                definition: Some(definition.clone()),
                existing: true,
                registry: build(&after)?,
            })
        }
        Change::Remove(urn) => {
            let i = position(urn).ok_or_else(|| not_registered(urn))?;
            let mut after = stored.to_vec();
            let removed = after.remove(i);
            Ok(Plan {
                urn: removed.urn,
                kind: kind_of(&removed.resource_type)?,
                definition: None,
                existing: true,
                registry: build(&after)?,
            })
        }
    }
}

/// The kind an extension definition names (`User` or `Group`, checked when it parsed).
pub(crate) fn kind_of(resource_type: &str) -> Result<ResourceKind, ServiceError> {
    ResourceKind::parse(resource_type).ok_or_else(|| {
        ServiceError::Internal(anyhow::anyhow!(
            "resource type `{resource_type}` is not User or Group"
        ))
    })
}

fn stored_schema(parsed: &ExtensionDefinition, definition: &Value) -> StoredSchema {
    StoredSchema {
        urn: parsed.schema.id.clone(),
        resource_type: parsed.resource_type.clone(),
        definition: definition.clone(),
        created_at: Timestamp::default(),
    }
}

/// What a change would do to the tenant's stored resources (a dry run): nothing is stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// `register`, `update` or `remove`.
    pub action: &'static str,
    /// The schema as `/Schemas` would serve it (absent for a removal).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub schema: Value,
    pub resource_type: String,
    /// Resources of the type that would be re-indexed.
    pub checked: u64,
    /// Those that hold values under the URN: typed from then on (a removal: untyped).
    pub with_values: u64,
    /// How many would hold values that do not fit (kept as they are, left out of filters).
    pub non_conforming_count: u64,
    /// The first of those, with the reason.
    pub non_conforming: Vec<NonConforming>,
}

/// A change applied: the schema as served now, and the re-index job that follows.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// The schema as `/Schemas` serves it (absent after a removal).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub schema: Value,
    pub job: JobView,
}

async fn live_tenant(ctx: &Context, slug: &str) -> Result<Tenant, ServiceError> {
    let tenant = super::tenants::live_tenant(ctx, slug).await?;
    with_registry(ctx, tenant).await
}

fn served(ctx: &Context, tenant: &Tenant, registry: &Registry, urn: &str) -> Value {
    registry
        .schema(urn)
        .map(|s| discovery::schema(&ctx.scim_base(&tenant.slug), s))
        .unwrap_or(Value::Null)
}

/// Checks `change` against the tenant's definitions and stored resources without storing
/// anything: the report says what the change would type and what would not fit.
#[tracing::instrument(skip(ctx, change), err(level = "debug"))]
pub async fn preview(ctx: &Context, slug: &str, change: &Change) -> Result<Preview, ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    let stored = schemas::list(ctx.store.conn(), &tenant.id).await?;
    let plan = plan(&stored, change)?;
    let mut report = Preview {
        action: change.action(),
        schema: served(ctx, &tenant, &plan.registry, &plan.urn),
        resource_type: plan.kind.as_str().to_owned(),
        checked: 0,
        with_values: 0,
        non_conforming_count: 0,
        non_conforming: Vec::new(),
    };
    let removing = plan.definition.is_none();
    let mut after: Option<ResourceId> = None;
    loop {
        let documents = page(
            ctx.store.conn(),
            &tenant.id,
            plan.kind,
            after.as_ref(),
            BATCH,
            false,
        )
        .await?;
        let Some((last, _)) = documents.last() else {
            break;
        };
        after = Some(last.clone());
        for (id, document) in &documents {
            report.checked += 1;
            if !document.keys().any(|k| k.eq_ignore_ascii_case(&plan.urn)) {
                continue;
            }
            report.with_values += 1;
            if removing {
                continue;
            }
            if let Some(detail) = check(&plan.registry, plan.kind, document) {
                report.non_conforming_count += 1;
                if report.non_conforming.len() < MAX_REPORTED {
                    report.non_conforming.push(NonConforming {
                        id: id.clone(),
                        detail,
                    });
                }
            }
        }
        if (documents.len() as u64) < BATCH {
            break;
        }
    }
    Ok(report)
}

/// Why `document` does not fit `registry`, if it does not.
pub(crate) fn check(
    registry: &Registry,
    kind: ResourceKind,
    document: &serde_json::Map<String, Value>,
) -> Option<String> {
    let rt = kind.resource_type(registry);
    validate_resource(registry, rt, Value::Object(document.clone()))
        .err()
        .map(|e| e.detail)
}

/// A page of the tenant's documents of `kind` in id order after `after` (with `lock`,
/// locked for the re-index that rewrites their search documents).
pub(crate) async fn page(
    conn: &impl sea_orm::ConnectionTrait,
    tenant_id: &TenantId,
    kind: ResourceKind,
    after: Option<&ResourceId>,
    limit: u64,
    lock: bool,
) -> Result<Vec<(ResourceId, serde_json::Map<String, Value>)>, StoreError> {
    Ok(match kind {
        ResourceKind::Group => groups::page_by_id(conn, tenant_id, after, limit, lock)
            .await?
            .into_iter()
            .map(|g| (g.id, g.document))
            .collect(),
        ResourceKind::User => users::page_by_id(conn, tenant_id, after, limit, lock)
            .await?
            .into_iter()
            .map(|u| (u.id, u.document))
            .collect(),
    })
}

/// Applies `change`: stores the definition (or removes it), counts a new schema version —
/// from which every write types values by the new registry — and queues the re-index of
/// the tenant's resources of that type, all in one transaction. The answer comes at once;
/// the job reports its progress (`service::jobs`).
#[tracing::instrument(skip(ctx, actor, change), err(level = "debug"))]
pub async fn apply(
    ctx: &Context,
    actor: &Actor,
    slug: &str,
    change: &Change,
) -> Result<Applied, ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    let txn = ctx.store.begin_write().await?;
    // First: it locks the tenant row, so the definitions read next are the latest and no
    // other change of them runs until this one commits.
    let version = tenants::bump_schema_version(&txn, &tenant.id).await?;
    let stored = schemas::list(&txn, &tenant.id).await?;
    let plan = plan(&stored, change)?;
    let now = ctx.now();
    match (&plan.definition, plan.existing) {
        (Some(definition), false) => schemas::insert(
            &txn,
            &tenant.id,
            StoredSchema {
                urn: plan.urn.clone(),
                resource_type: plan.kind.as_str().to_owned(),
                definition: definition.clone(),
                created_at: now.clone(),
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::Unique(_) => {
                ServiceError::uniqueness(format!("schema {} is already registered", plan.urn))
            }
            other => other.into(),
        })?,
        (Some(definition), true) => {
            schemas::replace(&txn, &tenant.id, &plan.urn, definition.clone()).await?
        }
        (None, _) => schemas::delete(&txn, &tenant.id, &plan.urn).await?,
    }
    let job = jobs::queue(
        &txn,
        ctx,
        actor,
        &tenant,
        change.action(),
        &plan.urn,
        plan.kind,
        version,
    )
    .await?;
    audit::record(
        &txn,
        ctx,
        actor,
        &format!("schema.{}", change.action()),
        Some(tenant.slug.as_str()),
        Some(&plan.urn),
        json!({"resourceType": plan.kind.as_str(), "job": job.id}),
    )
    .await?;
    txn.commit().await?;
    ctx.jobs_wake.notify_one();
    Ok(Applied {
        schema: served(ctx, &tenant, &plan.registry, &plan.urn),
        job,
    })
}

/// The extensions a tenant registered, as `/Schemas` serves them.
pub async fn list(ctx: &Context, slug: &str) -> Result<Vec<Value>, ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    let definitions = schemas::list(ctx.store.conn(), &tenant.id).await?;
    let base = ctx.scim_base(&tenant.slug);
    Ok(definitions
        .iter()
        .filter_map(|d| tenant.registry.schema(&d.urn))
        .map(|s| discovery::schema(&base, s))
        .collect())
}

/// One registered extension, as `/Schemas` serves it.
pub async fn get(ctx: &Context, slug: &str, urn: &str) -> Result<Value, ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    let registered = schemas::find(ctx.store.conn(), &tenant.id, urn).await?;
    registered
        .and_then(|d| tenant.registry.schema(&d.urn))
        .map(|s| discovery::schema(&ctx.scim_base(&tenant.slug), s))
        .ok_or_else(|| {
            ServiceError::NotFound(format!("schema {urn} is not registered for this tenant"))
        })
}
