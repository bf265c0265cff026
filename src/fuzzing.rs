//! Entry points of the fuzz targets in `fuzz/` (cargo-fuzz) and of the test that replays
//! their committed corpus and crash inputs (`tests/fuzz_corpus.rs`). Each takes arbitrary
//! bytes and must return — an error is fine, a panic or a hang is a bug.

use serde_json::{Map, Value, json};

use crate::scim::patch;
use crate::scim::query::{parse_filter, parse_sort};
use crate::scim::schema::{Registry, USER_URN};
use crate::scim::validate::validate_resource;

/// The stored document PATCH targets apply to: a full Okta/Entra-style user.
fn base_user() -> Map<String, Value> {
    let doc = json!({
        "schemas": [USER_URN, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": "bjensen@example.com",
        "externalId": "00u1",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@home.example", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-0100", "type": "work"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Tour", "manager": {"value": "m1"}
        }
    });
    match doc {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The filter parser and its typing against the User schema, then the sort parser.
pub fn filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let registry = Registry::core();
    let _ = parse_filter(registry, registry.user(), text);
    let _ = parse_filter(registry, registry.group(), text);
    let _ = parse_sort(registry, registry.user(), text, Some("descending"));
}

/// The PATCH path parser, through a one-operation PatchOp applied to a user.
pub fn patch_path(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": path, "value": "x"}]
    });
    if let Ok(ops) = patch::parse_patch(body) {
        let registry = Registry::core();
        let _ = patch::apply(registry, registry.user(), &base_user(), "u1", &ops);
    }
}

/// A whole PatchOp body (any JSON): the dialect step, then the engine, on a user.
pub fn patch_apply(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(ops) = patch::parse_patch(body) {
        let registry = Registry::core();
        let _ = patch::apply(registry, registry.user(), &base_user(), "u1", &ops);
        let _ = patch::apply(registry, registry.group(), &Map::new(), "g1", &ops);
    }
}

/// Resource validation of any JSON body as a User and as a Group.
pub fn validate(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let registry = Registry::core();
    let _ = validate_resource(registry, registry.user(), body.clone());
    let _ = validate_resource(registry, registry.group(), body);
}

/// Adversarial bodies at the default body limit (8 MiB), one or more per entry point, for
/// the test that bounds their cost (`tests/api/adversarial.rs`) and the bench that
/// measures it (`sidebyside/run adversarial`).
pub mod adversarial {
    use serde_json::{Value, json};

    const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    const BULK_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

    /// Bodies are built up to this size: just under the default limit (8 MiB).
    pub const BUDGET: usize = 7 * 1024 * 1024 + 512 * 1024;

    /// One request: where, what, and the answers a correct server may give.
    pub struct Case {
        pub name: &'static str,
        pub method: &'static str,
        /// Below the tenant's SCIM base (`/Users`, `/Groups/{id}`, …).
        pub path: String,
        pub body: Option<String>,
        pub allowed: &'static [u16],
    }

