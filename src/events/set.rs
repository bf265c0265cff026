//! RFC 9967 Security Event Tokens (SETs, RFC 8417) rendered from the outbox's envelopes:
//! the same events, in the same order, in the IETF's standard form for SCIM provisioning
//! changes (docs/events.md, "Security event tokens"). This module builds a SET's claims;
//! `events::signing` signs them.
//!
//! The mapping, per envelope type:
//!
//! | envelope | SETs (one per row, sharing the envelope's `txn`) |
//! |---|---|
//! | `*.created` | `prov:create:full` (`data`: the resource) or `prov:create:notice` (`attributes`) |
//! | `*.updated` | `prov:put:full` (`data`: the resource after the change) or `prov:put:notice` (`attributes`: what changed) |
//! | `user.deactivated` | as `updated`, then `prov:deactivate`; with signals, CAEP `session-revoked` and RISC `account-disabled` |
//! | `user.reactivated` | as `updated`, then `prov:activate` |
//! | `*.deleted` | `prov:delete`; with signals (users), CAEP `session-revoked` and RISC `account-purged` |
//! | `group.members_added` / `_removed` | `prov:patch:full` (`data`: the PatchOp) or `prov:patch:notice` (`attributes: ["members"]`) |
//! | `tenant.*`, snapshots | none: no RFC 9967 meaning (a receiver resyncs through SCIM) |

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The event URIs of RFC 9967 (§7.4) that scimbus produces.
pub mod uri {
    pub const CREATE_FULL: &str = "urn:ietf:params:scim:event:prov:create:full";
    pub const CREATE_NOTICE: &str = "urn:ietf:params:scim:event:prov:create:notice";
    pub const PUT_FULL: &str = "urn:ietf:params:scim:event:prov:put:full";
    pub const PUT_NOTICE: &str = "urn:ietf:params:scim:event:prov:put:notice";
    pub const PATCH_FULL: &str = "urn:ietf:params:scim:event:prov:patch:full";
    pub const PATCH_NOTICE: &str = "urn:ietf:params:scim:event:prov:patch:notice";
    pub const DELETE: &str = "urn:ietf:params:scim:event:prov:delete";
    pub const ACTIVATE: &str = "urn:ietf:params:scim:event:prov:activate";
    pub const DEACTIVATE: &str = "urn:ietf:params:scim:event:prov:deactivate";
    /// OpenID CAEP 1.0.
    pub const SESSION_REVOKED: &str =
        "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    /// OpenID RISC 1.0.
    pub const ACCOUNT_DISABLED: &str =
        "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
    pub const ACCOUNT_PURGED: &str =
        "https://schemas.openid.net/secevent/risc/event-type/account-purged";

    /// Every URI scimbus can produce (the service provider configuration's `eventUris`).
    pub const ALL: [&str; 12] = [
        CREATE_FULL,
        CREATE_NOTICE,
        PUT_FULL,
        PUT_NOTICE,
        PATCH_FULL,
        PATCH_NOTICE,
        DELETE,
        ACTIVATE,
        DEACTIVATE,
        SESSION_REVOKED,
        ACCOUNT_DISABLED,
        ACCOUNT_PURGED,
    ];

    /// The RFC 9967 URIs (without the Shared Signals ones).
    pub fn is_scim(uri: &str) -> bool {
        uri.starts_with("urn:ietf:params:scim:event:")
    }

    /// Whether `uri` exists only in `form` (`…:full` or `…:notice`); the others exist in
    /// both.
    pub fn form_of(uri: &str) -> Option<super::Form> {
        if uri.ends_with(":full") {
            Some(super::Form::Full)
        } else if uri.ends_with(":notice") {
            Some(super::Form::Notice)
        } else {
            None
        }
    }
}

/// The PatchOp message schema, for a membership change's `data`.
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// RFC 9967 §2.4: whether a SET carries the resource (`full`: its `data`) or only the
/// names of what changed (`notice`: its `attributes`), chosen per receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// The resource as it is after the change (create, put) or the PatchOp (membership).
    #[default]
    Full,
    /// Attribute names only: the receiver reads the resource through SCIM when it needs it.
    Notice,
}

