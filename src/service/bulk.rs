//! `/Bulk` (RFC 7644 §3.7): POST, PUT, PATCH and DELETE operations on Users and Groups in
//! one request. Each operation runs as the single-resource operation would — its own
//! transaction, its own events. `bulkId` references (`"bulkId:qwerty"` in a path or any
//! value, group members included) are resolved in whatever order the operations come:
//! an operation waits until the operations it refers to have run. References that can
//! never resolve — to an undefined or failed `bulkId`, or in a circle (which, between
//! groups, would be a membership cycle scimbus refuses anyway) — fail with 409 as
//! §3.7.1 allows. `failOnErrors` stops the job after that many errors.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::resource::ResourceView;
use super::{Context, ServiceError, groups, users};
use crate::domain::{ResourceId, ResourceKind, Tenant};
use crate::telemetry::Correlation;
use scim_v2::models::errors::ScimType;

use crate::scim::error::ScimError;

pub const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// Most operations one request may carry (advertised in `/ServiceProviderConfig`).
pub const MAX_OPERATIONS: usize = 1000;

const BULK_ID_PREFIX: &str = "bulkId:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// One operation as sent, checked for shape.
#[derive(Debug)]
struct Operation {
    method: Method,
    bulk_id: Option<String>,
    version: Option<String>,
    kind: ResourceKind,
    /// The target id (PUT, PATCH, DELETE), possibly `bulkId:…`.
    id: Option<String>,
    data: Value,
    /// The `bulkId`s this operation refers to.
    refers_to: HashSet<String>,
}

/// The outcome of one operation, as the response lists it.
#[derive(Debug)]
struct Outcome {
    status: u16,
    location: Option<String>,
    version: Option<String>,
    /// The resource id, for `bulkId` resolution.
    id: Option<String>,
    error: Option<ScimError>,
}

impl Outcome {
    fn failed(error: ScimError) -> Self {
        Self {
            status: error.status,
            location: None,
            version: None,
            id: None,
            error: Some(error),
        }
    }
}

fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn collect_refs(value: &Value, refs: &mut HashSet<String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_ID_PREFIX) {
                refs.insert(id.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        Value::Object(map) => map.values().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

fn substitute(value: &mut Value, resolved: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_ID_PREFIX).and_then(|b| resolved.get(b)) {
                *s = id.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, resolved)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, resolved)),
        _ => {}
    }
}

/// Checks one operation's shape; the error is that operation's, not the request's.
fn parse_operation(value: &Value) -> Result<Operation, ScimError> {
    let object = value
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("each operation must be a JSON object"))?;
    let text = |name: &str| {
        field(object, name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let method = match text("method").map(|m| m.to_ascii_uppercase()).as_deref() {
        Some("POST") => Method::Post,
        Some("PUT") => Method::Put,
        Some("PATCH") => Method::Patch,
        Some("DELETE") => Method::Delete,
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "method `{other}` is not POST, PUT, PATCH or DELETE"
            )));
        }
        None => return Err(ScimError::invalid_syntax("an operation needs a `method`")),
    };
    let path =
        text("path").ok_or_else(|| ScimError::invalid_syntax("an operation needs a `path`"))?;
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let kind = match segments.next().and_then(ResourceKind::from_endpoint) {
        Some(kind) => kind,
        None => {
            return Err(ScimError::new(
                400,
                Some(ScimType::InvalidPath),
                format!("path `{path}` is not /Users or /Groups"),
            ));
        }
    };
    let id = segments.next().filter(|s| !s.is_empty()).map(str::to_owned);
    match (method, &id) {
        (Method::Post, Some(_)) => {
            return Err(ScimError::new(
                400,
                Some(ScimType::InvalidPath),
                "POST takes /Users or /Groups, without an id",
            ));
        }
        (Method::Put | Method::Patch | Method::Delete, None) => {
            return Err(ScimError::new(
                400,
                Some(ScimType::InvalidPath),
                format!("{} needs /Users/{{id}} or /Groups/{{id}}", method.as_str()),
            ));
        }
        _ => {}
    }
    let bulk_id = text("bulkId");
    if method == Method::Post && bulk_id.is_none() {
        // RFC 7644 §3.7.3: bulkId is REQUIRED for POST.
        return Err(ScimError::invalid_value(
            "a POST operation needs a `bulkId`",
        ));
    }
    let data = field(object, "data").cloned().unwrap_or(Value::Null);
    if method != Method::Delete && !data.is_object() {
        return Err(ScimError::invalid_syntax(format!(
            "a {} operation needs `data` as a JSON object",
            method.as_str()
        )));
    }
    let mut refers_to = HashSet::new();
    collect_refs(&data, &mut refers_to);
    if let Some(b) = id.as_deref().and_then(|i| i.strip_prefix(BULK_ID_PREFIX)) {
        refers_to.insert(b.to_owned());
    }
    Ok(Operation {
        method,
        bulk_id,
        version: text("version"),
        kind,
        id,
        data,
        refers_to,
    })
}

