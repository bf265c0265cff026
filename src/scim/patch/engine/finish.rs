//! Phase 3: canonicalise the patched document like a PUT body and refuse changes to
//! `immutable` attributes (RFC 7643 §2.2).

use super::*;

impl<'r> Engine<'r> {
    /// Canonicalises the result like a PUT body, keeps `schemas` in step with the extensions
    /// the document holds, and checks `immutable` attributes (RFC 7644 §3.5.2).
    pub(super) fn finish(mut self, stored: &Map<String, Value>) -> Result<PatchOutcome, ScimError> {
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
}

/// RFC 7644 §3.5.2: "a client MUST NOT modify an attribute that has mutability "immutable".
/// However, a client MAY "add" a value to an "immutable" attribute if the attribute had no
/// previous value." Checked on the outcome, top-level and extension attributes and the
/// sub-attributes of single-valued complex ones; `members` is checked per operation.
pub(super) fn check_immutable(
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
pub(super) fn changed(multi_valued: bool, before: Option<&Value>, after: Option<&Value>) -> bool {
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
