//! The RFC 7644 §3.5.2 engine: resolves each operation's target against the registry and the
//! document, applies it to a working copy, then canonicalises the result exactly like a PUT
//! body (`validate_resource`) and checks `immutable` attributes against the stored document.

use scim_v2::filter::{PatchPath, ValFilter};
use serde_json::{Map, Value};

use super::{
    MemberRef, MembersFold, Op, Operation, PatchOutcome, dialect, get_ci, invalid_path, is_urn,
    key_ci, mutability, no_target, remove_ci, set_ci, value_filter,
};
use crate::scim::error::ScimError;
use crate::scim::schema::{
    AttrType, Attribute, GROUP_URN, Mutability, Registry, ResourceType, Schema,
};
use crate::scim::validate::{MAX_ATTRIBUTES, check_value, count_values, validate_resource};

/// Where an attribute lives: at the top of the document or inside an extension object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Container {
    Core,
    /// The extension's key in the document (canonical URN when registered).
    Extension(String),
}

/// An attribute's place: its container, its definition (`None`: unknown, kept as sent,
/// DESIGN 4) and its key (canonical name, or the spelling already stored, or as sent).
#[derive(Debug, Clone)]
struct Slot<'r> {
    container: Container,
    attr: Option<&'r Attribute>,
    name: String,
}

#[derive(Debug, Clone)]
struct Sub<'r> {
    attr: Option<&'r Attribute>,
    name: String,
}

/// What an operation acts on.
#[derive(Debug)]
enum Target<'r> {
    /// A whole extension object (`urn:…:enterprise:2.0:User`).
    Extension {
        key: String,
        schema: Option<&'r Schema>,
    },
    /// An attribute, or one sub-attribute of a single-valued complex attribute.
    Attr {
        slot: Slot<'r>,
        sub: Option<Sub<'r>>,
    },
    /// Elements of a multi-valued attribute: those the filter matches, or all of them when
    /// there is no filter (`emails.display`), optionally one sub-attribute of each.
    Elements {
        slot: Slot<'r>,
        filter: Option<ValFilter>,
        sub: Option<Sub<'r>>,
    },
    /// A Group's `members`, which live in the membership table.
    Members {
        filter: Option<ValFilter>,
        sub: Option<String>,
    },
    /// The resource's `id`.
    Id,
    /// Any other readOnly attribute (`meta`, `groups`, `meta.created`, `manager.displayName`).
    ReadOnly,
    /// Accepted and discarded: `password` (DESIGN 4), `schemas` (derived from the content).
    Discard,
}

/// How strictly a target is judged: a path names it on purpose, a path-less value may echo a
/// whole resource back (Okta, Entra), like a PUT body (RFC 7644 §3.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Value,
}

enum Resolved<'r> {
    In(Container),
    Whole(Target<'r>),
}

pub(super) struct Engine<'r> {
    registry: &'r Registry,
    resource_type: &'r ResourceType,
    core: &'r Schema,
    resource_id: &'r str,
    doc: Map<String, Value>,
    members: MembersFold,
}

impl<'r> Engine<'r> {
    pub(super) fn new(
        registry: &'r Registry,
        resource_type: &'r ResourceType,
        doc: &Map<String, Value>,
        resource_id: &'r str,
    ) -> Result<Self, ScimError> {
        let core = registry
            .schema(&resource_type.schema)
            .ok_or_else(|| ScimError::new(500, None, "resource type without a schema"))?;
        Ok(Self {
            registry,
            resource_type,
            core,
            resource_id,
            doc: doc.clone(),
            members: MembersFold::default(),
        })
    }

    pub(super) fn run(
        mut self,
        stored: &Map<String, Value>,
        ops: &[Operation],
    ) -> Result<PatchOutcome, ScimError> {
        self.check_budget(ops)?;
        for (i, op) in ops.iter().enumerate() {
            self.operation(op).map_err(|mut e| {
                e.detail = format!("operation {}: {}", i + 1, e.detail);
                e
            })?;
        }
        self.finish(stored)
    }

    /// Refuses a PatchOp whose values hold more than [`MAX_ATTRIBUTES`] attribute values in
    /// all (a group's members excluded: they are rows). With it, every operation costs at
    /// most the size of the document it works on, and the PATCH as a whole stays linear in
    /// its body.
    fn check_budget(&self, ops: &[Operation]) -> Result<(), ScimError> {
        let group = self.is_group();
        let is_members = |name: &str| group && name.eq_ignore_ascii_case("members");
        let mut count = 0usize;
        for op in ops {
            let Some(value) = &op.value else { continue };
            let path_name = op.path.as_ref().map(|path| match path {
                PatchPath::Attr(a) => a.name.as_str(),
                PatchPath::Value(vp) => vp.attr.name.as_str(),
            });
            count += match (path_name, value) {
                (Some(name), _) if is_members(name) => 0,
                (None, Value::Object(fields)) => fields
                    .iter()
                    .filter(|(key, _)| !is_members(key))
                    .map(|(_, v)| 1 + count_values(v, MAX_ATTRIBUTES))
                    .sum(),
                (_, v) => 1 + count_values(v, MAX_ATTRIBUTES),
            };
            if count > MAX_ATTRIBUTES {
                return Err(ScimError::invalid_value(format!(
                    "the operations' values hold more than {MAX_ATTRIBUTES} attribute values \
                     in all (a group's members excepted)"
                )));
            }
        }
        Ok(())
    }