impl Form {
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Full => "full",
            Form::Notice => "notice",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "full" => Some(Form::Full),
            "notice" => Some(Form::Notice),
            _ => None,
        }
    }
}

/// What a receiver asked for.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    pub form: Form,
    /// Event URIs to deliver; empty: every URI of the form (and, with `signals`, the
    /// Shared Signals ones).
    pub events: &'a [String],
    /// Also CAEP `session-revoked` and RISC `account-disabled`/`account-purged` for
    /// deactivated and deleted users.
    pub signals: bool,
}

impl Wanted<'_> {
    fn wants(&self, uri: &str) -> bool {
        if self.events.is_empty() {
            uri::is_scim(uri) || self.signals
        } else {
            self.events.iter().any(|e| e == uri)
        }
    }
}

/// One SET's claims, unsigned.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// Unique per SET and stable across deliveries: the envelope's `id` for its first SET,
    /// `{id}-{n}` for the n-th more (a receiver deduplicates on it).
    pub jti: String,
    /// The event URI (each SET carries exactly one event).
    pub event: &'static str,
    /// The tenant's sequence of the envelope it came from.
    pub sequence: i64,
    pub claims: Value,
}

/// Where a SET comes from and who it is for.
#[derive(Debug, Clone)]
pub struct Issue<'a> {
    /// `iss`: the tenant's SCIM base URL (`{public}/scim/v2/{tenant}`).
    pub issuer: &'a str,
    /// `aud`: the receiver's audience.
    pub audience: &'a str,
    /// `iat`: seconds since the epoch.
    pub issued_at: i64,
}

