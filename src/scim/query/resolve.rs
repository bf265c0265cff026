//! From scim_v2's parsed filter to the typed [`Filter`]: attribute names are resolved
//! case-insensitively against the registry (URN-qualified or not), literals are checked
//! against the attribute's type, and anything the registry does not know is refused with
//! 400 `invalidFilter` (a filter never reaches SQL with a name it did not define).

use std::str::FromStr;

use scim_v2::filter::{
    AttrExp, AttrPath, CompValue, CompareOp, Filter as Parsed, PatchPath, ValFilter,
};
use scim_v2::models::errors::ScimType;

use super::ast::{Attr, CmpOp, Filter, Literal, Op, Relation, Sort, SortOrder};
use super::normalize::normalize;
use crate::scim::error::ScimError;
use crate::scim::schema::{AttrType, Attribute, Registry, ResourceType};
use crate::scim::time;

fn bad(detail: impl Into<String>) -> ScimError {
    ScimError::invalid_filter(detail)
}

/// Longest filter accepted, in bytes (the parser also bounds depth and terms).
pub const MAX_FILTER_BYTES: usize = 16 * 1024;

/// Parses and types a filter for `resource_type`.
pub fn parse_filter(
    registry: &Registry,
    resource_type: &ResourceType,
    raw: &str,
) -> Result<Filter, ScimError> {
    if raw.len() > MAX_FILTER_BYTES {
        return Err(bad(format!(
            "the filter is longer than {MAX_FILTER_BYTES} bytes"
        )));
    }
    let parsed = Parsed::from_str(&normalize(raw))
        .map_err(|e| bad(format!("the filter does not parse: {e}")))?;
    Resolver {
        registry,
        resource_type,
    }
    .filter(&parsed)
}

/// `sortOrder` (RFC 7644 §3.4.2.3): "ascending" (also when absent) or "descending", the
/// two values the RFC allows; anything else is refused with 400 `invalidValue`, with or
/// without `sortBy`.
pub fn parse_sort_order(sort_order: Option<&str>) -> Result<SortOrder, ScimError> {
    match sort_order {
        None | Some("ascending") => Ok(SortOrder::Ascending),
        Some("descending") => Ok(SortOrder::Descending),
        Some(o) => Err(ScimError::new(
            400,
            Some(ScimType::InvalidValue),
            format!("sortOrder `{o}` is neither `ascending` nor `descending`"),
        )),
    }
}

/// Parses `sortBy`/`sortOrder` (RFC 7644 §3.4.2.3): a singular attribute the registry knows.
pub fn parse_sort(
    registry: &Registry,
    resource_type: &ResourceType,
    sort_by: &str,
    sort_order: Option<&str>,
) -> Result<Sort, ScimError> {
    let invalid = |d: String| ScimError::new(400, Some(ScimType::InvalidValue), d);
    let order = parse_sort_order(sort_order)?;
    let path = match PatchPath::from_str(sort_by.trim()) {
        Ok(PatchPath::Attr(path)) => path,
        _ => {
            return Err(invalid(format!(
                "sortBy `{sort_by}` is not an attribute path"
            )));
        }
    };
    let resolver = Resolver {
        registry,
        resource_type,
    };
    match resolver.locate(&path) {
        Ok(Located::Single(attr)) if attr.ty != AttrType::Complex => Ok(Sort { attr, order }),
        _ => Err(invalid(format!(
            "sortBy `{sort_by}` is not a singular attribute this server can sort on"
        ))),
    }
}

struct Resolver<'a> {
    registry: &'a Registry,
    resource_type: &'a ResourceType,
}

/// What an attribute path names.
enum Located {
    Single(Attr),
    /// A multi-valued attribute in the document; `sub` is the sub-attribute named, if any.
    Multi {
        path: Vec<String>,
        def: Attribute,
        sub: Option<String>,
    },
    Related {
        relation: Relation,
        def: Attribute,
        sub: Option<String>,
    },
}

fn attr(path: Vec<String>, def: &Attribute) -> Attr {
    Attr {
        path,
        ty: def.ty,
        case_exact: def.case_exact,
    }
}