    fn operation(&mut self, op: &Operation) -> Result<(), ScimError> {
        if op.op != Op::Remove && op.value.is_none() {
            return Err(ScimError::invalid_syntax(
                "`add` and `replace` need a `value` (RFC 7644 §3.5.2.1, §3.5.2.3)",
            ));
        }
        match &op.path {
            // RFC 7644 §3.5.2.2: "If "path" is unspecified, the operation fails".
            None if op.op == Op::Remove => Err(no_target("`remove` needs a `path`")),
            None => {
                let Some(Value::Object(fields)) = &op.value else {
                    return Err(ScimError::invalid_syntax(
                        "without `path`, `value` must be an object of attributes",
                    ));
                };
                for (key, value) in fields {
                    self.pathless(op.op, key, value.clone())?;
                }
                Ok(())
            }
            Some(path) => {
                let display = path.to_string();
                let target = self.resolve_path(path, op.value.as_ref(), &display)?;
                self.execute(op.op, target, op.value.clone(), Mode::Path, &display)
            }
        }
    }

    /// One attribute of a path-less `add`/`replace` (RFC 7644 §3.5.2.1, §3.5.2.3). DESIGN 5:
    /// Entra keys these values by paths (`name.givenName`, `emails[type eq "work"].value`,
    /// `urn:…:User:department`) as well as by names and extension URNs.
    fn pathless(&mut self, op: Op, key: &str, value: Value) -> Result<(), ScimError> {
        if key.eq_ignore_ascii_case("schemas") {
            return Ok(());
        }
        let target = if let Some(ext) = self.extension(key) {
            Target::Extension {
                key: ext.id.clone(),
                schema: Some(ext),
            }
        } else {
            match key.parse::<PatchPath>() {
                Ok(path) => self.resolve_path(&path, Some(&value), key)?,
                Err(_) if is_urn(key) && value.is_object() => Target::Extension {
                    key: self.known_urn(key).unwrap_or_else(|| key.to_owned()),
                    schema: None,
                },
                Err(_) => self.unknown(Container::Core, key),
            }
        };
        self.execute(op, target, Some(value), Mode::Value, key)
    }

