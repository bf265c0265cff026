//! The probe tenant's rows, written by SQL on either backend: the small tenant seeded from
//! the template rows, grown to `--scaling-rows` memberships, counted, analyzed, and removed
//! from the bench cluster afterwards.

use super::{G100, N1, N2, N3, SMALL, Site, Store, sqlite};
use crate::{Bench, USER_BASE};

impl Bench {
    pub(crate) fn analyze(&self, site: &Site) -> anyhow::Result<()> {
        match &site.store {
            Store::Postgres => {
                self.cluster.query("VACUUM ANALYZE")?;
            }
            Store::Sqlite(file) => {
                sqlite(file, "ANALYZE")?;
            }
        }
        Ok(())
    }

    pub(crate) fn memberships(&self, site: &Site) -> anyhow::Result<u64> {
        let sql = format!(
            "SELECT count(*) FROM group_members WHERE tenant_id = '{}'",
            site.tenant_id
        );
        let n = match &site.store {
            Store::Postgres => self.cluster.query(&sql)?,
            Store::Sqlite(file) => sqlite(file, &sql)?,
        };
        Ok(n.parse()?)
    }

    /// `INSERT … SELECT` copies of a template row, one per `g` in `lo..=hi`, as
    /// `Bench::replicate` does, on either backend. Expressions are written in the SQL both
    /// accept (`CAST(… AS TEXT)`, `||`).
    fn copy_rows(
        &self,
        site: &Site,
        table: &str,
        template: &str,
        (lo, hi): (u64, u64),
        replacements: &[(&str, String)],
        overrides: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        match &site.store {
            Store::Postgres => self.replicate(
                table,
                template,
                &format!("generate_series({lo}, {hi}) AS g"),
                replacements,
                overrides,
            ),
            Store::Sqlite(file) => {
                let columns = sqlite(
                    file,
                    &format!("SELECT name || ':' || lower(type) FROM pragma_table_info('{table}')"),
                )?;
                let (names, exprs) =
                    crate::copy::columns(&columns, &crate::copy::SQLITE, replacements, overrides)?;
                sqlite(
                    file,
                    &format!(
                        "WITH RECURSIVE s(g) AS (SELECT {lo} UNION ALL SELECT g + 1 FROM s WHERE g < {hi}) \
                         INSERT INTO {table} ({names}) SELECT {exprs} FROM {table} t, s WHERE {template}"
                    ),
                )?;
                Ok(())
            }
        }
    }

    /// Users `lo..=hi` of the probe tenant, copies of its template user.
    fn copy_users(&self, site: &Site, lo: u64, hi: u64) -> anyhow::Result<()> {
        let g = format!("CAST(g + {USER_BASE} AS TEXT)");
        self.copy_rows(
            site,
            "users",
            &format!(
                "t.tenant_id = '{}' AND t.id = '{}'",
                site.tenant_id, site.tpl_user
            ),
            (lo, hi),
            &[
                (site.tpl_user.as_str(), g.clone()),
                ("zzuserzz", g.clone()),
                ("zzextzz", format!("'ext-' || {g}")),
            ],
            &[],
        )
    }

    /// A group `gid` (no members) copied from the template group.
    fn probe_group(&self, site: &Site, gid: &str) -> anyhow::Result<()> {
        self.copy_rows(
            site,
            "groups",
            &format!(
                "t.tenant_id = '{}' AND t.id = '{}'",
                site.tenant_id, site.tpl_group
            ),
            (1, 1),
            &[
                (site.tpl_group.as_str(), format!("'{gid}'")),
                ("zzgroupzz", format!("'Group {gid}'")),
            ],
            &[],
        )
    }

    /// Users `lo..=hi` into `gid`, or the group `member` alone.
    fn add_members(
        &self,
        site: &Site,
        gid: &str,
        range: (u64, u64),
        member: Option<&str>,
    ) -> anyhow::Result<()> {
        let (to, overrides): (String, &[(&str, &str)]) = match member {
            Some(m) => (format!("'{m}'"), &[("member_type", "'Group'")]),
            None => (format!("CAST(g + {USER_BASE} AS TEXT)"), &[]),
        };
        self.copy_rows(
            site,
            "group_members",
            &format!(
                "t.tenant_id = '{}' AND t.group_id = '{}' AND t.member_id = '{}'",
                site.tenant_id, site.tpl_group, site.tpl_user
            ),
            range,
            &[
                (site.tpl_group.as_str(), format!("'{gid}'")),
                (site.tpl_user.as_str(), to),
            ],
            overrides,
        )
    }

    /// ~1 000 membership rows: the group of 100 (users 1–100), N1 (users 1–897), N1 in
    /// N2 in N3, and the template's own row. The tenant already has every user of the grown
    /// state, so only the membership table changes between the sizes.
    pub(crate) fn seed_small(&self, site: &Site) -> anyhow::Result<()> {
        self.copy_users(site, 1, SMALL + self.args.users)?;
        for gid in [G100, N1, N2, N3] {
            self.probe_group(site, gid)?;
        }
        self.add_members(site, G100, (1, 100), None)?;
        self.add_members(site, N1, (1, SMALL - 100 - 3), None)?;
        self.add_members(site, N2, (1, 1), Some(N1))?;
        self.add_members(site, N3, (1, 1), Some(N2))?;
        Ok(())
    }

    /// Groups X1, X2, … of the users after `SMALL` (each as large as `--users`) until the
    /// tenant holds `--scaling-rows` membership rows; returns X1's size.
    pub(crate) fn seed_large(&self, site: &Site) -> anyhow::Result<u64> {
        let size = self.args.users.max(1);
        let mut left = self
            .args
            .scaling_rows
            .saturating_sub(self.memberships(site)?);
        let mut j = 0;
        while left > 0 {
            j += 1;
            let gid = format!("41{j:05}");
            let n = left.min(size);
            self.probe_group(site, &gid)?;
            self.add_members(site, &gid, (SMALL + 1, SMALL + n), None)?;
            left -= n;
        }
        Ok(size.min(self.args.scaling_rows))
    }
    /// Removes the probe tenant's rows from the bench cluster, so that later scenarios
    /// run on the tables they had.
    pub(crate) fn cleanup_postgres(&self, site: &Site) -> anyhow::Result<()> {
        for table in ["group_members", "groups", "users"] {
            self.cluster.query(&format!(
                "DELETE FROM {table} WHERE tenant_id = '{}'",
                site.tenant_id
            ))?;
        }
        self.cluster.query("VACUUM ANALYZE")?;
        Ok(())
    }
}