impl Resolver<'_> {
    fn locate(&self, path: &AttrPath) -> Result<Located, ScimError> {
        let core = self
            .registry
            .schema(&self.resource_type.schema)
            .ok_or_else(|| bad("resource type without a schema"))?;
        let (schema_prefix, def) = match path.uri.as_deref() {
            None => (
                None,
                self.registry
                    .common_attribute(&path.name)
                    .or_else(|| core.attribute(&path.name)),
            ),
            Some(uri) if uri.eq_ignore_ascii_case(&core.id) => (None, core.attribute(&path.name)),
            Some(uri) => {
                let ext = self
                    .resource_type
                    .extensions
                    .iter()
                    .find(|e| e.schema.eq_ignore_ascii_case(uri))
                    .and_then(|e| self.registry.schema(&e.schema))
                    .ok_or_else(|| bad(format!("`{uri}` is not a schema of this resource type")))?;
                (Some(ext.id.clone()), ext.attribute(&path.name))
            }
        };
        let def = def.ok_or_else(|| {
            bad(format!(
                "`{path}` is not an attribute of this resource type"
            ))
        })?;
        let mut base: Vec<String> = schema_prefix.into_iter().collect();
        base.push(def.name.clone());
        let sub = match path.sub_attr.as_deref() {
            None => None,
            Some(s) => Some(
                def.sub_attribute(s)
                    .ok_or_else(|| {
                        bad(format!(
                            "`{path}` is not an attribute of this resource type"
                        ))
                    })?
                    .name
                    .clone(),
            ),
        };
        if def.name == "meta" {
            return match sub.as_deref() {
                Some(s @ ("created" | "lastModified" | "resourceType")) => {
                    let sub_def = def.sub_attribute(s).ok_or_else(|| bad("meta"))?;
                    Ok(Located::Single(attr(
                        vec!["meta".into(), s.into()],
                        sub_def,
                    )))
                }
                _ => Err(bad(format!("`{path}` cannot be filtered on"))),
            };
        }
        let relation = match (self.resource_type.name.as_str(), def.name.as_str()) {
            ("Group", "members") => Some(Relation::Members),
            ("User", "groups") => Some(Relation::Groups),
            _ => None,
        };
        if let Some(relation) = relation {
            return Ok(Located::Related {
                relation,
                def: def.clone(),
                sub,
            });
        }
        if def.multi_valued {
            return Ok(Located::Multi {
                path: base,
                def: def.clone(),
                sub,
            });
        }
        match sub {
            Some(s) => {
                let sub_def = def.sub_attribute(&s).ok_or_else(|| bad("sub-attribute"))?;
                base.push(s);
                Ok(Located::Single(attr(base, sub_def)))
            }
            None => Ok(Located::Single(attr(base, def))),
        }
    }

    fn filter(&self, parsed: &Parsed) -> Result<Filter, ScimError> {
        Ok(match parsed {
            Parsed::And(items) => Filter::And(
                items
                    .as_slice()
                    .iter()
                    .map(|f| self.filter(f))
                    .collect::<Result<_, _>>()?,
            ),
            Parsed::Or(items) => Filter::Or(
                items
                    .as_slice()
                    .iter()
                    .map(|f| self.filter(f))
                    .collect::<Result<_, _>>()?,
            ),
            Parsed::Not(inner) => Filter::Not(Box::new(self.filter(inner)?)),
            Parsed::Attr(exp) => self.attr_exp(exp)?,
            Parsed::ValuePath(vp) => {
                let (inner_defs, wrap) = match self.locate(&vp.attr)? {
                    Located::Multi {
                        path,
                        def,
                        sub: None,
                    } => (def.sub_attributes.clone(), Wrap::Any(path)),
                    Located::Related {
                        relation,
                        def,
                        sub: None,
                    } => (def.sub_attributes.clone(), Wrap::Related(relation)),
                    _ => {
                        return Err(bad(format!(
                            "`{}[…]` needs a multi-valued complex attribute",
                            vp.attr
                        )));
                    }
                };
                let inner = element_filter(&inner_defs, &vp.filter)?;
                wrap.apply(inner)
            }
        })
    }

    fn attr_exp(&self, exp: &AttrExp) -> Result<Filter, ScimError> {
        let path = match exp {
            AttrExp::Present(p) | AttrExp::Comparison(p, _, _) => p,
        };
        match self.locate(path)? {
            Located::Single(attr) => test(attr, exp),
            Located::Multi { path: at, def, sub } => {
                let element = element_attr(&def, sub.as_deref(), &at)?;
                let inner = match (exp, element) {
                    (AttrExp::Present(_), None) => Filter::True,
                    (_, Some(element)) => test(element, exp)?,
                    (_, None) => return Err(bad(format!("`{path}` has no `value` to compare"))),
                };
                Ok(Wrap::Any(at).apply(inner))
            }
            Located::Related { relation, def, sub } => {
                let element = element_attr(&def, sub.as_deref(), &[])?;
                let inner = match (exp, element) {
                    (AttrExp::Present(_), None) => Filter::True,
                    (_, Some(element)) => test(element, exp)?,
                    (_, None) => return Err(bad(format!("`{path}` has no `value` to compare"))),
                };
                Ok(Wrap::Related(relation).apply(inner))
            }
        }
    }
}