    fn resolve_path(
        &self,
        path: &PatchPath,
        value: Option<&Value>,
        display: &str,
    ) -> Result<Target<'r>, ScimError> {
        let (attr, filter, sub) = match path {
            PatchPath::Attr(a) => (a, None, a.sub_attr.as_deref()),
            PatchPath::Value(vp) if vp.attr.sub_attr.is_none() => {
                (&vp.attr, Some(&vp.filter), vp.sub_attr.as_deref())
            }
            PatchPath::Value(_) => {
                return Err(invalid_path(format!(
                    "`{display}`: a value filter applies to an attribute, not a sub-attribute"
                )));
            }
        };
        let whole_object = sub.is_none() && filter.is_none() && value.is_some_and(Value::is_object);
        match self.container_of(attr.uri.as_deref(), &attr.name, whole_object) {
            Resolved::Whole(target) if sub.is_none() && filter.is_none() => Ok(target),
            Resolved::Whole(_) => Err(invalid_path(format!(
                "`{display}` names a schema, which has no sub-attributes or values to filter"
            ))),
            Resolved::In(container) => {
                self.resolve_in(container, &attr.name, sub, filter.cloned(), display)
            }
        }
    }

    /// Splits `uri:name`. The path parser cannot tell `urn:a:b:attr` (attribute `attr` of the
    /// extension `urn:a:b`) from an extension URN that ends in `attr`: registered schemas
    /// decide first, then what the document holds, then the shape of the value.
    fn container_of(&self, uri: Option<&str>, name: &str, whole_object: bool) -> Resolved<'r> {
        let Some(uri) = uri else {
            return Resolved::In(Container::Core);
        };
        if uri.eq_ignore_ascii_case(&self.resource_type.schema) {
            return Resolved::In(Container::Core);
        }
        let full = format!("{uri}:{name}");
        if let Some(ext) = self.extension(&full) {
            return Resolved::Whole(Target::Extension {
                key: ext.id.clone(),
                schema: Some(ext),
            });
        }
        if let Some(ext) = self.extension(uri) {
            return Resolved::In(Container::Extension(ext.id.clone()));
        }
        // An unknown extension: kept as sent (DESIGN 4).
        if let Some(key) = self.known_urn(&full) {
            return Resolved::Whole(Target::Extension { key, schema: None });
        }
        if let Some(key) = self.known_urn(uri) {
            return Resolved::In(Container::Extension(key));
        }
        if whole_object {
            return Resolved::Whole(Target::Extension {
                key: full,
                schema: None,
            });
        }
        Resolved::In(Container::Extension(uri.to_owned()))
    }

    fn resolve_in(
        &self,
        container: Container,
        name: &str,
        sub: Option<&str>,
        filter: Option<ValFilter>,
        display: &str,
    ) -> Result<Target<'r>, ScimError> {
        let registered = match &container {
            Container::Core => {
                if name.eq_ignore_ascii_case("schemas") {
                    // RFC 7643 §3: `schemas` follows the extensions the resource holds.
                    return Ok(Target::Discard);
                }
                if self.is_group() && name.eq_ignore_ascii_case("members") {
                    if sub.is_some() && filter.is_none() {
                        return Err(invalid_path(format!(
                            "`{display}`: name members with a filter, as in members[value eq \"id\"]"
                        )));
                    }
                    return Ok(Target::Members {
                        filter,
                        sub: sub.map(str::to_owned),
                    });
                }
                self.registry
                    .common_attribute(name)
                    .or_else(|| self.core.attribute(name))
            }
            Container::Extension(key) => self.extension(key).and_then(|s| s.attribute(name)),
        };
        let Some(attr) = registered else {
            let slot = self.unknown_slot(container, name);
            let sub = sub.map(|s| Sub {
                attr: None,
                name: s.to_owned(),
            });
            return Ok(match filter {
                Some(filter) => Target::Elements {
                    slot,
                    filter: Some(filter),
                    sub,
                },
                None => Target::Attr { slot, sub },
            });
        };
        match attr.mutability {
            Mutability::ReadOnly
                if container == Container::Core
                    && attr.name == "id"
                    && sub.is_none()
                    && filter.is_none() =>
            {
                return Ok(Target::Id);
            }
            Mutability::ReadOnly => return Ok(Target::ReadOnly),
            Mutability::WriteOnly => return Ok(Target::Discard),
            Mutability::ReadWrite | Mutability::Immutable => {}
        }
        if filter.is_some() && !attr.multi_valued {
            return Err(invalid_path(format!(
                "`{display}`: `{}` is single-valued and takes no value filter",
                attr.name
            )));
        }
        let sub = match sub {
            None => None,
            Some(_) if attr.ty != AttrType::Complex => {
                return Err(invalid_path(format!(
                    "`{display}`: `{}` has no sub-attributes",
                    attr.name
                )));
            }
            Some(s) => match attr.sub_attribute(s) {
                Some(sa) if sa.mutability == Mutability::ReadOnly => return Ok(Target::ReadOnly),
                Some(sa) if sa.mutability == Mutability::WriteOnly => return Ok(Target::Discard),
                Some(sa) => Some(Sub {
                    attr: Some(sa),
                    name: sa.name.clone(),
                }),
                None => Some(Sub {
                    attr: None,
                    name: s.to_owned(),
                }),
            },
        };
        let slot = Slot {
            container,
            attr: Some(attr),
            name: attr.name.clone(),
        };
        Ok(
            if filter.is_some() || (attr.multi_valued && sub.is_some()) {
                Target::Elements { slot, filter, sub }
            } else {
                Target::Attr { slot, sub }
            },
        )
    }

    /// An attribute the registry does not know, under the spelling already stored if any.
    fn unknown(&self, container: Container, name: &str) -> Target<'r> {
        Target::Attr {
            slot: self.unknown_slot(container, name),
            sub: None,
        }
    }

    fn unknown_slot(&self, container: Container, name: &str) -> Slot<'r> {
        let stored = match &container {
            Container::Core => key_ci(&self.doc, name).cloned(),
            Container::Extension(key) => get_ci(&self.doc, key)
                .and_then(Value::as_object)
                .and_then(|ext| key_ci(ext, name).cloned()),
        };
        Slot {
            container,
            attr: None,
            name: stored.unwrap_or_else(|| name.to_owned()),
        }
    }

    fn execute(
        &mut self,
        op: Op,
        target: Target<'r>,
        value: Option<Value>,
        mode: Mode,
        display: &str,
    ) -> Result<(), ScimError> {
        // RFC 7643 §2.5: null is unassigned, so setting null removes.
        let value = match op {
            Op::Remove => value.filter(|v| !v.is_null()),
            Op::Add | Op::Replace => value,
        };
        match target {
            Target::Discard => Ok(()),
            Target::ReadOnly if mode == Mode::Value => Ok(()),
            Target::ReadOnly => Err(mutability(format!(
                "`{display}` is readOnly (RFC 7643 §2.2)"
            ))),
            // DESIGN 5: Okta's rename PATCH carries the group's own `id`.
            Target::Id
                if mode == Mode::Value
                    && op != Op::Remove
                    && value.as_ref().and_then(Value::as_str) == Some(self.resource_id) =>
            {
                Ok(())
            }
            Target::Id => Err(mutability("`id` is readOnly (RFC 7643 §3.1)")),
            Target::Extension { key, schema } => {
                self.extension_op(op, &key, schema, value, display)
            }
            Target::Members { filter, sub } => self.members_op(op, filter, sub, value, display),
            Target::Attr { slot, sub: None } => match value {
                Some(v) if op != Op::Remove && !v.is_null() => self.set_attr(op, &slot, v, display),
                listed if op == Op::Remove => self.remove_attr(&slot, listed, display),
                _ => self.remove_attr(&slot, None, display),
            },
            Target::Attr {
                slot,
                sub: Some(sub),
            } => self.sub_op(op, &slot, &sub, value, display),
            Target::Elements { slot, filter, sub } => {
                self.elements_op(op, &slot, filter.as_ref(), sub.as_ref(), value, display)
            }
        }
    }

    /// A whole extension object. `add` and `replace` merge into it attribute by attribute
    /// (RFC 7644 §3.5.2.3: sub-attributes not given are left unchanged).
    fn extension_op(
        &mut self,
        op: Op,
        key: &str,
        schema: Option<&'r Schema>,
        value: Option<Value>,
        display: &str,
    ) -> Result<(), ScimError> {
        match value {
            None | Some(Value::Null) => {
                remove_ci(&mut self.doc, key);
                Ok(())
            }
            Some(_) if op == Op::Remove => {
                remove_ci(&mut self.doc, key);
                Ok(())
            }
            Some(Value::Object(fields)) => {
                self.container_mut(&Container::Extension(key.to_owned()))?;
                for (name, v) in fields {
                    let target = self.in_extension(key, &name)?;
                    self.execute(op, target, Some(v), Mode::Value, &format!("{key}:{name}"))?;
                }
                Ok(())
            }
            Some(_) if schema.is_some() => Err(ScimError::invalid_value(format!(
                "`{display}` must be an object"
            ))),
            Some(other) => {
                set_ci(&mut self.doc, key, other);
                Ok(())
            }
        }
    }

    fn in_extension(&self, key: &str, name: &str) -> Result<Target<'r>, ScimError> {
        let container = Container::Extension(key.to_owned());
        let display = format!("{key}:{name}");
        match name.parse::<PatchPath>() {
            Ok(PatchPath::Attr(a)) if a.uri.is_none() => {
                self.resolve_in(container, &a.name, a.sub_attr.as_deref(), None, &display)
            }
            Ok(PatchPath::Value(vp)) if vp.attr.uri.is_none() && vp.attr.sub_attr.is_none() => self
                .resolve_in(
                    container,
                    &vp.attr.name,
                    vp.sub_attr.as_deref(),
                    Some(vp.filter),
                    &display,
                ),
            _ => Ok(self.unknown(container, name)),
        }
    }

    /// `add`/`replace` of a whole attribute (RFC 7644 §3.5.2.1, §3.5.2.3).
    fn set_attr(
        &mut self,
        op: Op,
        slot: &Slot<'r>,
        value: Value,
        display: &str,
    ) -> Result<(), ScimError> {
        let Some(attr) = slot.attr else {
            return self.set_unknown(op, slot, value);
        };
        let value = dialect::bare_value(attr, value);
        if attr.multi_valued {
            let incoming = match check_value(attr, value, display)? {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            let map = self.container_mut(&slot.container)?;
            let (mut items, touched) = match op {
                // "the attribute and all values are replaced" (RFC 7644 §3.5.2.3).
                Op::Replace => {
                    let n = incoming.len();
                    (incoming, (0..n).collect())
                }
                // "a new value is added", and a value already there is a no-op (§3.5.2.1).
                _ => {
                    let mut items = take_items(map, &slot.name);
                    let mut touched = Vec::new();
                    for item in incoming {
                        if !items.contains(&item) {
                            items.push(item);
                            touched.push(items.len() - 1);
                        }
                    }
                    (items, touched)
                }
            };
            fix_primary(attr, &mut items, &touched);
            put_items(map, &slot.name, items);
        } else if attr.ty == AttrType::Complex {
            // RFC 7644 §3.5.2.3: "Sub-attributes that are not specified in the "value"
            // parameter are left unchanged." `add` does the same.
            let nulls = null_keys(Some(attr), &value);
            let incoming = check_value(attr, value, display)?;
            let map = self.container_mut(&slot.container)?;
            let mut object = match map.remove(&slot.name) {
                Some(Value::Object(o)) => o,
                _ => Map::new(),
            };
            merge(&mut object, incoming, &nulls);
            if !object.is_empty() {
                map.insert(slot.name.clone(), Value::Object(object));
            }
        } else {
            let checked = check_value(attr, value, display)?;
            let map = self.container_mut(&slot.container)?;
            match checked {
                Some(v) => {
                    map.insert(slot.name.clone(), v);
                }
                None => {
                    map.remove(&slot.name);
                }
            }
        }
        Ok(())
    }

    /// An unknown attribute is stored as sent (DESIGN 4); `add` appends to a list and merges
    /// into an object, the way it would for a registered one.
    fn set_unknown(&mut self, op: Op, slot: &Slot<'r>, value: Value) -> Result<(), ScimError> {
        let map = self.container_mut(&slot.container)?;
        match (op, map.get_mut(&slot.name), value) {
            (Op::Add, Some(Value::Array(items)), value) => {
                let incoming = match value {
                    Value::Array(v) => v,
                    one => vec![one],
                };
                for item in incoming {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
            }
            (_, Some(Value::Object(object)), Value::Object(fields)) => {
                let nulls = null_keys(None, &Value::Object(fields.clone()));
                merge(object, Some(Value::Object(fields)), &nulls);
            }
            (_, _, value) => {
                map.insert(slot.name.clone(), value);
            }
        }
        Ok(())
    }

    /// `remove` of a whole attribute (RFC 7644 §3.5.2.2); absent is a no-op. Not in the RFC:
    /// with a value list on a multi-valued attribute, only those values go.
    fn remove_attr(
        &mut self,
        slot: &Slot<'r>,
        listed: Option<Value>,
        display: &str,
    ) -> Result<(), ScimError> {
        let listed = match (listed, slot.attr) {
            (None, _) => None,
            (Some(v), Some(attr)) if attr.multi_valued => match check_value(attr, v, display)? {
                Some(Value::Array(items)) => Some(items),
                _ => None,
            },
            (Some(_), Some(_)) => None,
            (Some(Value::Array(items)), None) => Some(items),
            (Some(one), None) => Some(vec![one]),
        };
        let Some(map) = self.existing_container_mut(&slot.container) else {
            return Ok(());
        };
        match listed {
            Some(listed) if map.get(&slot.name).is_some_and(Value::is_array) => {
                let mut items = take_items(map, &slot.name);
                items.retain(|item| !listed.iter().any(|l| same_value(item, l)));
                put_items(map, &slot.name, items);
            }
            _ => {
                map.remove(&slot.name);
            }
        }
        Ok(())
    }

    /// One sub-attribute of a single-valued complex attribute (`name.givenName`).
    fn sub_op(
        &mut self,
        op: Op,
        slot: &Slot<'r>,
        sub: &Sub<'r>,
        value: Option<Value>,
        display: &str,
    ) -> Result<(), ScimError> {
        let value = match (op, value, sub.attr) {
            (Op::Remove, _, _) | (_, None, _) => None,
            (_, Some(v), Some(def)) => check_value(def, v, display)?,
            (_, Some(v), None) => Some(v).filter(|v| !v.is_null()),
        };
        match value {
            None => {
                if let Some(map) = self.existing_container_mut(&slot.container)
                    && let Some(Value::Object(object)) = map.get_mut(&slot.name)
                {
                    remove_ci(object, &sub.name);
                    if object.is_empty() {
                        map.remove(&slot.name);
                    }
                }
            }
            Some(v) => {
                let map = self.container_mut(&slot.container)?;
                let entry = map
                    .entry(slot.name.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(object) = entry else {
                    return Err(invalid_path(format!(
                        "`{display}`: `{}` is not a complex attribute",
                        slot.name
                    )));
                };
                set_ci(object, &sub.name, v);
            }
        }
        Ok(())
    }

    /// Elements of a multi-valued attribute (RFC 7644 §3.5.2: `valuePath`).
    fn elements_op(
        &mut self,
        op: Op,
        slot: &Slot<'r>,
        filter: Option<&ValFilter>,
        sub: Option<&Sub<'r>>,
        value: Option<Value>,
        display: &str,
    ) -> Result<(), ScimError> {
        let value = match (op, value, sub.and_then(|s| s.attr)) {
            (Op::Remove, _, _) | (_, None, _) => None,
            (_, Some(v), Some(def)) => check_value(def, v, display)?,
            (_, Some(v), None) => Some(v).filter(|v| !v.is_null()),
        };
        let attr = slot.attr;
        let map = match value {
            Some(_) => self.container_mut(&slot.container)?,
            None => match self.existing_container_mut(&slot.container) {
                Some(map) => map,
                None => return Ok(()),
            },
        };
        let mut items = take_items(map, &slot.name);
        let matched: Vec<usize> = (0..items.len())
            .filter(|&i| filter.is_none_or(|f| value_filter::matches(f, &items[i], attr)))
            .collect();
        let mut touched = Vec::new();
        match value {
            // RFC 7644 §3.5.2.2: matched values are removed, or their sub-attribute; a
            // filter that matches nothing removes nothing.
            None => match sub {
                Some(sub) => {
                    for &i in &matched {
                        if let Value::Object(object) = &mut items[i] {
                            remove_ci(object, &sub.name);
                        }
                    }
                }
                None => {
                    let mut i = 0;
                    items.retain(|_| {
                        let keep = matched.binary_search(&i).is_err();
                        i += 1;
                        keep
                    });
                }
            },
            Some(value) => {
                let targets = if matched.is_empty() {
                    // DESIGN 5: Entra adds or replaces through a filter that matches nothing
                    // and expects the element to be created, where RFC 7644 §3.5.2.3 answers
                    // 400 noTarget. Only a filter that describes an element can create one.
                    let seed = match filter {
                        None => Map::new(),
                        Some(f) => value_filter::seed(f).ok_or_else(|| {
                            no_target(format!(
                                "`{display}` matches no value, and its filter does not describe \
                                 one to create (RFC 7644 §3.5.2.3)"
                            ))
                        })?,
                    };
                    items.push(Value::Object(seed));
                    vec![items.len() - 1]
                } else {
                    matched
                };
                for &i in &targets {
                    write_element(attr, &mut items[i], sub, &value, display)?;
                }
                touched = targets;
            }
        }
        let (mut items, touched) = canonical_items(attr, items, &touched, display)?;
        if let Some(attr) = attr {
            fix_primary(attr, &mut items, &touched);
        }
        put_items(map, &slot.name, items);
        Ok(())
    }

    /// A Group's `members` (DESIGN 7: a table, never a JSON array). Values are checked here;
    /// whether the ids exist is the caller's to check.
    fn members_op(
        &mut self,
        op: Op,
        filter: Option<ValFilter>,
        sub: Option<String>,
        value: Option<Value>,
        display: &str,
    ) -> Result<(), ScimError> {
        match (op, filter, sub) {
            (_, Some(_), Some(sub)) => {
                if sub.eq_ignore_ascii_case("display") {
                    // scimbus keeps membership only; a member's display is not stored.
                    Ok(())
                } else {
                    Err(mutability(format!(
                        "`{display}`: a member's {sub} is immutable (RFC 7644 §3.5.2)"
                    )))
                }
            }
            (Op::Remove, None, _) => {
                match value {
                    None => self.members.remove_all(),
                    // DESIGN 5: Entra removes members with `path: members` and a value list:
                    // those members only.
                    Some(v) => {
                        let ids = self.member_refs(v, display)?;
                        self.members
                            .remove_ids(ids.into_iter().map(|m| m.value).collect());
                    }
                }
                Ok(())
            }
            (Op::Remove, Some(filter), None) => {
                let ids = filter_ids(&filter, display)?;
                self.members.remove_ids(ids);
                Ok(())
            }
            (Op::Add, None, None) => {
                let refs = self.member_refs(value.unwrap_or(Value::Null), display)?;
                self.members.add_members(refs);
                Ok(())
            }
            (Op::Replace, None, None) => {
                let refs = self.member_refs(value.unwrap_or(Value::Null), display)?;
                self.members.replace_all(refs);
                Ok(())
            }
            // `add`/`replace` on members[value eq "id"]: the member the filter names
            // (DESIGN 5: a filter that matches nothing creates the element).
            (Op::Add | Op::Replace, Some(filter), None) => {
                let ids = filter_ids(&filter, display)?;
                let given = value.as_ref().and_then(Value::as_object);
                if let Some(named) = given
                    .and_then(|v| get_ci(v, "value"))
                    .and_then(Value::as_str)
                    && !ids.iter().any(|id| id == named)
                {
                    return Err(mutability(format!(
                        "`{display}`: a member's value is immutable (RFC 7644 §3.5.2)"
                    )));
                }
                let member_type = member_type(given.and_then(|v| get_ci(v, "type")))?;
                self.members.add_members(
                    ids.into_iter()
                        .map(|value| MemberRef {
                            value,
                            member_type: member_type.clone(),
                        })
                        .collect(),
                );
                Ok(())
            }
            (_, None, Some(_)) => Err(invalid_path(format!(
                "`{display}`: name members with a filter, as in members[value eq \"id\"]"
            ))),
        }
    }

    fn member_refs(&self, value: Value, display: &str) -> Result<Vec<MemberRef>, ScimError> {
        let Some(attr) = self.core.attribute("members") else {
            return Err(ScimError::new(500, None, "the Group schema has no members"));
        };
        let items = match check_value(attr, value, display)? {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        items
            .iter()
            .map(|item| {
                let value = item
                    .get("value")
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        ScimError::invalid_value(format!(
                            "`{display}`: every member needs a `value`, the member's id"
                        ))
                    })?;
                Ok(MemberRef {
                    value: value.to_owned(),
                    member_type: member_type(item.get("type"))?,
                })
            })
            .collect()
    }

    /// Canonicalises the result like a PUT body, keeps `schemas` in step with the extensions
    /// the document holds, and checks `immutable` attributes (RFC 7644 §3.5.2).
    fn finish(mut self, stored: &Map<String, Value>) -> Result<PatchOutcome, ScimError> {
        let emptied: Vec<String> = self
            .doc
            .iter()
            .filter(|(k, v)| {
                is_urn(k) && v.as_object().is_some_and(Map::is_empty) && stored.get(*k) != Some(*v)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in emptied {
            self.doc.remove(&key);
        }
        let mut schemas: Vec<String> = match remove_ci(&mut self.doc, "schemas") {
            Some(Value::Array(items)) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let core_urn = &self.resource_type.schema;
        if !schemas.iter().any(|s| s.eq_ignore_ascii_case(core_urn)) {
            schemas.insert(0, core_urn.clone());
        }
        // RFC 7643 §3: `schemas` names the extensions the resource holds. One this PATCH
        // removed leaves it; one it created joins it.
        for key in stored.keys().filter(|k| is_urn(k)) {
            if key_ci(&self.doc, key).is_none() {
                schemas.retain(|s| !s.eq_ignore_ascii_case(key));
            }
        }
        for key in self.doc.keys().filter(|k| is_urn(k)) {
            if !schemas.iter().any(|s| s.eq_ignore_ascii_case(key)) {
                schemas.push(key.clone());
            }
        }
        self.doc.insert(
            "schemas".to_owned(),
            Value::Array(schemas.into_iter().map(Value::String).collect()),
        );
        let document =
            validate_resource(self.registry, self.resource_type, Value::Object(self.doc))?;
        check_immutable(
            self.registry,
            self.resource_type,
            self.core,
            stored,
            &document,
        )?;
        Ok(PatchOutcome {
            document,
            members: self.members.finish(),
        })
    }

    fn is_group(&self) -> bool {
        self.resource_type.schema.eq_ignore_ascii_case(GROUP_URN)
    }

    /// The registered extension of this resource type whose URN is `urn`.
    fn extension(&self, urn: &str) -> Option<&'r Schema> {
        self.resource_type
            .extensions
            .iter()
            .find(|e| e.schema.eq_ignore_ascii_case(urn))
            .and_then(|e| self.registry.schema(&e.schema))
    }

    /// `urn` as the document already spells it, as a key or in `schemas`.
    fn known_urn(&self, urn: &str) -> Option<String> {
        if let Some(key) = key_ci(&self.doc, urn) {
            return Some(key.clone());
        }
        get_ci(&self.doc, "schemas")
            .and_then(Value::as_array)?
            .iter()
            .filter_map(Value::as_str)
            .find(|s| s.eq_ignore_ascii_case(urn))
            .map(str::to_owned)
    }

    /// The container's map, created if it is an extension not yet in the document (an
    /// extension left empty is dropped in `finish`).
    fn container_mut(
        &mut self,
        container: &Container,
    ) -> Result<&mut Map<String, Value>, ScimError> {
        match container {
            Container::Core => Ok(&mut self.doc),
            Container::Extension(key) => {
                let key = key_ci(&self.doc, key)
                    .cloned()
                    .unwrap_or_else(|| key.clone());
                match self
                    .doc
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
                {
                    Value::Object(map) => Ok(map),
                    _ => Err(invalid_path(format!(
                        "`{key}` holds a value, not an extension object"
                    ))),
                }
            }
        }
    }

    fn existing_container_mut(&mut self, container: &Container) -> Option<&mut Map<String, Value>> {
        match container {
            Container::Core => Some(&mut self.doc),
            Container::Extension(key) => {
                let key = key_ci(&self.doc, key)?.clone();
                self.doc.get_mut(&key).and_then(Value::as_object_mut)
            }
        }
    }
}

/// Writes `value` into one element: its sub-attribute `sub`, or, without `sub`, the
/// sub-attributes of `value` (merged, like a complex attribute, RFC 7644 §3.5.2.3).
fn write_element(
    attr: Option<&Attribute>,
    element: &mut Value,
    sub: Option<&Sub<'_>>,
    value: &Value,
    display: &str,
) -> Result<(), ScimError> {
    if let Some(sub) = sub {
        let Value::Object(object) = element else {
            return Err(invalid_path(format!(
                "`{display}`: the values are not complex"
            )));
        };
        set_ci(object, &sub.name, value.clone());
        return Ok(());
    }
    let value = value.clone();
    if !value.is_object() {
        if attr.is_some() {
            return Err(ScimError::invalid_value(format!(
                "`{display}` must be an object"
            )));
        }
        *element = value;
        return Ok(());
    }
    let nulls = null_keys(attr, &value);
    let incoming = match attr {
        Some(attr) => match check_value(attr, Value::Array(vec![value]), display)? {
            Some(Value::Array(mut items)) => items.pop(),
            _ => None,
        },
        None => Some(value),
    };
    match element {
        Value::Object(object) => merge(object, incoming, &nulls),
        other => *other = incoming.unwrap_or(Value::Null),
    }
    Ok(())
}

/// Re-checks a multi-valued attribute's elements and drops those left empty (RFC 7643 §2.5),
/// following the indices of the elements the operation wrote.
fn canonical_items(
    attr: Option<&Attribute>,
    items: Vec<Value>,
    touched: &[usize],
    display: &str,
) -> Result<(Vec<Value>, Vec<usize>), ScimError> {
    let mut out = Vec::with_capacity(items.len());
    let mut moved = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let kept = match attr {
            Some(attr) => match check_value(attr, Value::Array(vec![item]), display)? {
                Some(Value::Array(mut v)) => v.pop(),
                _ => None,
            },
            None => {
                Some(item).filter(|v| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()))
            }
        };
        if let Some(v) = kept {
            if touched.contains(&i) {
                moved.push(out.len());
            }
            out.push(v);
        }
    }
    Ok((out, moved))
}

/// RFC 7643 §2.4: "The primary attribute value "true" MUST appear no more than once." The
/// last element this operation wrote with `primary: true` keeps it; the others lose it.
fn fix_primary(attr: &Attribute, items: &mut [Value], touched: &[usize]) {
    if attr.sub_attribute("primary").is_none() {
        return;
    }
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    let Some(&winner) = touched
        .iter()
        .rev()
        .find(|&&i| items.get(i).is_some_and(is_primary))
    else {
        return;
    };
    for (i, item) in items.iter_mut().enumerate() {
        if i != winner
            && is_primary(item)
            && let Value::Object(object) = item
        {
            object.insert("primary".to_owned(), Value::Bool(false));
        }
    }
}

/// The checked sub-attributes of `incoming` go into `object`; those sent as null leave it.
fn merge(object: &mut Map<String, Value>, incoming: Option<Value>, nulls: &[String]) {
    if let Some(Value::Object(fields)) = incoming {
        for (k, v) in fields {
            set_ci(object, &k, v);
        }
    }
    for k in nulls {
        remove_ci(object, k);
    }
}

/// Sub-attributes sent as null (RFC 7643 §2.5: unassigned), in canonical spelling.
fn null_keys(attr: Option<&Attribute>, value: &Value) -> Vec<String> {
    let Value::Object(fields) = value else {
        return Vec::new();
    };
    fields
        .iter()
        .filter(|(_, v)| v.is_null())
        .map(|(k, _)| {
            attr.and_then(|a| a.sub_attribute(k))
                .map_or_else(|| k.clone(), |s| s.name.clone())
        })
        .collect()
}

fn take_items(map: &mut Map<String, Value>, name: &str) -> Vec<Value> {
    match map.remove(name) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => vec![other],
    }
}

