//! The floor: per scenario, a hand-written pgbench script with the fewest statements that do
//! the scenario's database work on scimbus's own tables and indexes — no token lookup, no
//! tenant counter, no recursive group walk — writing rows shaped like the ones scimbus
//! writes (documents and event payloads copied from rows the service wrote at set-up).
//!
//! An event's `sequence` comes from a PostgreSQL sequence created in the bench cluster
//! (`bench_floor_seq`, far above every tenant's own numbers), never from
//! `tenants.event_seq`, so the floor stays the same whatever mechanism scimbus uses to
//! number its events. The rows the floor writes to `outbox` are deleted after its run.

use anyhow::{Context, bail};
use std::fmt::Write as _;

use crate::capture::Script;
use crate::load::{Conn, Req};
use crate::{
    BASE, Bench, EXTRA, PROBED, Row, TENANT, USER_BASE, add_remove_unit, group_id, patch_put_unit,
    user_body,
};

/// Sequence values the floor's outbox rows take: above anything a tenant reaches in a run.
pub const SEQ_START: i64 = 5_000_000_000_000;
pub const SEQ_NAME: &str = "bench_floor_seq";

/// An event the service wrote, used as the model of the floor's outbox rows.
#[derive(Clone, Debug, Default)]
pub struct EventTemplate {
    pub event_type: String,
    /// The routing key without the tenant slug (`.user.created`).
    pub routing_suffix: String,
    pub payload: String,
    /// The event's own id, in `payload`.
    pub event_id: String,
    /// The zero-padded sequence as it appears in `payload`.
    pub sequence_text: String,
}

impl EventTemplate {
    /// From an outbox row: (event_type, routing_key, payload, id, sequence) of tenant `slug`.
    pub fn from_row(slug: &str, row: &str) -> anyhow::Result<Self> {
        let mut f = row.splitn(5, '\u{1f}');
        let event_type = f.next().context("event_type")?.to_owned();
        let routing_key = f.next().context("routing_key")?;
        let payload = f.next().context("payload")?.to_owned();
        let event_id = f.next().context("id")?.to_owned();
        let sequence: i64 = f.next().context("sequence")?.trim().parse()?;
        let routing_suffix = routing_key
            .strip_prefix(slug)
            .context("routing key without the tenant")?
            .to_owned();
        // The envelope's sequence is zero-padded; find its width in the payload itself.
        let digits = sequence.to_string();
        let sequence_text = payload
            .match_indices(&digits)
            .filter_map(|(at, _)| {
                let start = payload[..at].rfind(|c: char| c != '0').map_or(0, |i| i + 1);
                let text = &payload[start..at + digits.len()];
                payload[..start].ends_with('"').then(|| text.to_owned())
            })
            .max_by_key(String::len)
            .unwrap_or(digits);
        Ok(Self {
            event_type,
            routing_suffix,
            payload,
            event_id,
            sequence_text,
        })
    }
}

/// What the floor scripts are written from.
#[derive(Clone, Debug, Default)]
pub struct Templates {
    /// The slug the templates were written under (`bench`).
    pub slug: String,
    /// A user's `resource` and `search` documents, with `user_token` for its userName
    /// and `ext_token` for its externalId; `user_id` is its id.
    pub user_doc: String,
    pub user_search: Option<String>,
    pub user_token: String,
    pub ext_token: String,
    pub user_id: String,
    pub display_name: String,
    pub display_name_ci: String,
    pub group_id: String,
    pub created: EventTemplate,
    pub deactivated: EventTemplate,
    pub reactivated: EventTemplate,
    pub added: EventTemplate,
    pub removed: EventTemplate,
    /// A timestamp in the service's format, used for created_at/updated_at.
    pub now: String,
}

/// The scenarios that have a floor.
#[derive(Clone, Debug)]
pub enum Kind {
    /// GET /Users/{id} of a user in `lo..=hi`.
    Get {
        lo: u64,
        hi: u64,
    },
    /// userName eq of a user in `lo..=hi` (ids equal userNames in the seeded data).
    Filter {
        lo: u64,
        hi: u64,
    },
    /// COUNT and a page of 100 at a random OFFSET in `0..=max_offset`.
    ListIndex {
        max_offset: u64,
    },
    /// The first page, no count.
    ListCursor,
    Create,
    /// PATCH active=false then PUT (active again), user in `lo..=hi`.
    PatchPut {
        lo: u64,
        hi: u64,
    },
    /// Add member `spare_base + client_id` to group `gid`, then remove it.
    AddRemove {
        gid: String,
        spare_base: u64,
    },
}

