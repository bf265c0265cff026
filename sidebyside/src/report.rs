//! The report: one Markdown table row per scenario.

use super::*;

pub(crate) fn print_row(row: &Row) {
    println!("{}", render_row(row));
    if let Some(s) = &row.scimbus {
        for (tag, l) in &s.per_tag {
            println!("    {tag}: p50/p90/p99 {} ms", l.render());
        }
        println!("    CPU scimbus side: {}", s.cpu.render());
    }
    if let Some(b) = &row.baseline {
        println!("    CPU pgbench side (replay): {}", b.cpu.render());
    }
    if let Some(f) = &row.floor {
        println!("    CPU pgbench side (floor): {}", f.cpu.render());
    }
    for n in &row.notes {
        println!("    note: {n}");
    }
}

pub(crate) fn render_row(row: &Row) -> String {
    let (thr, lat) = row
        .scimbus
        .as_ref()
        .map(|s| (s.throughput(), s.latency.render()))
        .unwrap_or_default();
    let per = row.requests_per_unit.max(1) as f64;
    // A pgbench run as requests/s and per-request latency (a transaction stands for
    // `per` requests).
    let side = |run: Option<&pgbench::Run>| {
        run.map(|b| {
            let l = &b.latency;
            (
                b.tps * per,
                format!(
                    "{:.2} / {:.2} / {:.2}",
                    l.p50 / per,
                    l.p90 / per,
                    l.p99 / per
                ),
            )
        })
    };
    let rate = |r: f64| {
        if r < 10.0 {
            format!("{r:.2} req/s")
        } else {
            format!("{r:.0} req/s")
        }
    };
    let ratio = |other: f64| {
        if other > 0.0 {
            format!("**{:.2}×**", thr / other)
        } else {
            "–".into()
        }
    };
    let (bthr, blat) = side(row.baseline.as_ref()).unwrap_or_default();
    let (fthr_s, flat, fratio, fstat) = match side(row.floor.as_ref()) {
        Some((f, l)) => (
            rate(f),
            l,
            ratio(f),
            format!("{:.1}", row.floor_statements_per_unit as f64 / per),
        ),
        None => ("–".into(), "–".into(), "–".into(), "–".into()),
    };
    let sql = row
        .sql_per_request
        .map(|(req, relay)| format!("{req:.1} + relay {relay:.2}"))
        .unwrap_or_default();
    let sql = match row.db_ms_per_request {
        Some((own, background)) => {
            format!("{sql}; DB ms/request {own:.3} + background {background:.3}")
        }
        None => sql,
    };
    format!(
        "| {} | {} | {} | {lat} | {} | {blat} | {} | {fthr_s} | {flat} | {fratio} | {:.1} / {fstat} / {sql} | {} |",
        row.name,
        row.connections,
        rate(thr),
        rate(bthr),
        ratio(bthr),
        row.statements_per_unit as f64 / per,
        row.rss_peak_kb
            .map(|k| format!("{:.1} MB", k as f64 / 1024.0))
            .unwrap_or_default(),
    )
}

pub(crate) const HEADER: &str = "| scenario | conns | scimbus | p50 / p90 / p99 ms | replayed SQL (pgbench) | p50 / p90 / p99 ms | scimbus / replay | floor (pgbench) | p50 / p90 / p99 ms | scimbus / floor | SQL per request: replay / floor / scimbus | scimbus peak RSS |\n|---|---|---|---|---|---|---|---|---|---|---|---|";
