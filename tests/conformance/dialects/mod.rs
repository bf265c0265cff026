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

mod entra;
mod okta;

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

/// Every fixture file has its test in `entra.rs` or `okta.rs`, and the format's required members.
#[test]
fn every_fixture_is_replayed_by_a_test() {
    let source = [include_str!("entra.rs"), include_str!("okta.rs")].concat();
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
            "fixtures/{file} has no test in dialects/"
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
