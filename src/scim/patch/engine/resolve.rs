//! Phase 1 of a PATCH operation: resolve its path (or a path-less value's keys) to a
//! target: an extension object, an attribute, elements of a multi-valued attribute, a
//! Group's members, or something read-only or discarded.

use super::*;

impl<'r> Engine<'r> {
    pub(super) fn resolve_path(
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
    pub(super) fn container_of(
        &self,
        uri: Option<&str>,
        name: &str,
        whole_object: bool,
    ) -> Resolved<'r> {
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

    pub(super) fn resolve_in(
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
    pub(super) fn unknown(&self, container: Container, name: &str) -> Target<'r> {
        Target::Attr {
            slot: self.unknown_slot(container, name),
            sub: None,
        }
    }

    pub(super) fn unknown_slot(&self, container: Container, name: &str) -> Slot<'r> {
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

    pub(super) fn in_extension(&self, key: &str, name: &str) -> Result<Target<'r>, ScimError> {
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
}
