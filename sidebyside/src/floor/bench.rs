//! The bench's side of the floor: the templates taken from rows and events the service wrote
//! at set-up, which floor scripts each scenario runs, and their runs through pgbench.

use anyhow::{Context, bail};

use super::scripts::{check_event, script};
use super::{EventTemplate, Kind, SEQ_START, Templates, Tenant};
use crate::load::{Conn, Req};
use crate::{
    BASE, Bench, EXTRA, PROBED, Row, TENANT, USER_BASE, add_remove_unit, group_id, patch_put_unit,
    user_body,
};

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