    /// `"k0":0,"k1":0,…` filling about `bytes` (no braces).
    fn wide_fields(bytes: usize) -> String {
        let mut out = String::with_capacity(bytes + 32);
        let mut i = 0usize;
        while out.len() < bytes {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("\"k{i}\":0"));
            i += 1;
        }
        out
    }

    /// `[x,x,…]` of `item` filling about `bytes`.
    fn many(item: &str, bytes: usize) -> String {
        let n = (bytes / (item.len() + 1)).max(1);
        format!("[{}]", vec![item; n].join(","))
    }

    fn numbered(prefix: &str, bytes: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut len = 0;
        let mut i = 0;
        while len < bytes {
            let s = format!("{prefix}{i}");
            len += s.len() + 4;
            out.push(s);
            i += 1;
        }
        out
    }

    /// A SearchRequest case: `field` set to `value`.
    fn search(
        name: &'static str,
        path: &str,
        field: &str,
        value: impl Into<Value>,
        allowed: &'static [u16],
    ) -> Case {
        let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
        body[field] = value.into();
        Case {
            name,
            method: "POST",
            path: path.to_owned(),
            body: Some(body.to_string()),
            allowed,
        }
    }

    /// Every case, against the user `user_id` and the group `group_id` of the tenant.
    #[allow(clippy::too_many_lines)]
    pub fn cases(user_id: &str, group_id: &str) -> Vec<Case> {
        let user_id = user_id.to_owned();
        let group_id = group_id.to_owned();
        let fields = wide_fields(BUDGET);
        let user_with =
            |extra: &str| format!("{{\"schemas\":[\"{USER_URN}\"],\"userName\":\"wide\",{extra}}}");
        let group_with = |extra: &str| {
            format!("{{\"schemas\":[\"{GROUP_URN}\"],\"displayName\":\"wide\",{extra}}}")
        };
        let patch_of =
            |ops: String| format!("{{\"schemas\":[\"{PATCH_URN}\"],\"Operations\":{ops}}}");
        let long_names = numbered("attr", BUDGET).join(",");
        let name_list: Value = numbered("attr", BUDGET).into();
        let path_ops: Vec<Value> = (0..1000)
            .map(|i| json!({"op": "add", "path": format!("x{i}"), "value": "v".repeat(BUDGET / 1000 - 60)}))
            .collect();
        let email_ops: Vec<Value> = (0..1000)
            .map(|i| {
                json!({"op": "add", "path": "emails", "value": (0..250).map(|j| json!({"value": format!("{i}.{j}@x")})).collect::<Vec<_>>()})
            })
            .collect();
        let bulk_wide = json!({
            "schemas": [BULK_URN],
            // Each operation's data is past the attribute limit: refused one by one.
            "Operations": (0..700).map(|i| json!({
                "method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
                "data": serde_json::from_str::<Value>(&user_with(&wide_fields(BUDGET / 700))).unwrap_or_default()
                    .as_object().map(|o| { let mut o = o.clone(); o.insert("userName".into(), format!("bulk{i}").into()); Value::Object(o) }).unwrap_or_default(),
            })).collect::<Vec<_>>(),
        });
        let bulk_one = format!(
            "{{\"schemas\":[\"{BULK_URN}\"],\"Operations\":[{{\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"one\",\"data\":{}}}]}}",
            user_with(&fields)
        );
        vec![
            Case {
                name: "POST /Users, many top-level attributes",
                method: "POST",
                path: "/Users".into(),
                body: Some(user_with(&fields)),
                allowed: &[400],
            },
            Case {
                name: "POST /Users, many sub-attributes of name",
                method: "POST",
                path: "/Users".into(),
                body: Some(user_with(&format!("\"name\":{{{fields}}}"))),
                allowed: &[400],
            },
            Case {
                name: "POST /Users, many attributes in the enterprise extension",
                method: "POST",
                path: "/Users".into(),
                body: Some(user_with(&format!("\"{ENTERPRISE_URN}\":{{{fields}}}"))),
                allowed: &[400],
            },
            Case {
                name: "POST /Users, many attributes in an unknown extension",
                method: "POST",
                path: "/Users".into(),
                body: Some(user_with(&format!(
                    "\"urn:example:x:1.0:User\":{{{fields}}}"
                ))),
                allowed: &[400],
            },
            Case {
                name: "POST /Users, a large unknown extension value",
                method: "POST",
                path: "/Users".into(),
                body: Some(user_with(&format!(
                    "\"urn:example:x:1.0:User\":{{\"blob\":\"{}\"}}",
                    "b".repeat(BUDGET)
                ))),
                allowed: &[400],
            },
            Case {
                name: "POST /Users, many emails",
                method: "POST",
                path: "/Users".into(),
                body: Some(user_with(&format!(
                    "\"emails\":{}",
                    many("{\"value\":\"a@b\"}", BUDGET)
                ))),
                allowed: &[400],
            },
            Case {
                name: "POST /Users, a long schemas array",
                method: "POST",
                path: "/Users".into(),
                body: Some(format!(
                    "{{\"userName\":\"wide\",\"schemas\":{}}}",
                    serde_json::to_string(
                        &std::iter::once(USER_URN.to_owned())
                            .chain(numbered("urn:example:s:", BUDGET))
                            .collect::<Vec<_>>()
                    )
                    .unwrap_or_default()
                )),
                allowed: &[400],
            },
            Case {
                name: "POST /Users, the same schema many times",
                method: "POST",
                path: "/Users".into(),
                body: Some(format!(
                    "{{\"userName\":\"wide\",\"schemas\":{}}}",
                    many(&format!("\"{USER_URN}\""), BUDGET)
                )),
                allowed: &[400],
            },
            Case {
                name: "POST /Users, deep nesting",
                method: "POST",
                path: "/Users".into(),
                body: Some(user_with(&format!(
                    "\"deep\":{}{}",
                    "[".repeat(BUDGET / 2),
                    "]".repeat(BUDGET / 2)
                ))),
                allowed: &[400],
            },
            Case {
                name: "POST /Users, nesting at the limit, many times",
                method: "POST",
                path: "/Users".into(),
                body: Some(user_with(&format!(
                    "\"deep\":{}",
                    many(&format!("{}{}", "[".repeat(60), "]".repeat(60)), BUDGET)
                ))),
                allowed: &[400],
            },
            Case {
                name: "POST /Users, a long string",
                method: "POST",
                path: "/Users".into(),
                body: Some(user_with(&format!("\"title\":\"{}\"", "t".repeat(BUDGET)))),
                allowed: &[201, 400],
            },
            Case {
                name: "PUT /Users/{id}, many top-level attributes",
                method: "PUT",
                path: format!("/Users/{user_id}"),
                body: Some(user_with(&fields).replace("\"wide\"", "\"target\"")),
                allowed: &[400],
            },
            Case {
                name: "POST /Groups, many top-level attributes",
                method: "POST",
                path: "/Groups".into(),
                body: Some(group_with(&fields)),
                allowed: &[400],
            },
            Case {
                name: "PUT /Groups/{id}, many top-level attributes",
                method: "PUT",
                path: format!("/Groups/{group_id}"),
                body: Some(group_with(&fields).replace("\"wide\"", "\"target\"")),
                allowed: &[400],
            },
            Case {
                name: "PATCH /Users/{id} without a path, many attributes",
                method: "PATCH",
                path: format!("/Users/{user_id}"),
                body: Some(patch_of(format!(
                    "[{{\"op\":\"add\",\"value\":{{{fields}}}}}]"
                ))),
                allowed: &[400],
            },
            Case {
                name: "PATCH /Groups/{id} without a path, many attributes",
                method: "PATCH",
                path: format!("/Groups/{group_id}"),
                body: Some(patch_of(format!(
                    "[{{\"op\":\"add\",\"value\":{{{fields}}}}}]"
                ))),
                allowed: &[400],
            },
            Case {
                name: "PATCH /Users/{id}, 1000 operations with paths and long values",
                method: "PATCH",
                path: format!("/Users/{user_id}"),
                body: Some(patch_of(
                    serde_json::to_string(&path_ops).unwrap_or_default(),
                )),
                allowed: &[200, 400],
            },
            Case {
                name: "PATCH /Users/{id}, 1000 operations adding emails",
                method: "PATCH",
                path: format!("/Users/{user_id}"),
                body: Some(patch_of(
                    serde_json::to_string(&email_ops).unwrap_or_default(),
                )),
                allowed: &[400],
            },
            Case {
                name: "POST /Bulk, one operation with many attributes",
                method: "POST",
                path: "/Bulk".into(),
                body: Some(bulk_one),
                allowed: &[200, 400],
            },
            Case {
                name: "POST /Bulk, 700 operations with data past the attribute limit",
                method: "POST",
                path: "/Bulk".into(),
                body: Some(bulk_wide.to_string()),
                allowed: &[200, 400],
            },
            search(
                "POST /Users/.search, a long attributes list",
                "/Users/.search",
                "attributes",
                name_list.clone(),
                &[200, 400],
            ),
            search(
                "POST /Users/.search, a long excludedAttributes list",
                "/Users/.search",
                "excludedAttributes",
                name_list.clone(),
                &[200, 400],
            ),
            search(
                "POST /.search, a long attributes list",
                "/.search",
                "attributes",
                name_list.clone(),
                &[200, 400],
            ),
            search(
                "POST /Users/.search, a long filter value",
                "/Users/.search",
                "filter",
                format!("userName co \"{}\"", "x".repeat(BUDGET)),
                &[200, 400],
            ),
            search(
                "POST /Users/.search, a long filter of many terms",
                "/Users/.search",
                "filter",
                vec!["userName pr"; BUDGET / 16].join(" and "),
                &[400],
            ),
            Case {
                name: "GET /Users, a long attributes parameter",
                method: "GET",
                path: format!("/Users?attributes={}", &long_names[..60_000]),
                body: None,
                allowed: &[200, 400, 414, 431],
            },
            Case {
                name: "GET /Users/{id}, a long excludedAttributes parameter",
                method: "GET",
                path: format!(
                    "/Users/{user_id}?excludedAttributes={}",
                    &long_names[..60_000]
                ),
                body: None,
                allowed: &[200, 400, 414, 431],
            },
        ]
    }
}