/// An empty list is unassigned (RFC 7643 §2.5): the attribute goes.
fn put_items(map: &mut Map<String, Value>, name: &str, items: Vec<Value>) {
    if !items.is_empty() {
        map.insert(name.to_owned(), Value::Array(items));
    }
}

/// Whether a stored element is the one a `remove` value list names: equal, or with the
/// same `value`.
fn same_value(item: &Value, listed: &Value) -> bool {
    if item == listed {
        return true;
    }
    match (item, listed) {
        (Value::Object(a), Value::Object(b)) => match (get_ci(a, "value"), get_ci(b, "value")) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        _ => false,
    }
}

fn filter_ids(filter: &ValFilter, display: &str) -> Result<Vec<String>, ScimError> {
    value_filter::member_ids(filter).ok_or_else(|| {
        ScimError::invalid_filter(format!(
            "`{display}`: members are selected by id only, as in members[value eq \"id\"]"
        ))
    })
}

fn member_type(value: Option<&Value>) -> Result<Option<String>, ScimError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("User") => Ok(Some("User".to_owned())),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("Group") => Ok(Some("Group".to_owned())),
        Some(_) => Err(ScimError::invalid_value(
            "a member's `type` is `User` or `Group`",
        )),
    }
}

/// RFC 7644 §3.5.2: "a client MUST NOT modify an attribute that has mutability "immutable".
/// However, a client MAY "add" a value to an "immutable" attribute if the attribute had no
/// previous value." Checked on the outcome, top-level and extension attributes and the
/// sub-attributes of single-valued complex ones; `members` is checked per operation.
fn check_immutable(
    registry: &Registry,
    resource_type: &ResourceType,
    core: &Schema,
    stored: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Result<(), ScimError> {
    let mut scopes: Vec<(Option<&str>, &[Attribute])> = vec![
        (None, registry.common.as_slice()),
        (None, core.attributes.as_slice()),
    ];
    for ext in &resource_type.extensions {
        if let Some(schema) = registry.schema(&ext.schema) {
            scopes.push((Some(schema.id.as_str()), &schema.attributes));
        }
    }
    for (key, attrs) in scopes {
        let (old, now) = match key {
            None => (Some(stored), Some(new)),
            Some(key) => (
                get_ci(stored, key).and_then(Value::as_object),
                get_ci(new, key).and_then(Value::as_object),
            ),
        };
        for attr in attrs {
            let before = old.and_then(|m| get_ci(m, &attr.name));
            let after = now.and_then(|m| get_ci(m, &attr.name));
            if attr.mutability == Mutability::Immutable {
                if changed(attr.multi_valued, before, after) {
                    return Err(mutability(format!(
                        "`{}` is immutable (RFC 7643 §2.2)",
                        attr.name
                    )));
                }
            } else if attr.ty == AttrType::Complex && !attr.multi_valued {
                for sub in attr
                    .sub_attributes
                    .iter()
                    .filter(|s| s.mutability == Mutability::Immutable)
                {
                    let b = before
                        .and_then(Value::as_object)
                        .and_then(|m| get_ci(m, &sub.name));
                    let a = after
                        .and_then(Value::as_object)
                        .and_then(|m| get_ci(m, &sub.name));
                    if changed(sub.multi_valued, b, a) {
                        return Err(mutability(format!(
                            "`{}.{}` is immutable (RFC 7643 §2.2)",
                            attr.name, sub.name
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether an immutable value was altered: a single value changed or removed, or a value
/// of a multi-valued one gone. Adding where there was nothing is allowed.
fn changed(multi_valued: bool, before: Option<&Value>, after: Option<&Value>) -> bool {
    let Some(before) = before else {
        return false;
    };
    if !multi_valued {
        return after != Some(before);
    }
    let kept = after.and_then(Value::as_array);
    match before {
        Value::Array(old) => old.iter().any(|v| !kept.is_some_and(|k| k.contains(v))),
        other => !kept.is_some_and(|k| k.contains(other)),
    }
}