/// What a successful write tells the response about its resource.
struct Written {
    id: String,
    version: String,
    location: Option<String>,
}

impl From<ResourceView> for Written {
    fn from(view: ResourceView) -> Self {
        Self {
            version: view.etag(),
            location: view.location().map(str::to_owned),
            id: view.id.into_string(),
        }
    }
}

async fn run(
    ctx: &Context,
    tenant: &Tenant,
    correlation: Option<&Correlation>,
    op: &Operation,
    id: Option<&ResourceId>,
    data: Value,
) -> Outcome {
    let if_match = op.version.as_deref();
    let result: Result<(u16, Option<Written>), ServiceError> = match (op.kind, op.method, id) {
        (ResourceKind::User, Method::Post, _) => users::create(ctx, tenant, correlation, data)
            .await
            .map(|u| (201, Some(u.into()))),
        (ResourceKind::Group, Method::Post, _) => {
            groups::create(ctx, tenant, correlation, data, None)
                .await
                .map(|g| (201, Some(g.into())))
        }
        (ResourceKind::User, Method::Put, Some(id)) => {
            users::replace(ctx, tenant, correlation, id, data, if_match)
                .await
                .map(|w| (200, Some(w.view.into())))
        }
        (ResourceKind::Group, Method::Put, Some(id)) => {
            groups::replace(ctx, tenant, correlation, id, data, None, if_match)
                .await
                .map(|w| (200, Some(w.view.into())))
        }
        (ResourceKind::User, Method::Patch, Some(id)) => {
            users::patch(ctx, tenant, correlation, id, data, if_match)
                .await
                .map(|w| (200, Some(w.view.into())))
        }
        (ResourceKind::Group, Method::Patch, Some(id)) => groups::patch(
            ctx,
            tenant,
            correlation,
            id,
            data,
            if_match,
            groups::Members::Exclude,
        )
        .await
        .map(|w| (200, Some(w.view.into()))),
        (ResourceKind::User, Method::Delete, Some(id)) => {
            users::delete(ctx, tenant, correlation, id, if_match)
                .await
                .map(|()| (204, None))
        }
        (ResourceKind::Group, Method::Delete, Some(id)) => {
            groups::delete(ctx, tenant, correlation, id, if_match)
                .await
                .map(|()| (204, None))
        }
        _ => Err(ServiceError::invalid_value("the operation has no target")),
    };
    match result {
        Ok((status, Some(written))) => Outcome {
            status,
            location: written.location,
            version: Some(written.version),
            id: Some(written.id),
            error: None,
        },
        Ok((status, None)) => Outcome {
            status,
            location: None,
            version: None,
            id: id.map(|id| id.as_str().to_owned()),
            error: None,
        },
        Err(e) => {
            let reference = correlation.map_or("", |c| c.id.as_str());
            Outcome::failed(super::report(reference, &e))
        }
    }
}