enum Wrap {
    Any(Vec<String>),
    Related(Relation),
}

impl Wrap {
    fn apply(self, inner: Filter) -> Filter {
        match self {
            Wrap::Any(path) => Filter::Any {
                path,
                filter: Box::new(inner),
            },
            Wrap::Related(relation) => Filter::Related {
                relation,
                filter: Box::new(inner),
            },
        }
    }
}

/// The element attribute a comparison on a multi-valued attribute targets: the named
/// sub-attribute, or `value` (RFC 7644 §3.4.2.2: a complex multi-valued attribute without
/// a sub-attribute compares its `value`), or, for a multi-valued simple attribute, the
/// element itself (an empty path). `None` for a bare `pr` on a complex one.
fn element_attr(
    def: &Attribute,
    sub: Option<&str>,
    _at: &[String],
) -> Result<Option<Attr>, ScimError> {
    let name = match sub {
        Some(s) => s,
        None if def.sub_attribute("value").is_some() => "value",
        None if def.ty != AttrType::Complex => return Ok(Some(attr(Vec::new(), def))),
        None => return Ok(None),
    };
    let sub_def = def
        .sub_attribute(name)
        .ok_or_else(|| bad(format!("`{}` has no sub-attribute `{name}`", def.name)))?;
    Ok(Some(attr(vec![sub_def.name.clone()], sub_def)))
}

fn element_filter(defs: &[Attribute], parsed: &ValFilter) -> Result<Filter, ScimError> {
    Ok(match parsed {
        ValFilter::And(items) => Filter::And(
            items
                .as_slice()
                .iter()
                .map(|f| element_filter(defs, f))
                .collect::<Result<_, _>>()?,
        ),
        ValFilter::Or(items) => Filter::Or(
            items
                .as_slice()
                .iter()
                .map(|f| element_filter(defs, f))
                .collect::<Result<_, _>>()?,
        ),
        ValFilter::Not(inner) => Filter::Not(Box::new(element_filter(defs, inner)?)),
        ValFilter::Attr(exp) => {
            let path = match exp {
                AttrExp::Present(p) | AttrExp::Comparison(p, _, _) => p,
            };
            if path.uri.is_some() || path.sub_attr.is_some() {
                return Err(bad(format!(
                    "`{path}` inside brackets must be a sub-attribute"
                )));
            }
            let def = defs
                .iter()
                .find(|d| d.name.eq_ignore_ascii_case(&path.name))
                .ok_or_else(|| bad(format!("`{path}` is not a sub-attribute here")))?;
            test(attr(vec![def.name.clone()], def), exp)?
        }
    })
}

