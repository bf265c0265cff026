//! SCIM PATCH (RFC 7644 §3.5.2) as pure functions. `parse_patch` reads a PatchOp body and
//! normalises the IdP dialects (DESIGN 5, in `dialect`); `apply` runs the operations on a copy
//! of a stored document under the schema registry (DESIGN 3) and returns the new canonical
//! document, plus the group membership changes, which live in their own table (DESIGN 7).

use std::collections::HashMap;

use scim_v2::filter::PatchPath;
use scim_v2::models::errors::ScimType;
use serde_json::{Map, Value};

use super::error::ScimError;
use super::schema::{Registry, ResourceType};

mod dialect;
mod engine;
mod value_filter;

#[cfg(test)]
mod tests;

/// URN of the PATCH request message (RFC 7644 §3.5.2).
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The three PATCH operations (RFC 7644 §3.5.2), whatever the client's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

/// One normalised operation. `value` is `None` when the member was absent and
/// `Some(Value::Null)` when it was sent as null (RFC 7643 §2.5: unassigned).
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub op: Op,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// A group member named by a PATCH. Whether it exists is the caller's to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    /// The member's `id`.
    pub value: String,
    /// `User` or `Group` when the client said which.
    pub member_type: Option<String>,
}

/// The membership changes of a PATCH on a Group, folded in operation order. Apply them in
/// this order: drop every member if `clear`, then drop `remove`, then insert `add`. `remove`
/// and `add` never share an id, and `remove` is empty when `clear` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembersPatch {
    pub clear: bool,
    pub remove: Vec<String>,
    pub add: Vec<MemberRef>,
}

impl MembersPatch {
    /// True when the PATCH did not touch `members`.
    pub fn is_empty(&self) -> bool {
        !self.clear && self.remove.is_empty() && self.add.is_empty()
    }
}

/// Folds a PATCH's membership changes into a [`MembersPatch`], each operation in time
/// proportional to the ids it names (a group PATCH may name 100 000 members over 1 000
/// operations). Entries keep the order they were first named in.
#[derive(Debug, Default)]
struct MembersFold {
    clear: bool,
    remove: HashMap<String, usize>,
    add: HashMap<String, (usize, Option<String>)>,
    next: usize,
}

impl MembersFold {
    fn replace_all(&mut self, refs: Vec<MemberRef>) {
        self.remove_all();
        self.add_members(refs);
    }

    fn remove_all(&mut self) {
        self.clear = true;
        self.remove.clear();
        self.add.clear();
    }

    fn remove_ids(&mut self, ids: Vec<String>) {
        for id in ids {
            self.add.remove(&id);
            if !self.clear && !self.remove.contains_key(&id) {
                self.remove.insert(id, self.next);
                self.next += 1;
            }
        }
    }

    fn add_members(&mut self, refs: Vec<MemberRef>) {
        for member in refs {
            self.remove.remove(&member.value);
            if !self.add.contains_key(&member.value) {
                self.add
                    .insert(member.value, (self.next, member.member_type));
                self.next += 1;
            }
        }
    }

    fn finish(self) -> MembersPatch {
        let mut remove: Vec<(usize, String)> =
            self.remove.into_iter().map(|(id, at)| (at, id)).collect();
        remove.sort_unstable();
        let mut add: Vec<(usize, MemberRef)> = self
            .add
            .into_iter()
            .map(|(value, (at, member_type))| (at, MemberRef { value, member_type }))
            .collect();
        add.sort_unstable_by_key(|(at, _)| *at);
        MembersPatch {
            clear: self.clear,
            remove: remove.into_iter().map(|(_, id)| id).collect(),
            add: add.into_iter().map(|(_, m)| m).collect(),
        }
    }
}

/// What a PATCH produces.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// The new stored document, canonical exactly like `validate::validate_resource` output
    /// (with `schemas`), so that "nothing changed" is `document == stored` (DESIGN 9).
    pub document: Map<String, Value>,
    /// Changes to a Group's `members` (always empty for other resource types).
    pub members: MembersPatch,
}

/// Parses a PatchOp body (RFC 7644 §3.5.2) and normalises its dialect: `schemas` must name
/// the PatchOp URN and `Operations` must be a non-empty array (400 `invalidSyntax`), `op` is
/// matched case-insensitively, paths are parsed (400 `invalidPath`), and a `remove` without
/// `path` is refused with 400 `noTarget` (RFC 7644 §3.5.2.2).
/// Most operations one PatchOp may carry: bounded work per request (a member list goes in
/// one operation's value, so IdPs never come near it).
pub const MAX_OPERATIONS: usize = 1000;

pub fn parse_patch(body: Value) -> Result<Vec<Operation>, ScimError> {
    let Value::Object(mut body) = body else {
        return Err(ScimError::invalid_syntax(
            "a PatchOp body must be a JSON object",
        ));
    };
    let names_patch_op = matches!(
        get_ci(&body, "schemas"),
        Some(Value::Array(items))
            if items.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_URN)))
    );
    if !names_patch_op {
        return Err(ScimError::invalid_syntax(format!(
            "`schemas` must contain {PATCH_OP_URN}"
        )));
    }
    let operations = match remove_ci(&mut body, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        _ => {
            return Err(ScimError::invalid_syntax(
                "`Operations` must be a non-empty array",
            ));
        }
    };
    if operations.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_value(format!(
            "{} operations exceed the limit of {MAX_OPERATIONS} per PatchOp",
            operations.len()
        )));
    }
    operations
        .into_iter()
        .enumerate()
        .map(|(i, raw)| dialect::operation(i + 1, raw))
        .collect()
}

/// Applies `ops` to `doc`, the stored document of a `resource_type` resource whose id is
/// `resource_id` (attribute names and extension URNs as keys, without `id` and `meta`). The
/// operations run in order on a copy: the first error is returned and nothing applies.
pub fn apply(
    registry: &Registry,
    resource_type: &ResourceType,
    doc: &Map<String, Value>,
    resource_id: &str,
    ops: &[Operation],
) -> Result<PatchOutcome, ScimError> {
    engine::Engine::new(registry, resource_type, doc, resource_id)?.run(doc, ops)
}

fn no_target(detail: impl Into<String>) -> ScimError {
    ScimError::new(400, Some(ScimType::NoTarget), detail)
}

fn invalid_path(detail: impl Into<String>) -> ScimError {
    ScimError::new(400, Some(ScimType::InvalidPath), detail)
}

fn mutability(detail: impl Into<String>) -> ScimError {
    ScimError::new(400, Some(ScimType::Mutability), detail)
}

/// The key of `map` equal to `name` ignoring ASCII case (attribute names, RFC 7643 §2.1;
/// URNs, RFC 8141).
fn key_ci<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m String> {
    if map.contains_key(name) {
        return map.get_key_value(name).map(|(k, _)| k);
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name))
}

fn get_ci<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    key_ci(map, name).and_then(|k| map.get(k))
}

fn remove_ci(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = key_ci(map, name)?.clone();
    map.remove(&key)
}

/// Sets `name` to `value`, under the spelling already in `map` if there is one.
fn set_ci(map: &mut Map<String, Value>, name: &str, value: Value) {
    let key = key_ci(map, name)
        .cloned()
        .unwrap_or_else(|| name.to_owned());
    map.insert(key, value);
}

fn is_urn(key: &str) -> bool {
    key.len() > 4 && key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}
