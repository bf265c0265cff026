//! Real IdP request shapes, replayed black-box (DESIGN 5). Each file in `fixtures/` holds the
//! requests Okta or Microsoft Entra ID send for one scenario, bodies exactly as the cited
//! source shows them; `fixtures/README.md` describes the format. One test per file replays its
//! steps over HTTP, checks every status and expectation the file states, then reads the
//! resulting state back and asserts the scenario's point in code.

use std::collections::{BTreeSet, HashMap};

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{ENTERPRISE_URN, Reply, SCIM_JSON, Target, target};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/fixtures");

/// A fixture replayed against a server: the server and every variable bound on the way.
struct Replay {
    server: Target,
    file: &'static str,
    vars: HashMap<String, String>,
}

impl Replay {
    /// Loads `fixtures/<file>`, binds its `vars`, and runs every step in order.
    async fn run(file: &'static str) -> Replay {
        let path = format!("{FIXTURES}/{file}");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the fixture {path}: {e}"));
        let fixture: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the fixture {file} is not JSON: {e}"));
        for member in ["idp", "source", "steps"] {
            assert!(
                fixture.get(member).is_some(),
                "{file}: the fixture has no `{member}`"
            );
        }
        let mut replay = Replay {
            server: target().await,
            file,
            vars: HashMap::new(),
        };
        if let Some(Value::Object(vars)) = fixture.get("vars") {
            for (name, template) in vars {
                let template = template
                    .as_str()
                    .unwrap_or_else(|| panic!("{file}: var `{name}` is not a string"));
                let uuid = uuid::Uuid::new_v4().simple().to_string();
                let value = template.replace("{{uuid}}", &uuid);
                replay.vars.insert(name.clone(), value);
            }
        }
        let steps = fixture["steps"].as_array().cloned().unwrap_or_default();
        assert!(!steps.is_empty(), "{file}: no steps");
        for (i, step) in steps.iter().enumerate() {
            replay.step(i + 1, step).await;
        }
        replay
    }

    /// A variable bound by `vars` or `save`.
    fn var(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{}: no variable `{name}`", self.file))
    }