/// The SETs of one stored envelope a receiver wants, in order; none for envelopes with no
/// RFC 9967 meaning. An erased envelope (`data: {"redacted": true}`) gives notices without
/// attribute names and no `externalId`.
pub fn render(envelope: &Value, wanted: &Wanted<'_>, issue: &Issue<'_>) -> Vec<Claims> {
    let Some(kind) = envelope["type"].as_str() else {
        return Vec::new();
    };
    let Some(id) = envelope["id"].as_str() else {
        return Vec::new();
    };
    let subject = envelope["subject"].as_str().unwrap_or_default();
    let sequence = envelope["sequence"]
        .as_str()
        .and_then(|s| s.parse::<i64>().ok())
        .or_else(|| envelope["sequence"].as_i64())
        .unwrap_or_default();
    let data = &envelope["data"];
    let redacted = data["redacted"] == Value::Bool(true);
    let form = if redacted { Form::Notice } else { wanted.form };
    let resource = &data["resource"];
    let version = data["version"].as_i64().map(|v| format!("W/\"{v}\""));

    // Each SET's URI, the URI a receiver's `events` names it by (an erased event's notice
    // stands in for the full form's URI), and its payload.
    let mut events: Vec<(&'static str, &'static str, Value)> = Vec::new();
    let wanted_form = wanted.form;
    let lifecycle =
        |full: &'static str, notice: &'static str| -> (&'static str, &'static str, Value) {
            let mut payload = Map::new();
            match form {
                Form::Full => {
                    payload.insert("data".to_owned(), resource.clone());
                }
                Form::Notice => {
                    payload.insert("attributes".to_owned(), attributes(data, redacted));
                }
            }
            if let Some(version) = &version {
                payload.insert("version".to_owned(), json!(version));
            }
            (
                if form == Form::Full { full } else { notice },
                if wanted_form == Form::Full {
                    full
                } else {
                    notice
                },
                Value::Object(payload),
            )
        };
    let is_user = subject.starts_with("Users/");
    match kind.rsplit('.').next().unwrap_or_default() {
        "created" if !kind.starts_with("scimbus.tenant.") => {
            events.push(lifecycle(uri::CREATE_FULL, uri::CREATE_NOTICE));
        }
        "updated" => events.push(lifecycle(uri::PUT_FULL, uri::PUT_NOTICE)),
        "deactivated" => {
            events.push(lifecycle(uri::PUT_FULL, uri::PUT_NOTICE));
            events.push((uri::DEACTIVATE, uri::DEACTIVATE, json!({})));
            events.push((
                uri::SESSION_REVOKED,
                uri::SESSION_REVOKED,
                session_revoked(envelope),
            ));
            events.push((uri::ACCOUNT_DISABLED, uri::ACCOUNT_DISABLED, json!({})));
        }
        "reactivated" => {
            events.push(lifecycle(uri::PUT_FULL, uri::PUT_NOTICE));
            events.push((uri::ACTIVATE, uri::ACTIVATE, json!({})));
        }
        "deleted" if !kind.starts_with("scimbus.tenant.") => {
            events.push((uri::DELETE, uri::DELETE, json!({})));
            if is_user {
                events.push((
                    uri::SESSION_REVOKED,
                    uri::SESSION_REVOKED,
                    session_revoked(envelope),
                ));
                events.push((uri::ACCOUNT_PURGED, uri::ACCOUNT_PURGED, json!({})));
            }
        }
        action @ ("members_added" | "members_removed") => {
            let mut payload = Map::new();
            match form {
                Form::Full => {
                    payload.insert("data".to_owned(), membership_patch(action, data));
                }
                Form::Notice => {
                    payload.insert("attributes".to_owned(), json!(["members"]));
                }
            }
            if let Some(version) = &version {
                payload.insert("version".to_owned(), json!(version));
            }
            let uri = if form == Form::Full {
                uri::PATCH_FULL
            } else {
                uri::PATCH_NOTICE
            };
            let named = if wanted_form == Form::Full {
                uri::PATCH_FULL
            } else {
                uri::PATCH_NOTICE
            };
            events.push((uri, named, Value::Object(payload)));
        }
        _ => {}
    }

    let external_id = (!redacted)
        .then(|| resource["externalId"].as_str())
        .flatten();
    events
        .into_iter()
        .enumerate()
        .filter(|(_, (_, named, _))| wanted.wants(named))
        .map(|(n, (event, _, payload))| {
            let jti = if n == 0 {
                id.to_owned()
            } else {
                format!("{id}-{n}")
            };
            let sub_id = if uri::is_scim(event) {
                scim_subject(subject, external_id)
            } else {
                json!({"format": "iss_sub", "iss": issue.issuer,
                       "sub": subject.rsplit('/').next().unwrap_or_default()})
            };
            let mut claims = json!({
                "jti": jti,
                "iss": issue.issuer,
                "aud": issue.audience,
                "iat": issue.issued_at,
                "sub_id": sub_id,
                "events": {event: payload},
            });
            if let Some(toe) = envelope["time"].as_str().and_then(epoch_seconds) {
                claims["toe"] = json!(toe);
            }
            if let Some(txn) = envelope["txn"].as_str() {
                claims["txn"] = json!(txn);
            } else {
                claims["txn"] = json!(id);
            }
            Claims {
                jti,
                event,
                sequence,
                claims,
            }
        })
        .collect()
}

/// RFC 9967 §2.1: `{"format": "scim", "uri": "/Users/{id}", "id", "externalId"}`.
fn scim_subject(subject: &str, external_id: Option<&str>) -> Value {
    let mut sub = json!({
        "format": "scim",
        "uri": format!("/{subject}"),
        "id": subject.rsplit('/').next().unwrap_or_default(),
    });
    if let Some(external_id) = external_id {
        sub["externalId"] = json!(external_id);
    }
    sub
}

/// A notice's `attributes`: what the change touched (`changed`), or for a creation the
/// attributes it set; none for an erased event.
fn attributes(data: &Value, redacted: bool) -> Value {
    if redacted {
        return json!([]);
    }
    if let Some(changed) = data["changed"].as_array() {
        return Value::Array(changed.clone());
    }
    let names: Vec<&str> = data["resource"]
        .as_object()
        .map(|r| {
            r.keys()
                .map(String::as_str)
                .filter(|k| !["schemas", "id", "meta"].contains(k))
                .collect()
        })
        .unwrap_or_default();
    json!(names)
}

