//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) with each attribute's
//! `returned` (RFC 7643 §7): `always` attributes (`id`, and `schemas` by RFC 7643 §3)
//! cannot be left out, `never` ones never appear, `request` ones only when asked for.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::error::ScimError;
use super::schema::{Attribute, Registry, ResourceType, Returned};
use super::starts_with_ci;

/// A requested attribute: its canonical top-level key and, optionally, a sub-attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    key: String,
    sub: Option<String>,
}

/// What a response shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Projection {
    /// Attributes returned by default.
    #[default]
    Default,
    /// Only these (and those always returned).
    Only(Vec<String>),
    /// The default set without these.
    Without(Vec<String>),
}

impl Projection {
    /// From the two query parameters (comma-separated names); `attributes` wins when both
    /// are given (RFC 7644 §3.9 says they are exclusive; we do not fail the request).
    pub fn new(attributes: Option<&str>, excluded: Option<&str>) -> Self {
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect()
        };
        match (attributes, excluded) {
            (Some(a), _) if !list(a).is_empty() => Projection::Only(list(a)),
            (_, Some(e)) if !list(e).is_empty() => Projection::Without(list(e)),
            _ => Projection::Default,
        }
    }

    /// Whether the response may need `name` (top-level, canonical).
    pub fn wants(&self, name: &str) -> bool {
        match self {
            Projection::Default => true,
            Projection::Only(names) => names
                .iter()
                .any(|n| top_level(n).eq_ignore_ascii_case(name)),
            Projection::Without(names) => !names.iter().any(|n| {
                let short = n.rsplit(':').next().unwrap_or(n);
                top_level(n).eq_ignore_ascii_case(name) && !short.contains('.')
            }),
        }
    }

    /// Applies the projection to a representation of `resource_type`.
    pub fn apply(&self, registry: &Registry, resource_type: &ResourceType, body: &mut Value) {
        self.prepare(registry, resource_type).apply(body);
    }

    /// Resolves the names once, for applying to many representations of `resource_type`
    /// (a page of a list) at a cost per representation proportional to its own size.
    pub fn prepare<'a>(
        &self,
        registry: &'a Registry,
        resource_type: &'a ResourceType,
    ) -> Prepared<'a> {
        let resolve = |names: &[String]| -> HashMap<String, Vec<Option<String>>> {
            let mut by_key: HashMap<String, Vec<Option<String>>> = HashMap::new();
            for named in names
                .iter()
                .filter_map(|n| resolve(registry, resource_type, n))
            {
                // Distinct entries only: a key has few registered sub-attributes.
                let subs = by_key.entry(named.key).or_default();
                if !subs.contains(&named.sub) {
                    subs.push(named.sub);
                }
            }
            by_key
        };
        let mode = match self {
            Projection::Default => Mode::Default,
            Projection::Only(names) => Mode::Only(resolve(names)),
            Projection::Without(names) => Mode::Without(resolve(names)),
        };
        Prepared {
            registry,
            resource_type,
            mode,
        }
    }
}

/// A longer `attributes` or `excludedAttributes` list is refused (400 `invalidValue`).
pub const MAX_NAMES: usize = super::validate::MAX_ATTRIBUTES;

/// Checks the length of an `attributes` / `excludedAttributes` value.
pub fn check_names(parameter: &str, list: &str) -> Result<(), ScimError> {
    if list.split(',').nth(MAX_NAMES).is_some() {
        return Err(ScimError::invalid_value(format!(
            "`{parameter}` names more than {MAX_NAMES} attributes"
        )));
    }
    Ok(())
}

enum Mode {
    Default,
    /// Canonical top-level key → the sub-attributes asked for (`None`: all of it).
    Only(HashMap<String, Vec<Option<String>>>),
    Without(HashMap<String, Vec<Option<String>>>),
}

/// A [`Projection`] resolved against one resource type.
pub struct Prepared<'a> {
    registry: &'a Registry,
    resource_type: &'a ResourceType,
    mode: Mode,
}