/// Runs a BulkRequest and returns the BulkResponse. Request-level problems (not a
/// BulkRequest, too many operations) are errors; an operation's failure is its entry.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug), err(level = "debug"))]
pub async fn execute(
    ctx: &Context,
    tenant: &Tenant,
    correlation: Option<&Correlation>,
    body: Value,
) -> Result<Value, ServiceError> {
    let Value::Object(request) = body else {
        return Err(ScimError::invalid_syntax("a BulkRequest must be a JSON object").into());
    };
    let named = field(&request, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(BULK_REQUEST_URN))
            })
        });
    if !named {
        return Err(
            ScimError::invalid_syntax(format!("`schemas` must list {BULK_REQUEST_URN}")).into(),
        );
    }
    let fail_on_errors = match field(&request, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            crate::scim::validate::whole_number(v)
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ScimError::invalid_value("`failOnErrors` must be a positive integer")
                })?,
        ),
    };
    let raw = field(&request, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a BulkRequest needs an `Operations` array"))?;
    if raw.len() > MAX_OPERATIONS {
        return Err(ScimError::new(
            413,
            None,
            format!(
                "{} operations exceed maxOperations ({MAX_OPERATIONS})",
                raw.len()
            ),
        )
        .into());
    }
    let parsed: Vec<Result<Operation, ScimError>> = raw.iter().map(parse_operation).collect();

    // bulkId → the index of the operation that defines it (the first; a repeat is an error).
    let mut defined: HashMap<String, usize> = HashMap::new();
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(parsed.len());
    for (i, op) in parsed.iter().enumerate() {
        let mut outcome = None;
        match op {
            Err(e) => outcome = Some(Outcome::failed(e.clone())),
            Ok(op) => {
                if let Some(b) = &op.bulk_id {
                    if defined.contains_key(b) {
                        outcome = Some(Outcome::failed(ScimError::invalid_value(format!(
                            "bulkId `{b}` is used by an earlier operation"
                        ))));
                    } else {
                        defined.insert(b.clone(), i);
                    }
                }
            }
        }
        outcomes.push(outcome);
    }
    let mut errors = outcomes.iter().flatten().count() as u64;
    let mut resolved: HashMap<String, String> = HashMap::new();
    let stop = |errors: u64| fail_on_errors.is_some_and(|n| errors >= n.unsigned_abs());
    // Passes: run every operation whose references are all resolved, in request order,
    // until a pass runs nothing.
    'passes: loop {
        let mut progressed = false;
        for i in 0..parsed.len() {
            if stop(errors) {
                break 'passes;
            }
            let Ok(op) = &parsed[i] else { continue };
            if outcomes[i].is_some() {
                continue;
            }
            // A reference to an operation that failed (or cannot run) fails this one.
            let failed_ref = op.refers_to.iter().find(|b| {
                defined
                    .get(*b)
                    .is_some_and(|d| outcomes[*d].as_ref().is_some_and(|o| o.error.is_some()))
            });
            if let Some(b) = failed_ref {
                outcomes[i] = Some(Outcome::failed(ScimError::new(
                    409,
                    None,
                    format!("bulkId `{b}` refers to an operation that failed"),
                )));
                errors += 1;
                progressed = true;
                continue;
            }
            if !op.refers_to.iter().all(|b| resolved.contains_key(b)) {
                continue;
            }
            let mut data = op.data.clone();
            substitute(&mut data, &resolved);
            let id = op
                .id
                .as_deref()
                .map(|id| match id.strip_prefix(BULK_ID_PREFIX) {
                    Some(b) => resolved.get(b).cloned().unwrap_or_else(|| id.to_owned()),
                    None => id.to_owned(),
                })
                .map(ResourceId::from);
            let outcome = run(ctx, tenant, correlation, op, id.as_ref(), data).await;
            if outcome.error.is_some() {
                errors += 1;
            } else if let (Some(b), Some(id)) = (&op.bulk_id, &outcome.id) {
                resolved.insert(b.clone(), id.clone());
            }
            outcomes[i] = Some(outcome);
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
    // What is left waits on bulkIds nothing defines, or on each other in a circle.
    if !stop(errors) {
        for i in 0..parsed.len() {
            let Ok(op) = &parsed[i] else { continue };
            if outcomes[i].is_some() {
                continue;
            }
            let undefined: Vec<&String> = op
                .refers_to
                .iter()
                .filter(|b| !defined.contains_key(*b))
                .collect();
            let detail = if undefined.is_empty() {
                "circular bulkId references cannot be resolved (RFC 7644 §3.7.1)".to_owned()
            } else {
                format!("bulkId `{}` is defined by no operation", undefined[0])
            };
            outcomes[i] = Some(Outcome::failed(ScimError::new(409, None, detail)));
            errors += 1;
            if stop(errors) {
                break;
            }
        }
    }

    let entries: Vec<Value> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, outcome)| {
            let outcome = outcome.as_ref()?;
            let mut entry = Map::new();
            let (method, bulk_id, version) = match &parsed[i] {
                Ok(op) => (
                    op.method.as_str().to_owned(),
                    op.bulk_id.clone(),
                    op.version.clone(),
                ),
                Err(_) => {
                    let object = raw[i].as_object();
                    let text = |n: &str| {
                        object
                            .and_then(|o| field(o, n))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    };
                    (
                        text("method").unwrap_or_default(),
                        text("bulkId"),
                        text("version"),
                    )
                }
            };
            entry.insert("method".to_owned(), json!(method));
            if let Some(b) = bulk_id {
                entry.insert("bulkId".to_owned(), json!(b));
            }
            if let Some(v) = outcome.version.clone().or(version) {
                entry.insert("version".to_owned(), json!(v));
            }
            if let Some(l) = &outcome.location {
                entry.insert("location".to_owned(), json!(l));
            }
            entry.insert("status".to_owned(), json!(outcome.status.to_string()));
            if let Some(e) = &outcome.error {
                entry.insert(
                    "response".to_owned(),
                    serde_json::to_value(e.to_body()).unwrap_or(Value::Null),
                );
            }
            Some(Value::Object(entry))
        })
        .collect();
    Ok(json!({
        "schemas": [BULK_RESPONSE_URN],
        "Operations": entries,
    }))
}
