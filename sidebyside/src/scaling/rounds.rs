//! The probe's measured rounds (scimbus restarted, then single requests of each kind, one
//! at a time, for the probed users) and the report: p50 per round and the ratios grown /
//! small and largest group / group of 100.

use anyhow::bail;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use super::{
    ADD_LARGE, ADD_SMALL, COLUMNS, FILTER, G100, GET, LIST, PROBED, REMOVE_LARGE, REMOVE_SMALL,
    ROUND_BUDGET, Round, SLUG, SMALL, SPARE_FIRST, Site, Store, uid,
};
use crate::load::{Conn, Req, Target};
use crate::{Bench, patch_body};

impl Bench {
    /// One round: scimbus (re)started so that no plan or cache outlives the change of
    /// size, then `--probe-requests` requests of each kind, one at a time.
    pub(crate) async fn round(
        &mut self,
        site: &Site,
        label: &str,
        large: bool,
    ) -> anyhow::Result<Round> {
        let memberships = self.memberships(site)?;
        // On SQLite the probe's own process, stopped after the round (the file is written
        // by the sqlite3 shell in between).
        let own = match &site.store {
            Store::Postgres => {
                self.stop_serve().await?;
                self.start_serve().await?;
                None
            }
            Store::Sqlite(file) => Some(
                self.start_sqlite(&format!("sqlite://{}?mode=rwc", file.display()))
                    .await?,
            ),
        };
        let addr = match (&own, &self.serve) {
            (Some(s), _) | (None, Some(s)) => s.addr,
            (None, None) => bail!("scimbus is not serving"),
        };
        let result = self.probe_requests(site, addr, large).await;
        if let Some(s) = own {
            s.stop().await?;
        }
        let (p50, requests, groups) = result?;
        let mut line = format!("  {} {label} ({memberships} rows):", site.store.name());
        for (k, v) in &p50 {
            let _ = write!(line, " {k} {v:.2} ms;");
        }
        println!("{line}");
        Ok(Round {
            label: label.to_owned(),
            memberships,
            requests,
            groups,
            p50,
        })
    }

    async fn probe_requests(
        &self,
        site: &Site,
        addr: std::net::SocketAddr,
        large: bool,
    ) -> anyhow::Result<(BTreeMap<&'static str, f64>, u64, usize)> {
        let target = Target {
            addr,
            token: site.token.to_string(),
        };
        let base = format!("/scim/v2/{SLUG}");
        let n = self.args.probe_requests.max(1);
        let mut conn = Conn::open(addr).await?;
        // The memberships the probe relies on, as scimbus reports them.
        let body = conn
            .expect(&target, &Req::get(GET, format!("{base}/Users/{}", uid(1))))
            .await?;
        let user: serde_json::Value = serde_json::from_slice(&body)?;
        let in_groups = user["groups"].as_array().map_or(0, Vec::len);
        let mut hist: BTreeMap<&'static str, hdrhistogram::Histogram<u64>> = BTreeMap::new();
        let mut timed = async |tag: &'static str, req: Req| -> anyhow::Result<()> {
            let start = Instant::now();
            conn.expect(&target, &req).await?;
            let us = start.elapsed().as_micros() as u64;
            let _ = hist
                .entry(tag)
                .or_insert_with(scimbus_support::stats::histogram)
                .record(us.max(1));
            Ok(())
        };
        let member_patch = |gid: &str, member: &str, add: bool| {
            let ops = if add {
                json!([{"op": "add", "path": "members", "value": [{"value": member}]}])
            } else {
                json!([{"op": "remove", "path": format!("members[value eq \"{member}\"]")}])
            };
            Req::with_body(
                if add { "add" } else { "remove" },
                "PATCH",
                format!("{base}/Groups/{gid}"),
                &patch_body(ops),
                204,
            )
        };
        let mut groups = vec![(G100, ADD_SMALL, REMOVE_SMALL)];
        if large {
            groups.push(("4100001", ADD_LARGE, REMOVE_LARGE));
        }
        let started = Instant::now();
        for i in 0..n {
            if started.elapsed() > ROUND_BUDGET {
                println!(
                    "  round stopped after {i} of {n} requests of each kind ({} s budget)",
                    ROUND_BUDGET.as_secs()
                );
                break;
            }
            let id = uid(1 + i % PROBED);
            timed(GET, Req::get(GET, format!("{base}/Users/{id}"))).await?;
            timed(
                FILTER,
                Req::get(
                    FILTER,
                    format!("{base}/Users?filter=userName%20eq%20%22{id}%22"),
                ),
            )
            .await?;
            timed(
                LIST,
                Req::get(LIST, format!("{base}/Users?startIndex=1&count=100")),
            )
            .await?;
            let spare = uid(SPARE_FIRST + i % (SMALL - SPARE_FIRST + 1));
            for (gid, add, remove) in &groups {
                timed(add, member_patch(gid, &spare, true)).await?;
                timed(remove, member_patch(gid, &spare, false)).await?;
            }
        }
        let requests = hist.values().map(|h| h.len()).min().unwrap_or(0);
        let p50 = hist
            .iter()
            .map(|(k, h)| (*k, h.value_at_quantile(0.5) as f64 / 1000.0))
            .collect();
        Ok((p50, requests, in_groups))
    }
}

pub(crate) fn render(all: &[(&'static str, Vec<Round>)], rows: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scaling probe: p50 ms, 1 connection | memberships | a probed user's groups | requests of each | {} |",
        COLUMNS.join(" | ")
    );
    let _ = writeln!(out, "|---|---|---|---|{}", "---|".repeat(COLUMNS.len()));
    for (backend, rounds) in all {
        for r in rounds {
            let cells: Vec<String> = COLUMNS
                .iter()
                .map(|c| r.p50.get(c).map_or("–".into(), |v| format!("{v:.2}")))
                .collect();
            let _ = writeln!(
                out,
                "| {backend}, {} | {} | {} | {} | {} |",
                r.label,
                r.memberships,
                r.groups,
                r.requests,
                cells.join(" | ")
            );
        }
    }
    let _ = writeln!(
        out,
        "\n| scaling ratio ({rows} rows) | target | {} |",
        all.iter()
            .flat_map(|(b, _)| [format!("{b} stale"), format!("{b} analyzed")])
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|---|{}", "---|---|".repeat(all.len()));
    let ratio = |r: &Round, a: &str, base: &Round, b: &str| match (r.p50.get(a), base.p50.get(b)) {
        (Some(x), Some(y)) if *y > 0.0 => format!("{:.2}×", x / y),
        _ => "–".into(),
    };
    let lines: [(&str, &str, &str, bool, &str); 5] = [
        ("GET grown / small", GET, GET, true, "≤ 1.2"),
        ("filter grown / small", FILTER, FILTER, true, "≤ 1.2"),
        ("list page grown / small", LIST, LIST, true, "≤ 1.2"),
        (
            "add, largest group / group of 100",
            ADD_LARGE,
            ADD_SMALL,
            false,
            "≤ 1.5",
        ),
        (
            "remove, largest group / group of 100",
            REMOVE_LARGE,
            REMOVE_SMALL,
            false,
            "≤ 1.5",
        ),
    ];
    for (name, a, b, against_small, target) in lines {
        let mut cells = Vec::new();
        for (_, rounds) in all {
            for grown in rounds.iter().skip(1).take(2) {
                let base = if against_small { &rounds[0] } else { grown };
                cells.push(ratio(grown, a, base, b));
            }
        }
        let _ = writeln!(out, "| {name} | {target} | {} |", cells.join(" | "));
    }
    println!("{out}");
    out
}
