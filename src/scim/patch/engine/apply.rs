//! Phase 2: apply an operation to its resolved target in the working copy: whole
//! extensions, attributes, sub-attributes and filtered elements of multi-valued
//! attributes (RFC 7644 §3.5.2.1–3).

use super::*;

impl<'r> Engine<'r> {
    pub(super) fn execute(
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
    pub(super) fn extension_op(
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

    /// `add`/`replace` of a whole attribute (RFC 7644 §3.5.2.1, §3.5.2.3).
    pub(super) fn set_attr(
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
    pub(super) fn set_unknown(
        &mut self,
        op: Op,
        slot: &Slot<'r>,
        value: Value,
    ) -> Result<(), ScimError> {
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
    pub(super) fn remove_attr(
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
    pub(super) fn sub_op(
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
    pub(super) fn elements_op(
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
}

/// Writes `value` into one element: its sub-attribute `sub`, or, without `sub`, the
/// sub-attributes of `value` (merged, like a complex attribute, RFC 7644 §3.5.2.3).
pub(super) fn write_element(
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
pub(super) fn canonical_items(
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
pub(super) fn fix_primary(attr: &Attribute, items: &mut [Value], touched: &[usize]) {
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
pub(super) fn merge(object: &mut Map<String, Value>, incoming: Option<Value>, nulls: &[String]) {
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
pub(super) fn null_keys(attr: Option<&Attribute>, value: &Value) -> Vec<String> {
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

pub(super) fn take_items(map: &mut Map<String, Value>, name: &str) -> Vec<Value> {
    match map.remove(name) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => vec![other],
    }
}

/// An empty list is unassigned (RFC 7643 §2.5): the attribute goes.
pub(super) fn put_items(map: &mut Map<String, Value>, name: &str, items: Vec<Value>) {
    if !items.is_empty() {
        map.insert(name.to_owned(), Value::Array(items));
    }
}

/// Whether a stored element is the one a `remove` value list names: equal, or with the
/// same `value`.
pub(super) fn same_value(item: &Value, listed: &Value) -> bool {
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