    /// Replaces every `{{name}}` in `text`; an unbound name is a fixture bug.
    fn fill(&self, text: &str, at: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .unwrap_or_else(|| panic!("{at}: unclosed placeholder in `{text}`"));
            let name = &after[..end];
            let value = self
                .vars
                .get(name)
                .unwrap_or_else(|| panic!("{at}: `{{{{{name}}}}}` is not bound yet (fixture bug)"));
            out.push_str(value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// `fill` on every string (and object key) of a JSON value.
    fn fill_json(&self, value: &Value, at: &str) -> Value {
        match value {
            Value::String(s) => Value::String(self.fill(s, at)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.fill_json(v, at)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.fill(k, at), self.fill_json(v, at)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    async fn step(&mut self, n: usize, step: &Value) {
        let label = step["name"].as_str().unwrap_or("unnamed");
        let at = format!("{} step {n} ({label})", self.file);
        let method = step["method"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: no method"));
        let path = self.fill(
            step["path"]
                .as_str()
                .unwrap_or_else(|| panic!("{at}: no path")),
            &at,
        );
        let query: Vec<(String, String)> = match step.get("query") {
            Some(Value::Object(params)) => params
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .as_str()
                        .unwrap_or_else(|| panic!("{at}: query `{k}` is not a string"));
                    (k.clone(), self.fill(v, &at))
                })
                .collect(),
            _ => Vec::new(),
        };
        let body = step.get("body").map(|b| self.fill_json(b, &at));

        let method = Method::from_bytes(method.as_bytes())
            .unwrap_or_else(|e| panic!("{at}: bad method `{method}`: {e}"));
        let mut request = self
            .server
            .client
            .request(method.clone(), format!("{}{path}", self.server.base));
        if !query.is_empty() {
            request = request.query(&query);
        }
        if let Some(body) = &body {
            request = request
                .header(CONTENT_TYPE, SCIM_JSON)
                .body(body.to_string());
        }
        let reply = self.server.send(request).await;

        let shown = || {
            let sent = body
                .as_ref()
                .map(|b| serde_json::to_string_pretty(b).unwrap_or_default())
                .unwrap_or_default();
            let query = if query.is_empty() {
                String::new()
            } else {
                format!(" query {query:?}")
            };
            format!(
                "{method} {path}{query}\n{sent}\n--> {}\n{}",
                reply.status,
                serde_json::to_string_pretty(&reply.body).unwrap_or_default()
            )
        };

        let expected_status = step["expect_status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or_else(|| panic!("{at}: no valid expect_status"));
        assert_eq!(reply.status, expected_status, "{at}: status\n{}", shown());

        if let Some(Value::Object(expect)) = step.get("expect") {
            for (key, want) in expect {
                let key = self.fill(key, &at);
                let want = self.fill_json(want, &at);
                let got = look_up(&reply, &key);
                assert_eq!(
                    got.as_ref(),
                    Some(&want),
                    "{at}: `{key}` should be {want}\n{}",
                    shown()
                );
            }
        }
        if let Some(Value::Object(expect)) = step.get("expect_not") {
            for (key, unwanted) in expect {
                let key = self.fill(key, &at);
                let unwanted = self.fill_json(unwanted, &at);
                let got = look_up(&reply, &key);
                assert!(
                    got.is_some() && got.as_ref() != Some(&unwanted),
                    "{at}: `{key}` should be present and differ from {unwanted}\n{}",
                    shown()
                );
            }
        }
        if let Some(Value::Array(pointers)) = step.get("expect_unassigned") {
            for pointer in pointers {
                let pointer = self.fill(pointer.as_str().unwrap_or_default(), &at);
                let got = reply.body.pointer(&pointer);
                assert!(
                    got.is_none_or(Value::is_null),
                    "{at}: `{pointer}` should be unassigned (absent or null), is {}\n{}",
                    got.cloned().unwrap_or_default(),
                    shown()
                );
            }
        }
        if let Some(Value::Object(expect)) = step.get("expect_values") {
            for (pointer, want) in expect {
                let pointer = self.fill(pointer, &at);
                let want: BTreeSet<String> = want
                    .as_array()
                    .unwrap_or_else(|| panic!("{at}: expect_values `{pointer}` is not a list"))
                    .iter()
                    .map(|v| self.fill(v.as_str().unwrap_or_default(), &at))
                    .collect();
                let got = element_values(&reply.body, &pointer)
                    .unwrap_or_else(|why| panic!("{at}: `{pointer}` {why}\n{}", shown()));
                assert_eq!(
                    got,
                    want.iter().cloned().collect::<Vec<_>>(),
                    "{at}: the `value`s of `{pointer}`\n{}",
                    shown()
                );
            }
        }
        if let Some(Value::Object(save)) = step.get("save") {
            for (name, key) in save {
                let key = key.as_str().unwrap_or_default();
                let value = match look_up(&reply, key) {
                    Some(Value::String(s)) if !s.is_empty() => s,
                    other => panic!(
                        "{at}: cannot save `{name}`: `{key}` is {other:?}\n{}",
                        shown()
                    ),
                };
                self.vars.insert(name.clone(), value);
            }
        }
    }

    /// A GET of `path` (relative to the SCIM base), answered 200.
    async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.server.base);
        let reply = self.server.send(self.server.client.get(url)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: GET {path}: {}",
            self.file,
            reply.body
        );
        reply.body
    }

    async fn user(&self, id_var: &str) -> Value {
        self.get(&format!("/Users/{}", self.var(id_var))).await
    }

    async fn group(&self, id_var: &str) -> Value {
        self.get(&format!("/Groups/{}", self.var(id_var))).await
    }

    /// The member ids of a group, sorted.
    async fn member_ids(&self, id_var: &str) -> Vec<String> {
        let group = self.group(id_var).await;
        element_values(&group, "/members").unwrap_or_else(|why| panic!("members {why}: {group}"))
    }

    /// The ids of the users bound to `names`, sorted.
    fn ids(&self, names: &[&str]) -> Vec<String> {
        let mut ids: Vec<String> = names.iter().map(|n| self.var(n).to_owned()).collect();
        ids.sort();
        ids
    }
}

/// A JSON pointer into the body, or `header:<Name>` for a response header.
fn look_up(reply: &Reply, key: &str) -> Option<Value> {
    match key.strip_prefix("header:") {
        Some(name) => reply.header(name).map(|v| Value::String(v.to_owned())),
        None => reply.body.pointer(key).cloned(),
    }
}

/// The sorted `value` sub-attributes of the multi-valued attribute at `pointer` (absent or
/// null: none). Duplicates are an error: a member listed twice is a bug.
fn element_values(body: &Value, pointer: &str) -> Result<Vec<String>, String> {
    let items = match body.pointer(pointer) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("is not a list: {other}")),
    };
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        match item.get("value").and_then(Value::as_str) {
            Some(v) => values.push(v.to_owned()),
            None => return Err(format!("has an element without a string `value`: {item}")),
        }
    }
    values.sort();
    let distinct = values.iter().collect::<BTreeSet<_>>().len();
    if distinct != values.len() {
        return Err(format!("lists a value twice: {values:?}"));
    }
    Ok(values)
}

