//! The floor's pgbench scripts: the statements of each scenario's `Kind` written for one
//! tenant from the templates (outbox rows modelled on the service's own events), and the
//! check that an event the floor wrote reads like the service's.

use std::fmt::Write as _;

use super::{EventTemplate, Kind, SEQ_NAME, Templates, Tenant};
use crate::capture::Script;

struct Builder<'a> {
    prefix: &'a str,
    text: String,
    defines: Vec<(String, String)>,
    statements: usize,
}

impl Builder<'_> {
    /// A `-D` constant, named per script so that several scripts can run in one pgbench.
    fn define(&mut self, name: &str, value: &str) -> String {
        let full = format!("{}_{name}", self.prefix);
        if !self.defines.iter().any(|(n, _)| *n == full) {
            self.defines.push((full.clone(), value.to_owned()));
        }
        format!(":{full}")
    }

    fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    fn sql(&mut self, s: &str) {
        self.statements += 1;
        self.line(&format!("{s};"));
    }

    /// `INSERT INTO outbox` of one event modelled on `ev`: payload with the template's
    /// subject id, event id and sequence replaced.
    fn outbox(
        &mut self,
        name: &str,
        ev: &EventTemplate,
        tenant: &Tenant,
        t: &Templates,
        subject: (&str, &str),
        replace: &[(&str, &str)],
    ) {
        let payload = ev
            .payload
            .replace(
                &format!("/scim/v2/{}\"", t.slug),
                &format!("/scim/v2/{}\"", tenant.slug),
            )
            .replace(
                &format!("\"tenant\": \"{}\"", t.slug),
                &format!("\"tenant\": \"{}\"", tenant.slug),
            );
        let pl = self.define(&format!("{name}_pl"), &payload);
        let et = self.define(&format!("{name}_type"), &ev.event_type);
        let rk = self.define(
            &format!("{name}_rk"),
            &format!("{}{}", tenant.slug, ev.routing_suffix),
        );
        let tid = self.define("t", &tenant.id);
        let now = self.define("now", &t.now);
        let eid_tpl = self.define(&format!("{name}_eid"), &ev.event_id);
        let seq_tpl = self.define(&format!("{name}_seq"), &ev.sequence_text);
        let mut e = format!(
            "replace(replace({pl}, {eid_tpl}, :eid::text), {seq_tpl}, lpad(n.s::text, {}, '0'))",
            ev.sequence_text.len()
        );
        for (i, (from, to)) in replace.iter().enumerate() {
            let f = self.define(&format!("{name}_r{i}"), from);
            e = format!("replace({e}, {f}, {to}::text)");
        }
        self.sql(&format!(
            "INSERT INTO outbox (tenant_id, sequence, id, event_type, routing_key, subject, payload, created_at) \
             SELECT {tid}, n.s, :eid, {et}, {rk}, '{}/' || {}, ({e})::jsonb, {now} FROM (SELECT nextval('{SEQ_NAME}') AS s) n",
            subject.0, subject.1
        ));
    }

    fn memberships(&mut self, tid: &str, member: &str) {
        // The direct memberships with what a user's `groups` shows (id and display).
        self.sql(&format!(
            "SELECT m.group_id, g.display_name FROM group_members m JOIN groups g \
             ON g.tenant_id = m.tenant_id AND g.id = m.group_id \
             WHERE m.tenant_id = {tid} AND m.member_id = {member}"
        ));
    }
}

const USER_COLUMNS: &str = "tenant_id, id, user_name, external_id, active, display_name, resource, version, created_at, updated_at";