/// The PatchOp equivalent to a membership event (RFC 7644 §3.5.2): one `add` of the members,
/// or one `remove` per member by value filter.
fn membership_patch(action: &str, data: &Value) -> Value {
    let ids: Vec<&str> = data["members"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let operations: Vec<Value> = if action == "members_added" {
        let values: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
        vec![json!({"op": "add", "path": "members", "value": values})]
    } else {
        ids.iter()
            .map(|id| {
                let quoted = serde_json::to_string(id).unwrap_or_default();
                json!({"op": "remove", "path": format!("members[value eq {quoted}]")})
            })
            .collect()
    };
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

/// CAEP `session-revoked`: the admin (the IdP, over SCIM) ended the subject's access.
fn session_revoked(envelope: &Value) -> Value {
    let mut payload = json!({
        "initiating_entity": "admin",
        "reason_admin": {"en": "Deprovisioned by the identity provider over SCIM"},
    });
    if let Some(at) = envelope["time"].as_str().and_then(epoch_seconds) {
        payload["event_timestamp"] = json!(at);
    }
    payload
}

/// RFC 3339 text as seconds since the epoch.
fn epoch_seconds(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(kind: &str, subject: &str, data: Value) -> Value {
        json!({
            "specversion": "1.0", "id": "0193c1f2-7f3a-7b4c-9d2e-3f4a5b6c7d8e",
            "type": kind, "subject": subject, "time": "2026-12-07T10:00:00.000Z",
            "tenant": "acme", "sequence": "0000000000000000042", "txn": "tx-1", "data": data,
        })
    }

    const ISSUE: Issue<'static> = Issue {
        issuer: "https://scim.example/scim/v2/acme",
        audience: "https://app.example/events",
        issued_at: 1_800_000_000,
    };

    fn wanted(form: Form, signals: bool) -> Wanted<'static> {
        Wanted {
            form,
            events: &[],
            signals,
        }
    }

    #[test]
    fn a_creation_is_create_full_or_notice_with_the_rfc_claims() {
        let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u1", "userName": "bjensen", "externalId": "00u1", "active": true});
        let e = envelope(
            "scimbus.user.created",
            "Users/u1",
            json!({"resource": user, "version": 1}),
        );
        let full = render(&e, &wanted(Form::Full, false), &ISSUE);
        assert_eq!(full.len(), 1);
        let c = &full[0].claims;
        assert_eq!(full[0].jti, "0193c1f2-7f3a-7b4c-9d2e-3f4a5b6c7d8e");
        assert_eq!(full[0].sequence, 42);
        assert_eq!(c["iss"], ISSUE.issuer);
        assert_eq!(c["aud"], ISSUE.audience);
        assert_eq!(c["txn"], "tx-1");
        assert_eq!(c["toe"], 1_796_637_600);
        assert_eq!(
            c["sub_id"],
            json!({"format": "scim", "uri": "/Users/u1", "id": "u1", "externalId": "00u1"})
        );
        assert!(c.get("sub").is_none() && c.get("exp").is_none());
        assert_eq!(c["events"][uri::CREATE_FULL]["data"]["userName"], "bjensen");
        assert_eq!(c["events"][uri::CREATE_FULL]["version"], "W/\"1\"");
        let notice = render(&e, &wanted(Form::Notice, false), &ISSUE);
        let payload = &notice[0].claims["events"][uri::CREATE_NOTICE];
        let mut names: Vec<&str> = payload["attributes"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        names.sort_unstable();
        assert_eq!(names, ["active", "externalId", "userName"]);
        assert!(payload.get("data").is_none());
    }

    #[test]
    fn a_deactivation_is_a_put_then_deactivate_and_with_signals_session_revoked() {
        let e = envelope(
            "scimbus.user.deactivated",
            "Users/u1",
            json!({"resource": {"id": "u1", "active": false}, "version": 3, "changed": ["active"]}),
        );
        let plain: Vec<&str> = render(&e, &wanted(Form::Notice, false), &ISSUE)
            .iter()
            .map(|c| c.event)
            .collect();
        assert_eq!(plain, [uri::PUT_NOTICE, uri::DEACTIVATE]);
        let all = render(&e, &wanted(Form::Full, true), &ISSUE);
        let uris: Vec<&str> = all.iter().map(|c| c.event).collect();
        assert_eq!(
            uris,
            [
                uri::PUT_FULL,
                uri::DEACTIVATE,
                uri::SESSION_REVOKED,
                uri::ACCOUNT_DISABLED
            ]
        );
        let jtis: Vec<&str> = all.iter().map(|c| c.jti.as_str()).collect();
        assert_eq!(jtis[1], "0193c1f2-7f3a-7b4c-9d2e-3f4a5b6c7d8e-1");
        assert!(all.iter().all(|c| c.claims["txn"] == "tx-1"));
        assert_eq!(
            all[2].claims["sub_id"],
            json!({"format": "iss_sub", "iss": ISSUE.issuer, "sub": "u1"})
        );
        assert_eq!(
            all[2].claims["events"][uri::SESSION_REVOKED]["initiating_entity"],
            "admin"
        );
        // A receiver that asked for deactivations only gets those.
        let only = [uri::DEACTIVATE.to_owned()];
        let picked = render(
            &e,
            &Wanted {
                form: Form::Full,
                events: &only,
                signals: false,
            },
            &ISSUE,
        );
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].jti, "0193c1f2-7f3a-7b4c-9d2e-3f4a5b6c7d8e-1");
    }

    #[test]
    fn membership_changes_are_patches_of_the_group() {
        let e = envelope(
            "scimbus.group.members_removed",
            "Groups/g1",
            json!({"group": "g1", "version": 7, "members": ["u1", "u\"2"],
                   "chunk": {"index": 1, "count": 1}}),
        );
        let full = render(&e, &wanted(Form::Full, false), &ISSUE);
        let data = &full[0].claims["events"][uri::PATCH_FULL]["data"];
        assert_eq!(data["schemas"], json!([PATCH_OP]));
        assert_eq!(
            data["Operations"][1]["path"],
            "members[value eq \"u\\\"2\"]"
        );
        let added = envelope(
            "scimbus.group.members_added",
            "Groups/g1",
            json!({"group": "g1", "version": 8, "members": ["u1"]}),
        );
        let full = render(&added, &wanted(Form::Full, false), &ISSUE);
        assert_eq!(
            full[0].claims["events"][uri::PATCH_FULL]["data"]["Operations"],
            json!([{"op": "add", "path": "members", "value": [{"value": "u1"}]}])
        );
        let notice = render(&added, &wanted(Form::Notice, false), &ISSUE);
        assert_eq!(
            notice[0].claims["events"][uri::PATCH_NOTICE],
            json!({"attributes": ["members"], "version": "W/\"8\""})
        );
    }

    #[test]
    fn deletions_erased_events_and_events_with_no_rfc_meaning() {
        let deleted = envelope(
            "scimbus.group.deleted",
            "Groups/g1",
            json!({"resource": {}, "version": 2}),
        );
        let sets = render(&deleted, &wanted(Form::Full, true), &ISSUE);
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].claims["events"], json!({uri::DELETE: {}}));
        let erased = envelope(
            "scimbus.user.created",
            "Users/u1",
            json!({"redacted": true}),
        );
        let sets = render(&erased, &wanted(Form::Full, false), &ISSUE);
        assert_eq!(
            sets[0].claims["events"],
            json!({uri::CREATE_NOTICE: {"attributes": []}})
        );
        assert!(sets[0].claims["sub_id"].get("externalId").is_none());
        // A receiver that names the full URI gets the erased event's notice in its place.
        let named = [uri::CREATE_FULL.to_owned()];
        let picked = render(
            &erased,
            &Wanted {
                form: Form::Full,
                events: &named,
                signals: false,
            },
            &ISSUE,
        );
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].event, uri::CREATE_NOTICE);
        for kind in ["scimbus.tenant.created", "scimbus.tenant.deleted"] {
            let e = envelope(kind, "Tenants/acme", json!({"tenant": "acme"}));
            assert!(render(&e, &wanted(Form::Full, true), &ISSUE).is_empty());
        }
    }
}