/// A tenant the floor writes to.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
}

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

/// The bench's side of the floor: the templates taken at set-up, the scripts of each
/// scenario, and their runs.
impl Bench {
    /// Makes the service write one event of each kind the floor writes (on the template
    /// rows, through the capture process) and keeps them as the floor's models.
    pub async fn event_templates(&mut self) -> anyhow::Result<()> {
        let capture = self.capture.as_ref().context("no capture server")?;
        let target = self.target(capture);
        let mut conn = Conn::open(capture.addr).await?;
        let (u, g) = (self.tpl_user.clone(), self.tpl_group.clone());
        // PATCH active=false, PUT back as it was (the template's userName stays), then the
        // template user out of the template group and in again.
        let mut unit = patch_put_unit(&u);
        unit[1] = Req::with_body(
            "PUT /Users/{id}",
            "PUT",
            format!("{BASE}/Users/{u}"),
            &user_body("zzuserzz", "zzextzz", true),
            200,
        );
        for req in unit
            .into_iter()
            .chain(add_remove_unit(&g, &u).into_iter().rev())
        {
            conn.expect(&target, &req).await?;
        }
        let tid = &self.tenant_id;
        let row = self.cluster.query(&format!(
            "SELECT concat_ws(chr(31), resource::text, coalesce(search::text, ''), \
             coalesce(display_name, ''), coalesce(display_name_ci, ''), updated_at) \
             FROM users WHERE tenant_id = '{tid}' AND id = '{u}'"
        ))?;
        let f: Vec<&str> = row.split('\u{1f}').collect();
        let [doc, search, dn, dnci, now] = f[..] else {
            bail!("template user row: {row}");
        };
        // The events are numbered after commit (the sequencer, in the background): each is
        // waited for, up to a few seconds.
        let event = |event_type: &str, subject: &str| -> anyhow::Result<EventTemplate> {
            let mut tries = 0;
            loop {
                let row = self.cluster.query(&format!(
                    "SELECT concat_ws(chr(31), event_type, routing_key, payload::text, id, sequence) \
                     FROM outbox WHERE tenant_id = '{tid}' AND event_type = 'scimbus.{event_type}' \
                     AND subject = '{subject}' ORDER BY sequence DESC LIMIT 1"
                ))?;
                match EventTemplate::from_row(TENANT, &row) {
                    Ok(template) => return Ok(template),
                    Err(_) if tries < 50 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("no {event_type} event to model the floor on")
                        });
                    }
                }
            }
        };
        self.templates = Templates {
            slug: TENANT.to_owned(),
            user_doc: doc.to_owned(),
            user_search: (!search.is_empty()).then(|| search.to_owned()),
            user_token: "zzuserzz".into(),
            ext_token: "zzextzz".into(),
            user_id: u.clone(),
            display_name: dn.to_owned(),
            display_name_ci: dnci.to_owned(),
            group_id: g.clone(),
            created: event("user.created", &format!("Users/{u}"))?,
            deactivated: event("user.deactivated", &format!("Users/{u}"))?,
            reactivated: event("user.reactivated", &format!("Users/{u}"))?,
            added: event("group.members_added", &format!("Groups/{g}"))?,
            removed: event("group.members_removed", &format!("Groups/{g}"))?,
            now: now.to_owned(),
        };
        Ok(())
    }

    /// The floor's scripts of a scenario: (name, kind, tenant, weight); none for the group
    /// PUT (its floor would be the replay's own bulk statements).
    fn floor_parts(&self, name: &str) -> Vec<(String, Kind, usize, u32)> {
        let users = self.args.users;
        let probed = (USER_BASE + 1, USER_BASE + PROBED.min(users));
        let one = |kind: Kind| vec![(name.to_owned(), kind, 0, 1)];
        match name {
            "create-user" => one(Kind::Create),
            "create-user-8t" => (0..self.tenants.len())
                .map(|k| (format!("create-user-t{}", k + 1), Kind::Create, k, 1))
                .collect(),
            "get-user" => one(Kind::Get {
                lo: probed.0,
                hi: probed.1,
            }),
            "filter-username" => one(Kind::Filter {
                lo: probed.0,
                hi: probed.1,
            }),
            "list-index" => one(Kind::ListIndex {
                max_offset: users.saturating_sub(100),
            }),
            "list-cursor" => one(Kind::ListCursor),
            "patch-put" => one(Kind::PatchPut {
                lo: probed.0,
                hi: probed.1,
            }),
            "add-member-100" | "add-member-10k" | "add-member-100k" => {
                let size = match name {
                    "add-member-100" => 100.min(users),
                    "add-member-10k" => 10_000.min(users),
                    _ => users,
                };
                one(Kind::AddRemove {
                    gid: group_id(size),
                    spare_base: USER_BASE + users + EXTRA + 1,
                })
            }
            "mixed" => {
                let mut parts = self.floor_parts("get-user");
                parts.extend(self.floor_parts("filter-username"));
                parts.extend(self.floor_parts("create-user"));
                for (p, w) in parts.iter_mut().zip([40, 40, 20]) {
                    p.3 = w;
                }
                parts
            }
            _ => Vec::new(),
        }
    }

    /// Writes the floor scripts of `name` and runs them like the replay; then removes the
    /// events they wrote.
    pub async fn measure_floor(
        &mut self,
        row: &mut Row,
        name: &str,
        clients: usize,
    ) -> anyhow::Result<()> {
        let parts = self.floor_parts(name);
        if parts.is_empty() {
            return Ok(());
        }
        let writes = parts.iter().any(|p| {
            matches!(
                p.1,
                Kind::Create | Kind::PatchPut { .. } | Kind::AddRemove { .. }
            )
        });
        let mut scripts = Vec::new();
        for (part, kind, tenant, weight) in parts {
            let key = format!("floor-{part}");
            if !self.floors.contains_key(&key) {
                let t = &self.tenants[tenant];
                let prefix = key.replace('-', "_");
                let script = script(
                    &prefix,
                    &kind,
                    &Tenant {
                        id: t.id.clone(),
                        slug: t.slug.clone(),
                    },
                    &self.templates,
                );
                let path = self.dir.join(format!("{key}.sql"));
                std::fs::write(&path, &script.text)?;
                self.floors.insert(key.clone(), (path, script));
            }
            scripts.push((key, weight));
        }
        let (run, _, statements) = self.pgbench(&self.floors, &scripts, clients).await?;
        if run.failed > 0 {
            row.notes
                .push(format!("floor: {} failed transactions", run.failed));
        }
        // The last event the floor wrote: kept in the work directory (`--keep`) and checked
        // against the service's shape before the floor's events are removed.
        let event = self.cluster.query(&format!(
            "SELECT concat_ws(chr(31), sequence, id, payload::text) FROM outbox \
             WHERE sequence >= {} ORDER BY sequence DESC LIMIT 1",
            SEQ_START
        ))?;
        std::fs::write(self.dir.join(format!("floor-{name}-event.txt")), &event)?;
        if let Some(problem) = check_event(&self.templates, &event)
            && writes
        {
            row.notes.push(format!("floor event: {problem}"));
        }
        self.cluster.query(&format!(
            "DELETE FROM outbox WHERE sequence >= {}",
            SEQ_START
        ))?;
        row.floor_statements_per_unit = statements;
        row.floor = Some(run);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_padded_sequence_is_found_in_the_payload() -> anyhow::Result<()> {
        let row = "scimbus.user.created\u{1f}bench.user.created\u{1f}{\"id\": \"e1\", \"sequence\": \"0000000001000000001\", \"data\": {\"version\": 1}}\u{1f}e1\u{1f}1000000001";
        let ev = EventTemplate::from_row("bench", row)?;
        assert_eq!(ev.sequence_text, "0000000001000000001");
        assert_eq!(ev.routing_suffix, ".user.created");
        Ok(())
    }

    #[test]
    fn scripts_count_their_statements_and_name_constants_per_prefix() {
        let t = Templates {
            slug: "bench".into(),
            user_doc: "{\"userName\": \"zzuserzz\"}".into(),
            user_token: "zzuserzz".into(),
            ext_token: "zzextzz".into(),
            now: "2026-01-01T00:00:00.000Z".into(),
            ..Default::default()
        };
        let tenant = Tenant {
            id: "tid".into(),
            slug: "bench-2".into(),
        };
        let s = script("f2", &Kind::Create, &tenant, &t);
        assert_eq!(s.statements, 2);
        assert!(s.defines.iter().all(|(n, _)| n.starts_with("f2_")));
        assert!(s.text.contains("nextval('bench_floor_seq')"));
        let s = script(
            "f",
            &Kind::AddRemove {
                gid: "g".into(),
                spare_base: 7,
            },
            &tenant,
            &t,
        );
        assert_eq!((s.statements, s.requests), (6, 2));
    }
}