/// Types one attribute expression.
fn test(attr: Attr, exp: &AttrExp) -> Result<Filter, ScimError> {
    let (op, value) = match exp {
        AttrExp::Present(_) => return Ok(Filter::Test(attr, Op::Present)),
        AttrExp::Comparison(_, op, value) => (op, value),
    };
    let op = match op {
        CompareOp::Eq => CmpOp::Eq,
        CompareOp::Ne => CmpOp::Ne,
        CompareOp::Co => CmpOp::Co,
        CompareOp::Sw => CmpOp::Sw,
        CompareOp::Ew => CmpOp::Ew,
        CompareOp::Gt => CmpOp::Gt,
        CompareOp::Ge => CmpOp::Ge,
        CompareOp::Lt => CmpOp::Lt,
        CompareOp::Le => CmpOp::Le,
    };
    let name = attr.name();
    if *value == CompValue::Null {
        // `x eq null` asks for absence, `x ne null` for presence.
        return match op {
            CmpOp::Eq => Ok(Filter::Not(Box::new(Filter::Test(attr, Op::Present)))),
            CmpOp::Ne => Ok(Filter::Test(attr, Op::Present)),
            _ => Err(bad(format!(
                "`{name}` can only be compared with null by eq or ne"
            ))),
        };
    }
    let ordering = matches!(op, CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le);
    let substring = matches!(op, CmpOp::Co | CmpOp::Sw | CmpOp::Ew);
    let literal = match (attr.ty, value) {
        (AttrType::Complex, _) => {
            return Err(bad(format!(
                "`{name}` is complex: compare one of its sub-attributes"
            )));
        }
        (AttrType::Boolean, CompValue::True | CompValue::False) if !ordering && !substring => {
            Literal::Bool(*value == CompValue::True)
        }
        (AttrType::Boolean, _) => {
            return Err(bad(format!(
                "`{name}` is a boolean: only eq and ne with true or false"
            )));
        }
        (AttrType::Binary, CompValue::Str(s)) if !ordering && !substring => Literal::Str(s.clone()),
        (AttrType::Binary, _) => {
            return Err(bad(format!(
                "`{name}` is binary: only eq and ne with a string"
            )));
        }
        (AttrType::DateTime, CompValue::Str(s)) if !substring => {
            let at = time::parse(s)
                .ok_or_else(|| bad(format!("`{s}` is not an RFC 3339 date-time for `{name}`")))?;
            Literal::Str(time::format(at))
        }
        (AttrType::DateTime, _) => {
            return Err(bad(format!(
                "`{name}` is a date-time: compare it with a date-time string"
            )));
        }
        (AttrType::Integer | AttrType::Decimal, CompValue::Number(n)) if !substring => {
            Literal::Num(n.clone())
        }
        (AttrType::Integer | AttrType::Decimal, _) => {
            return Err(bad(format!(
                "`{name}` is a number: compare it with a number"
            )));
        }
        (AttrType::String | AttrType::Reference, CompValue::Str(s)) => Literal::Str(s.clone()),
        (AttrType::String | AttrType::Reference, _) => {
            return Err(bad(format!(
                "`{name}` is a string: compare it with a string"
            )));
        }
    };
    Ok(Filter::Test(attr, Op::Cmp(op, literal)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ENTERPRISE_USER_URN, USER_URN};

    fn user(raw: &str) -> Result<Filter, ScimError> {
        let r = Registry::core();
        parse_filter(r, r.user(), raw)
    }

    fn group(raw: &str) -> Result<Filter, ScimError> {
        let r = Registry::core();
        parse_filter(r, r.group(), raw)
    }

    #[test]
    fn every_rfc_7644_example_types() {
        // RFC 7644 §3.4.2.2, the filter examples (those on User attributes).
        for raw in [
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            &format!(r#"{USER_URN}:userName sw "J""#),
            "title pr",
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        ] {
            let typed = user(raw);
            if raw.starts_with("schemas") {
                // `schemas` is not an attribute in the registry: refused, not ignored.
                assert!(typed.is_err(), "{raw}");
            } else {
                assert!(typed.is_ok(), "{raw}: {typed:?}");
            }
        }
    }

    #[test]
    fn attributes_resolve_to_canonical_paths() {
        let f = user(r#"NAME.FAMILYNAME eq "x""#).unwrap();
        let Filter::Test(a, _) = f else { panic!() };
        assert_eq!(a.path, vec!["name", "familyName"]);
        let f = user(&format!(r#"{ENTERPRISE_USER_URN}:manager.value eq "m""#)).unwrap();
        let Filter::Test(a, _) = f else { panic!() };
        assert_eq!(a.path, vec![ENTERPRISE_USER_URN, "manager", "value"]);
        assert!(a.case_exact);
        let f = user(r#"emails co "x""#).unwrap();
        assert!(matches!(f, Filter::Any { ref path, .. } if path == &vec!["emails".to_owned()]));
        let f = user(r#"meta.created gt "2011-05-13T04:42:34+02:00""#).unwrap();
        let Filter::Test(_, Op::Cmp(CmpOp::Gt, Literal::Str(s))) = f else {
            panic!()
        };
        assert_eq!(s, "2011-05-13T02:42:34.000Z");
        assert!(matches!(
            group(r#"members.value eq "u1""#).unwrap(),
            Filter::Related {
                relation: Relation::Members,
                ..
            }
        ));
        assert!(matches!(
            user(r#"groups eq "g1""#).unwrap(),
            Filter::Related {
                relation: Relation::Groups,
                ..
            }
        ));
    }

    #[test]
    fn entra_value_path_comparisons_and_not_without_space_parse() {
        let f = user(r#"emails[type eq "work"].value eq "b@x.com""#).unwrap();
        let Filter::Any { filter, .. } = f else {
            panic!()
        };
        assert!(matches!(*filter, Filter::And(ref items) if items.len() == 2));
        assert!(matches!(user(r#"not(title pr)"#).unwrap(), Filter::Not(_)));
    }

    #[test]
    fn unknown_attributes_type_mismatches_and_bad_literals_are_invalid_filters() {
        for raw in [
            r#"nickname2 eq "x""#,
            r#"name.middle eq "x""#,
            r#"urn:example:x:1.0:User:foo eq "x""#,
            "active eq \"true\"",
            "active gt true",
            "userName eq 5",
            "userName eq true",
            r#"meta.created gt "yesterday""#,
            r#"meta.created co "2011""#,
            r#"meta.version eq "W/\"1\"""#,
            r#"name eq "x""#,
            r#"emails[value eq "x"].type[x]"#,
            r#"emails[nope eq "x"]"#,
            "userName eq",
            "(((",
            r#"x509Certificates.value gt "a""#,
        ] {
            let err = user(raw).unwrap_err();
            assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{raw}");
        }
        assert!(group(r#"userName eq "x""#).is_err());
        assert!(user(&"a".repeat(MAX_FILTER_BYTES + 1)).is_err());
    }

    #[test]
    fn null_comparisons_mean_absence_and_presence() {
        assert!(matches!(user("title eq null").unwrap(), Filter::Not(_)));
        assert!(matches!(
            user("title ne null").unwrap(),
            Filter::Test(_, Op::Present)
        ));
    }

    #[test]
    fn sort_keys_are_singular_known_attributes() {
        let r = Registry::core();
        let s = parse_sort(r, r.user(), "name.familyName", Some("descending")).unwrap();
        assert_eq!(s.attr.path, vec!["name", "familyName"]);
        assert_eq!(s.order, SortOrder::Descending);
        // The RFC's two values as it writes them, as the OpenAPI document's enum says.
        assert!(parse_sort(r, r.user(), "userName", Some("Descending")).is_err());
        assert!(parse_sort(r, r.user(), "emails", None).is_err());
        assert!(parse_sort(r, r.user(), "name", None).is_err());
        assert!(parse_sort(r, r.user(), "nope", None).is_err());
        assert!(parse_sort(r, r.user(), "userName", Some("sideways")).is_err());
        assert_eq!(
            parse_sort(r, r.user(), "meta.created", None)
                .unwrap()
                .attr
                .path,
            vec!["meta", "created"]
        );
    }
}