/// The floor script of `kind` for `tenant`, variables and constants named after `prefix`.
pub fn script(prefix: &str, kind: &Kind, tenant: &Tenant, t: &Templates) -> Script {
    let mut b = Builder {
        prefix,
        text: String::new(),
        defines: Vec::new(),
        statements: 0,
    };
    let tid = b.define("t", &tenant.id);
    let mut requests = 1;
    match kind {
        Kind::Get { lo, hi } | Kind::Filter { lo, hi } => {
            b.line(&format!("\\set uid random({lo}, {hi})"));
            let by = if matches!(kind, Kind::Get { .. }) {
                "id"
            } else {
                "user_name_ci"
            };
            b.sql(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = {tid} AND {by} = :uid::text"
            ));
            b.memberships(&tid, ":uid::text");
        }
        Kind::ListIndex { max_offset } => {
            b.line(&format!("\\set off random(0, {max_offset})"));
            b.sql(&format!(
                "SELECT count(*) FROM users WHERE tenant_id = {tid}"
            ));
            b.sql(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = {tid} \
                 ORDER BY created_at, id LIMIT 100 OFFSET :off"
            ));
        }
        Kind::ListCursor => {
            b.sql(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = {tid} \
                 ORDER BY created_at, id LIMIT 101"
            ));
        }
        Kind::Create => {
            b.line("\\set uid random(1000000000000, 9000000000000000000)");
            b.line("\\set ext random(1000000000000, 9000000000000000000)");
            b.line("\\set eid random(1000000000000, 9000000000000000000)");
            let doc = user_doc(&mut b, t, "uid", "ext");
            let search = user_search(&mut b, t, "uid", "ext");
            let dn = b.define("dn", &t.display_name);
            let dnci = b.define("dnci", &t.display_name_ci);
            let now = b.define("now", &t.now);
            b.line("BEGIN;");
            b.sql(&format!(
                "INSERT INTO users (tenant_id, id, user_name, user_name_ci, external_id, active, display_name, \
                 display_name_ci, resource, search, version, created_at, updated_at) \
                 VALUES ({tid}, :uid, :uid, :uid, :ext, true, {dn}, {dnci}, {doc}, {search}, 1, {now}, {now})"
            ));
            b.outbox(
                "created",
                &t.created,
                tenant,
                t,
                ("Users", ":uid::text"),
                &[
                    (&t.user_id, ":uid"),
                    (&t.user_token, ":uid"),
                    (&t.ext_token, ":ext"),
                ],
            );
            b.line("COMMIT;");
        }
        Kind::PatchPut { lo, hi } => {
            requests = 2;
            b.line(&format!("\\set uid random({lo}, {hi})"));
            b.line("\\set ext random(1000000000000, 9000000000000000000)");
            let doc = user_doc(&mut b, t, "uid", "ext");
            let search = user_search(&mut b, t, "uid", "ext");
            let now = b.define("now", &t.now);
            for (active, name, ev) in [
                (false, "deactivated", &t.deactivated),
                (true, "reactivated", &t.reactivated),
            ] {
                b.line("\\set eid random(1000000000000, 9000000000000000000)");
                b.line("BEGIN;");
                b.sql(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = {tid} AND id = :uid::text FOR UPDATE"
                ));
                b.sql(&format!(
                    "UPDATE users SET active = {active}, external_id = :ext, resource = {doc}, search = {search}, \
                     version = version + 1, updated_at = {now} WHERE tenant_id = {tid} AND id = :uid::text"
                ));
                b.outbox(
                    name,
                    ev,
                    tenant,
                    t,
                    ("Users", ":uid::text"),
                    &[
                        (&t.user_id, ":uid"),
                        (&t.user_token, ":uid"),
                        (&t.ext_token, ":ext"),
                    ],
                );
                b.line("COMMIT;");
            }
        }
        Kind::AddRemove { gid, spare_base } => {
            requests = 2;
            b.line(&format!("\\set spare {spare_base} + :client_id"));
            let g = b.define("gid", gid);
            let now = b.define("now", &t.now);
            b.line("\\set eid random(1000000000000, 9000000000000000000)");
            b.line("BEGIN;");
            b.sql(&format!(
                "INSERT INTO group_members (tenant_id, group_id, member_id, member_type, created_at) \
                 VALUES ({tid}, {g}, :spare, 'User', {now})"
            ));
            b.sql(&format!(
                "UPDATE groups SET version = version + 1, updated_at = {now} WHERE tenant_id = {tid} AND id = {g}"
            ));
            let subject = g.clone();
            b.outbox(
                "added",
                &t.added,
                tenant,
                t,
                ("Groups", &subject),
                &[(&t.group_id, &subject), (&t.user_id, ":spare")],
            );
            b.line("COMMIT;");
            b.line("\\set eid random(1000000000000, 9000000000000000000)");
            b.line("BEGIN;");
            b.sql(&format!(
                "DELETE FROM group_members WHERE tenant_id = {tid} AND group_id = {g} AND member_id = :spare::text"
            ));
            b.sql(&format!(
                "UPDATE groups SET version = version + 1, updated_at = {now} WHERE tenant_id = {tid} AND id = {g}"
            ));
            b.outbox(
                "removed",
                &t.removed,
                tenant,
                t,
                ("Groups", &subject),
                &[(&t.group_id, &subject), (&t.user_id, ":spare")],
            );
            b.line("COMMIT;");
        }
    }
    let mut text = String::new();
    let _ = writeln!(text, "-- floor: {kind:?}");
    text.push_str(&b.text);
    Script {
        text,
        defines: b.defines,
        statements: b.statements,
        requests,
    }
}

/// The user's `resource` with its userName and externalId replaced (one document per user,
/// as the service stores it).
fn user_doc(b: &mut Builder<'_>, t: &Templates, uid: &str, ext: &str) -> String {
    let doc = b.define("udoc", &t.user_doc);
    let u = b.define("utok", &t.user_token);
    let x = b.define("xtok", &t.ext_token);
    format!("replace(replace({doc}, {u}, :{uid}::text), {x}, :{ext}::text)::jsonb")
}

fn user_search(b: &mut Builder<'_>, t: &Templates, uid: &str, ext: &str) -> String {
    match &t.user_search {
        None => "NULL".into(),
        Some(s) => {
            let doc = b.define("usearch", s);
            let u = b.define("utok", &t.user_token);
            let x = b.define("xtok", &t.ext_token);
            format!("replace(replace({doc}, {u}, :{uid}::text), {x}, :{ext}::text)::jsonb")
        }
    }
}

/// Checks that an outbox row the floor wrote (sequence, id, payload; `\u{1f}`-separated)
/// reads like the service's: the payload carries the row's own id and padded sequence and
/// none of the template's ids. Returns what is wrong.
pub fn check_event(t: &Templates, row: &str) -> Option<String> {
    let mut f = row.splitn(3, '\u{1f}');
    let (Some(seq), Some(id), Some(payload)) = (f.next(), f.next(), f.next()) else {
        return Some(format!("no floor event written ({row:?})"));
    };
    if serde_json::from_str::<serde_json::Value>(payload).is_err() {
        return Some("payload is not JSON".into());
    }
    let width = t.created.sequence_text.len();
    let padded = format!("{seq:0>width$}");
    let mut wrong = Vec::new();
    if !payload.contains(&format!("\"{id}\"")) {
        wrong.push("payload without the event's id");
    }
    if !payload.contains(&format!("\"{padded}\"")) {
        wrong.push("payload without the event's sequence");
    }
    let templates = [&t.user_id, &t.group_id, &t.created.event_id];
    if templates
        .iter()
        .any(|v| !v.is_empty() && payload.contains(v.as_str()))
    {
        wrong.push("payload still names a template row");
    }
    (!wrong.is_empty()).then(|| wrong.join(", "))
}
