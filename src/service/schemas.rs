//! Tenant schema extensions (custom attributes of Okta and Entra): registration through the
//! admin API or CLI, and each tenant's registry — the core plus its extensions — cached by
//! the tenant's `schema_version`, which every request reads with the tenant row, so a
//! registration on one replica is seen by all on their next request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};

use super::audit::{self, Actor};
use super::{Context, ServiceError};
use crate::domain::Tenant;
use crate::scim::discovery;
use crate::scim::extension::{ExtensionDefinition, parse_definition};
use crate::scim::query::search_document;
use crate::scim::schema::Registry;
use crate::scim::validate::validate_resource;
use crate::store::schemas::StoredSchema;
use crate::store::{StoreError, groups, schemas, tenants, users};

/// Resources read per step while a registration re-indexes and checks existing values.
const BATCH: u64 = 500;
/// Most non-conforming resources a registration lists (it counts them all).
const MAX_REPORTED: usize = 100;

/// A tenant's registry and the schema version it was built for.
type Cached = (i64, Arc<Registry>);

/// Each tenant's registry, by tenant id.
#[derive(Debug, Clone, Default)]
pub struct Registries(Arc<Mutex<HashMap<String, Cached>>>);

/// Builds the registry of `definitions` over the core.
fn build(definitions: &[StoredSchema]) -> Result<Registry, ServiceError> {
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
#[derive(Debug, Clone, Serialize)]
pub struct NonConforming {
    pub id: String,
    pub detail: String,
}

/// What a registration did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// The schema as `/Schemas` now serves it.
    pub schema: Value,
    /// Resources of the extended type re-indexed (their values became filterable).
    pub checked: u64,
    /// How many of them hold values that do not fit (left as they are).
    pub non_conforming_count: u64,
    /// The first of those, with the reason.
    pub non_conforming: Vec<NonConforming>,
}

async fn live_tenant(ctx: &Context, slug: &str) -> Result<Tenant, ServiceError> {
    let tenant = super::tenants::live_tenant(ctx, slug).await?;
    with_registry(ctx, tenant).await
}

/// Registers an extension for a tenant: checks the definition, stores it, then re-indexes
/// the tenant's resources of that type (values already stored under the URN become typed,
/// filterable and sortable) and reports those that do not fit — never changing them.
#[tracing::instrument(skip(ctx, actor, definition), err(level = "debug"))]
pub async fn register(
    ctx: &Context,
    actor: &Actor,
    slug: &str,
    definition: Value,
) -> Result<Registration, ServiceError> {
    let tenant = live_tenant(ctx, slug).await?;
    let parsed = parse_definition(&definition).map_err(ServiceError::invalid_value)?;
    if tenant.registry.schema(&parsed.schema.id).is_some() {
        return Err(ServiceError::uniqueness(format!(
            "schema {} is already registered for this tenant",
            parsed.schema.id
        )));
    }
    let urn = parsed.schema.id.clone();
    let resource_type = parsed.resource_type.clone();
    let registry = tenant
        .registry
        .as_ref()
        .clone()
        .extended(parsed.schema, &resource_type);

    let txn = ctx.store.begin_write().await?;
    schemas::insert(
        &txn,
        &tenant.id,
        StoredSchema {
            urn: urn.clone(),
            resource_type: resource_type.clone(),
            definition: definition.clone(),
            created_at: ctx.now(),
        },
    )
    .await
    .map_err(|e| match e {
        StoreError::Unique(_) => {
            ServiceError::uniqueness(format!("schema {urn} is already registered"))
        }
        other => other.into(),
    })?;
    tenants::bump_schema_version(&txn, &tenant.id).await?;
    audit::record(
        &txn,
        ctx,
        actor,
        "schema.register",
        Some(tenant.slug.as_str()),
        Some(&urn),
        json!({"resourceType": resource_type}),
    )
    .await?;
    txn.commit().await?;

    let (checked, non_conforming_count, non_conforming) =
        reindex(ctx, &tenant, &registry, &resource_type).await?;
    let schema = registry
        .schema(&urn)
        .map(|s| discovery::schema(&ctx.scim_base(&tenant.slug), s))
        .unwrap_or(Value::Null);
    Ok(Registration {
        schema,
        checked,
        non_conforming_count,
        non_conforming,
    })
}

/// Recomputes the search documents of the tenant's resources of `resource_type` with
/// `registry`, and checks each against it. Each batch is its own short transaction.
async fn reindex(
    ctx: &Context,
    tenant: &Tenant,
    registry: &Registry,
    resource_type: &str,
) -> Result<(u64, u64, Vec<NonConforming>), ServiceError> {
    let rt = match resource_type {
        "Group" => registry.group(),
        _ => registry.user(),
    };
    let mut after: Option<String> = None;
    let mut checked = 0;
    let mut bad_count = 0;
    let mut bad = Vec::new();
    loop {
        crate::failpoints::point("reindex.batch", &tenant.id).await;
        // Read and written in one transaction, the rows locked: a concurrent write either
        // went first (and its document is what is indexed) or waits for this batch.
        let txn = ctx.store.begin_write().await?;
        let documents: Vec<(String, serde_json::Map<String, Value>)> = if resource_type == "Group" {
            groups::page_by_id(&txn, &tenant.id, after.as_deref(), BATCH, true)
                .await?
                .into_iter()
                .map(|g| (g.id, g.document))
                .collect()
        } else {
            users::page_by_id(&txn, &tenant.id, after.as_deref(), BATCH, true)
                .await?
                .into_iter()
                .map(|u| (u.id, u.document))
                .collect()
        };
        let Some((last, _)) = documents.last() else {
            txn.commit().await?;
            break;
        };
        after = Some(last.clone());
        for (id, document) in &documents {
            checked += 1;
            if let Err(e) = validate_resource(registry, rt, Value::Object(document.clone())) {
                bad_count += 1;
                if bad.len() < MAX_REPORTED {
                    bad.push(NonConforming {
                        id: id.clone(),
                        detail: e.detail,
                    });
                }
            }
            let search = search_document(registry, rt, document);
            if resource_type == "Group" {
                groups::set_search(&txn, &tenant.id, id, search).await?;
            } else {
                users::set_search(&txn, &tenant.id, id, search).await?;
            }
        }
        txn.commit().await?;
        if (documents.len() as u64) < BATCH {
            break;
        }
    }
    Ok((checked, bad_count, bad))
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