impl Prepared<'_> {
    /// The default projection (no `attributes` nor `excludedAttributes`).
    pub fn is_default(&self) -> bool {
        matches!(self.mode, Mode::Default)
    }

    /// Applies the projection to one representation.
    pub fn apply(&self, body: &mut Value) {
        let Value::Object(map) = body else {
            return;
        };
        let (registry, resource_type) = (self.registry, self.resource_type);
        let keep_default =
            |key: &str| returned(registry, resource_type, key) != Some(Returned::Request);
        match &self.mode {
            Mode::Default => map.retain(|k, _| keep_default(k)),
            Mode::Only(wanted) => {
                let mut out = Map::new();
                for (key, value) in std::mem::take(map) {
                    let always = key == "schemas"
                        || returned(registry, resource_type, &key) == Some(Returned::Always);
                    if always {
                        out.insert(key, value);
                        continue;
                    }
                    let Some(asked) = wanted.get(&key) else {
                        continue;
                    };
                    if asked.iter().any(Option::is_none) {
                        out.insert(key, value);
                    } else {
                        let subs: Vec<&str> = asked.iter().filter_map(Option::as_deref).collect();
                        if let Some(v) = keep_subs(value, &subs) {
                            out.insert(key, v);
                        }
                    }
                }
                *map = out;
            }
            Mode::Without(unwanted) => {
                map.retain(|k, _| keep_default(k));
                for (key, subs) in unwanted {
                    let always = key == "schemas"
                        || returned(registry, resource_type, key) == Some(Returned::Always);
                    if always {
                        continue;
                    }
                    for sub in subs {
                        match sub {
                            None => {
                                map.remove(key);
                            }
                            Some(sub) => {
                                if let Some(v) = map.get_mut(key) {
                                    drop_sub(v, sub);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Removes from a stored document what no answer, list, snapshot or event may show (RFC
/// 7643 §7): attributes that are `returned: never` or `writeOnly`, at the top level and
/// inside the resource type's registered extensions.
pub fn hide_unreturnable(
    registry: &Registry,
    resource_type: &ResourceType,
    document: &mut Map<String, Value>,
) {
    let unreturnable = |a: &Attribute| {
        a.returned == Returned::Never || a.mutability == super::schema::Mutability::WriteOnly
    };
    if let Some(core) = registry.schema(&resource_type.schema) {
        document.retain(|key, _| {
            core.attribute(key)
                .or_else(|| registry.common_attribute(key))
                .is_none_or(|a| !unreturnable(a))
        });
    }
    for extension in &resource_type.extensions {
        let Some(schema) = registry.schema(&extension.schema) else {
            continue;
        };
        if let Some(Value::Object(fields)) = document.get_mut(&schema.id) {
            fields.retain(|key, _| schema.attribute(key).is_none_or(|a| !unreturnable(a)));
            if fields.is_empty() {
                document.remove(&schema.id);
            }
        }
    }
}

/// [`hide_unreturnable`] on a copy.
pub fn returnable(
    registry: &Registry,
    resource_type: &ResourceType,
    document: &Map<String, Value>,
) -> Map<String, Value> {
    let mut copy = document.clone();
    hide_unreturnable(registry, resource_type, &mut copy);
    copy
}

/// The top-level attribute a name refers to, without schema URN and sub-attribute
/// (`urn:…:Group:members` and `members.value` both refer to `members`).
fn top_level(name: &str) -> &str {
    let short = name.rsplit(':').next().unwrap_or(name);
    short.split('.').next().unwrap_or(short)
}

fn returned(registry: &Registry, resource_type: &ResourceType, key: &str) -> Option<Returned> {
    registry
        .common_attribute(key)
        .or_else(|| {
            registry
                .schema(&resource_type.schema)
                .and_then(|s| s.attribute(key))
        })
        .map(|a: &Attribute| a.returned)
}

/// Resolves a requested name to a key of the representation (case-insensitively; URN
/// prefixes of the core schema stripped; extension attributes as `(URN, attribute)`).
fn resolve(registry: &Registry, resource_type: &ResourceType, name: &str) -> Option<Named> {
    let core = registry.schema(&resource_type.schema)?;
    let mut rest = name;
    if rest.len() > core.id.len() && starts_with_ci(rest, &core.id) {
        rest = rest
            .get(core.id.len()..)
            .unwrap_or_default()
            .trim_start_matches(':');
    } else if rest.len() > 4 && starts_with_ci(rest, "urn:") {
        for ext in &resource_type.extensions {
            let urn = ext.schema.as_str();
            if rest.eq_ignore_ascii_case(urn) {
                return Some(Named {
                    key: urn.to_owned(),
                    sub: None,
                });
            }
            if rest.len() > urn.len() + 1 && starts_with_ci(rest, urn) {
                let attr = rest
                    .get(urn.len() + 1..)
                    .unwrap_or_default()
                    .split('.')
                    .next()
                    .unwrap_or_default();
                let def = registry.schema(urn)?.attribute(attr)?;
                return Some(Named {
                    key: urn.to_owned(),
                    sub: Some(def.name.clone()),
                });
            }
        }
        return None;
    }
    let (top, sub) = match rest.split_once('.') {
        Some((t, s)) => (t, Some(s)),
        None => (rest, None),
    };
    let def = registry
        .common_attribute(top)
        .or_else(|| core.attribute(top))?;
    let sub = match sub {
        Some(s) => Some(def.sub_attribute(s)?.name.clone()),
        None => None,
    };
    Some(Named {
        key: def.name.clone(),
        sub,
    })
}

/// Keeps only `subs` of a complex value (or of each element of a multi-valued one).
fn keep_subs(value: Value, subs: &[&str]) -> Option<Value> {
    let only = |v: Value| -> Option<Value> {
        let Value::Object(fields) = v else {
            return None;
        };
        let kept: Map<String, Value> = fields
            .into_iter()
            .filter(|(k, _)| subs.iter().any(|s| s == k))
            .collect();
        (!kept.is_empty()).then_some(Value::Object(kept))
    };
    match value {
        Value::Array(items) => {
            let kept: Vec<Value> = items.into_iter().filter_map(only).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => only(other),
    }
}

fn drop_sub(value: &mut Value, sub: &str) {
    match value {
        Value::Array(items) => {
            for item in items {
                if let Value::Object(fields) = item {
                    fields.remove(sub);
                }
            }
        }
        Value::Object(fields) => {
            fields.remove(sub);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ENTERPRISE_USER_URN, USER_URN};
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN],
            "id": "1", "userName": "b", "title": "t",
            "name": {"givenName": "B", "familyName": "J"},
            "emails": [{"value": "a@x", "type": "work"}],
            "meta": {"resourceType": "User"},
            ENTERPRISE_USER_URN: {"department": "d", "costCenter": "c"}
        })
    }

    fn project(p: Projection) -> Value {
        let r = Registry::core();
        let mut body = user();
        p.apply(r, r.user(), &mut body);
        body
    }

    #[test]
    fn attributes_keep_only_what_is_asked_and_what_is_always_returned() {
        let body = project(Projection::new(
            Some("USERNAME,name.givenName,emails.value"),
            None,
        ));
        assert_eq!(
            body,
            json!({
                "schemas": [USER_URN, ENTERPRISE_USER_URN], "id": "1", "userName": "b",
                "name": {"givenName": "B"}, "emails": [{"value": "a@x"}]
            })
        );
        let body = project(Projection::new(
            Some(&format!(
                "{ENTERPRISE_USER_URN}:department,{USER_URN}:title"
            )),
            None,
        ));
        assert_eq!(body[ENTERPRISE_USER_URN], json!({"department": "d"}));
        assert_eq!(body["title"], "t");
        assert!(body.get("userName").is_none());
    }

    #[test]
    fn excluded_attributes_drop_what_is_named_but_never_id() {
        let body = project(Projection::new(
            None,
            Some(&format!("id,title,name.familyName,{ENTERPRISE_USER_URN}")),
        ));
        assert_eq!(body["id"], "1");
        assert!(body.get("title").is_none());
        assert_eq!(body["name"], json!({"givenName": "B"}));
        assert!(body.get(ENTERPRISE_USER_URN).is_none());
        assert_eq!(body["userName"], "b");
    }

    #[test]
    fn members_are_wanted_unless_excluded_or_not_asked_for() {
        assert!(Projection::new(None, None).wants("members"));
        assert!(!Projection::new(None, Some("members")).wants("members"));
        assert!(Projection::new(None, Some("members.display")).wants("members"));
        assert!(!Projection::new(Some("displayName"), None).wants("members"));
        assert!(Projection::new(Some("members.value"), None).wants("members"));
        assert!(
            !Projection::new(
                None,
                Some("urn:ietf:params:scim:schemas:core:2.0:Group:members")
            )
            .wants("members")
        );
    }
}