fn manager_of(user: &Value) -> &Value {
    &user[ENTERPRISE_URN]["manager"]
}

// ------------------------------------------------------------ Entra, without aadOptscim062020

#[tokio::test]
async fn entra_without_the_feature_flag_disables_a_user_with_a_string_false() {
    let run = Replay::run("entra-without-flag-disable-user.json").await;
    // The last step sent "True": the user is active again, and a boolean.
    let user = run.user("userId").await;
    assert_eq!(user["active"], Value::Bool(true), "{user}");
}

#[tokio::test]
async fn entra_without_the_feature_flag_replaces_attributes_one_capitalised_operation_each() {
    let run = Replay::run("entra-without-flag-replace-attributes.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["displayName"], "Pvlo", "{user}");
    assert_eq!(user["name"]["givenName"], "Gtfd", "{user}");
    assert_eq!(user["name"]["familyName"], "updatedFamilyName", "{user}");
    assert_eq!(user["externalId"], "Eqpj", "{user}");
    assert_eq!(user[ENTERPRISE_URN]["employeeNumber"], "Eqpj", "{user}");
    assert_eq!(user["userName"], run.var("newUserName"), "{user}");
    let emails = user["emails"].as_array().cloned().unwrap_or_default();
    assert_eq!(emails.len(), 1, "one work email, replaced in place: {user}");
    assert_eq!(emails[0]["value"], "updatedEmail@microsoft.com", "{user}");
}

#[tokio::test]
async fn entra_without_the_feature_flag_adds_a_single_value_with_a_capitalised_add() {
    let run = Replay::run("entra-without-flag-add-single-value.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["nickName"], "Babs", "{user}");
    assert_eq!(user[ENTERPRISE_URN]["employeeNumber"], "6546579", "{user}");
}

#[tokio::test]
async fn entra_without_the_feature_flag_sets_the_manager_from_a_bare_string_id() {
    let run = Replay::run("entra-without-flag-manager.json").await;
    let user = run.user("userId").await;
    let manager = manager_of(&user);
    assert_eq!(
        manager["value"],
        run.var("managerId"),
        "manager is {{\"value\": id}}: {user}"
    );
    assert!(
        manager.is_object(),
        "manager must be stored as a complex value: {user}"
    );
    assert_eq!(
        user["meta"]["version"],
        run.var("v1"),
        "re-sending the same manager must not bump the version: {user}"
    );
}

#[tokio::test]
async fn entra_without_the_feature_flag_creates_the_work_address_a_value_filter_matches_nowhere() {
    let run = Replay::run("entra-without-flag-filter-matching-nothing.json").await;
    let user = run.user("userId").await;
    let addresses = user["addresses"].as_array().cloned().unwrap_or_default();
    assert_eq!(addresses.len(), 1, "one work address, not two: {user}");
    assert_eq!(addresses[0]["type"], "work", "{user}");
    assert_eq!(addresses[0]["formatted"], "18/2111", "{user}");
    assert_eq!(user[ENTERPRISE_URN]["department"], "Retail", "{user}");
}

#[tokio::test]
async fn entra_without_the_feature_flag_removes_only_the_members_named_in_a_value_array() {
    let run = Replay::run("entra-without-flag-group-membership.json").await;
    assert_eq!(
        run.member_ids("groupId").await,
        run.ids(&["userId3"]),
        "users 1 and 2 removed, user 3 kept"
    );
}

#[tokio::test]
async fn entra_without_the_feature_flag_renames_a_group_and_a_repeated_rename_changes_nothing() {
    let run = Replay::run("entra-without-flag-group-rename.json").await;
    let group = run.group("groupId").await;
    assert_eq!(group["displayName"], run.var("newGroupName"), "{group}");
    assert_eq!(group["meta"]["version"], run.var("etag"), "{group}");
}

// ------------------------------------------------------------ Entra, create and look up

#[tokio::test]
async fn entra_creates_a_user_with_the_enterprise_extension_and_finds_it_by_user_name() {
    let run = Replay::run("entra-create-user-with-enterprise-extension.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["active"], Value::Bool(true), "{user}");
    assert_eq!(user["externalId"], run.var("externalId"), "{user}");
    assert_eq!(
        user[ENTERPRISE_URN]["department"], "Tour Operations",
        "{user}"
    );
    let phones = user["phoneNumbers"].as_array().cloned().unwrap_or_default();
    assert_eq!(phones.len(), 3, "work, mobile and fax: {user}");
}

#[tokio::test]
async fn entra_creates_a_user_whose_unmapped_attributes_are_sent_as_null() {
    let run = Replay::run("entra-create-user-with-null-attributes.json").await;
    let user = run.user("userId").await;
    for unassigned in [
        "addresses",
        "phoneNumbers",
        "title",
        "department",
        "manager",
    ] {
        assert!(
            user.get(unassigned).is_none_or(Value::is_null),
            "`{unassigned}` was sent as null and must stay unassigned: {user}"
        );
    }
    assert_eq!(user["displayName"], "Joy Young", "{user}");
}

#[tokio::test]
async fn entra_creates_a_group_and_finds_it_by_display_name_without_its_members() {
    let run = Replay::run("entra-create-group-and-look-it-up.json").await;
    let group = run.group("groupId").await;
    assert_eq!(group["displayName"], run.var("groupName"), "{group}");
    assert_eq!(group["externalId"], run.var("groupExternalId"), "{group}");
}

#[tokio::test]
async fn entra_finds_a_user_by_user_name_and_by_external_id() {
    let run = Replay::run("entra-look-up-users-by-matching-attributes.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["externalId"], run.var("externalId"), "{user}");
}

#[tokio::test]
async fn entra_finds_a_user_by_a_work_email_filter() {
    let run = Replay::run("entra-look-up-user-by-work-email.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["emails"][0]["value"], run.var("mail"), "{user}");
}

// ------------------------------------------------------------ Entra, with aadOptscim062020

#[tokio::test]
async fn entra_with_the_feature_flag_disables_a_user_with_a_boolean_false() {
    let run = Replay::run("entra-with-flag-disable-user.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["active"], Value::Bool(false), "{user}");
    assert_eq!(
        user["meta"]["version"],
        run.var("v1"),
        "disabling twice bumps once"
    );
}

#[tokio::test]
async fn entra_with_the_feature_flag_replaces_attributes_with_a_pathless_value_keyed_by_paths() {
    let run = Replay::run("entra-with-flag-replace-attributes.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["name"]["givenName"], "Foo", "{user}");
    assert_eq!(user["name"]["familyName"], "Bar", "{user}");
    assert_eq!(user[ENTERPRISE_URN]["employeeNumber"], "Aklq", "{user}");
    let stray: Vec<&String> = user
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| {
                    let urn = k.starts_with("urn:");
                    (!urn && k.contains('.'))
                        || (urn && k.as_str() != ENTERPRISE_URN && k.contains("User:"))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        stray.is_empty(),
        "paths stored as attribute names: {stray:?} in {user}"
    );
}

#[tokio::test]
async fn entra_with_the_feature_flag_adds_single_values_including_a_bare_string_manager() {
    let run = Replay::run("entra-with-flag-add-single-value.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["nickName"], "Babs", "{user}");
    assert_eq!(manager_of(&user)["value"], run.var("userId2"), "{user}");
}

#[tokio::test]
async fn entra_with_the_feature_flag_removes_one_member_by_a_value_filter_path() {
    let run = Replay::run("entra-with-flag-remove-member.json").await;
    assert_eq!(run.member_ids("groupId").await, run.ids(&["userId2"]));
}

// ------------------------------------------------------------ Okta, OIN app integrations

#[tokio::test]
async fn okta_oin_app_creates_a_user_with_a_password_and_empty_groups() {
    let run = Replay::run("okta-oin-create-user.json").await;
    let user = run.user("userId").await;
    assert!(user.get("password").is_none(), "password returned: {user}");
    assert_eq!(user["userName"], run.var("userName"), "{user}");
}

#[tokio::test]
async fn okta_oin_app_deactivates_a_user_with_a_pathless_replace() {
    let run = Replay::run("okta-oin-deactivate-user.json").await;
    // The last step reactivated the user.
    let user = run.user("userId").await;
    assert_eq!(user["active"], Value::Bool(true), "{user}");
}

#[tokio::test]
async fn okta_oin_app_batches_member_removals_and_additions_in_one_patch() {
    let run = Replay::run("okta-oin-group-membership.json").await;
    assert_eq!(
        run.member_ids("groupId").await,
        run.ids(&["userId", "userId3"])
    );
    let group = run.group("groupId").await;
    assert_eq!(
        group["meta"]["version"],
        run.var("etag"),
        "the name re-sent after the membership change must not bump the version"
    );
}

#[tokio::test]
async fn okta_oin_app_renames_a_group_with_its_own_id_in_the_value() {
    let run = Replay::run("okta-oin-group-rename.json").await;
    let group = run.group("groupId").await;
    assert_eq!(group["id"], run.var("groupId"), "{group}");
    assert_eq!(group["displayName"], run.var("newGroupName"), "{group}");
    assert_eq!(group["meta"]["version"], run.var("etag"), "{group}");
}

// ------------------------------------------------------------ Okta, AIW app integrations

#[tokio::test]
async fn okta_aiw_app_updates_a_user_with_a_put_of_the_whole_user() {
    let run = Replay::run("okta-aiw-update-user-with-put.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["name"]["middleName"], "Excited", "{user}");
    assert_eq!(user["meta"]["version"], run.var("v1"), "{user}");
}

#[tokio::test]
async fn okta_aiw_app_deactivates_a_user_with_a_put_of_active_false() {
    let run = Replay::run("okta-aiw-deactivate-user-with-put.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["active"], Value::Bool(false), "{user}");
    assert_eq!(user["meta"]["version"], run.var("v1"), "{user}");
}

#[tokio::test]
async fn okta_aiw_app_replaces_group_members_with_a_put_of_the_full_list() {
    let run = Replay::run("okta-aiw-group-put.json").await;
    assert_eq!(run.member_ids("groupId").await, run.ids(&["userId2"]));
    let group = run.group("groupId").await;
    assert_eq!(group["displayName"], run.var("newGroupName"), "{group}");
}

/// Every fixture file has its test above, and the format's required members.
#[test]
fn every_fixture_is_replayed_by_a_test() {
    let source = include_str!("dialects.rs");
    let mut files: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {FIXTURES}");
    for file in files {
        assert!(
            source.contains(&format!("Replay::run(\"{file}\")")),
            "fixtures/{file} has no test in dialects.rs"
        );
        let text = std::fs::read_to_string(format!("{FIXTURES}/{file}")).unwrap();
        let fixture: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("fixtures/{file} is not JSON: {e}"));
        let sources = fixture["source"].as_array().cloned().unwrap_or_default();
        assert!(!sources.is_empty(), "fixtures/{file}: no `source`");
        assert!(fixture["idp"].is_string(), "fixtures/{file}: no `idp`");
        for step in fixture["steps"].as_array().cloned().unwrap_or_default() {
            assert!(
                step["method"].is_string()
                    && step["path"].is_string()
                    && step["expect_status"].is_u64(),
                "fixtures/{file}: a step without method, path or expect_status: {step}"
            );
        }
    }
}
