//! Phase 2 for a Group's `members`, which live in the membership table: operations fold
//! into a [`MembersFold`] instead of the document.

use super::*;

impl<'r> Engine<'r> {
    /// A Group's `members` (DESIGN 7: a table, never a JSON array). Values are checked here;
    /// whether the ids exist is the caller's to check.
    pub(super) fn members_op(
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

    pub(super) fn member_refs(
        &self,
        value: Value,
        display: &str,
    ) -> Result<Vec<MemberRef>, ScimError> {
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
}

pub(super) fn filter_ids(filter: &ValFilter, display: &str) -> Result<Vec<String>, ScimError> {
    value_filter::member_ids(filter).ok_or_else(|| {
        ScimError::invalid_filter(format!(
            "`{display}`: members are selected by id only, as in members[value eq \"id\"]"
        ))
    })
}

pub(super) fn member_type(value: Option<&Value>) -> Result<Option<String>, ScimError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("User") => Ok(Some("User".to_owned())),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("Group") => Ok(Some("Group".to_owned())),
        Some(_) => Err(ScimError::invalid_value(
            "a member's `type` is `User` or `Group`",
        )),
    }
}
