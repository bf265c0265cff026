//! `adversarial`: every body of `scimbus::fuzzing::adversarial` (at the 8 MiB default
//! limit, one or more per entry point: many attributes, deep nesting, long strings, long
//! `schemas`, many PATCH operations, wide /Bulk data, long projections), sent one at a
//! time to the release build, with the CPU scimbus spent on each. Target: at most 200 ms
//! of scimbus CPU per body (a 100 000-member group PUT is measured by `group-put`).

use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::load::{Conn, Req, Target};
use crate::procs;

/// The CPU a body may cost.
const TARGET_MS: u64 = 200;

pub async fn run(target: Target, base: &str, pid: u32) -> anyhow::Result<String> {
    println!("\n## adversarial");
    let mut conn = Conn::open(target.addr).await?;
    let mut create = async |path: &str, body: Value| -> anyhow::Result<String> {
        let req = Req::with_body("seed", "POST", format!("{base}{path}"), &body, 201);
        let created: Value = serde_json::from_slice(&conn.expect(&target, &req).await?)?;
        Ok(created["id"].as_str().context("no id")?.to_owned())
    };
    let user = create(
        "/Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "adversary-target"}),
    )
    .await?;
    let group = create(
        "/Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "adversary-target"}),
    )
    .await?;
    let mut out = String::from(
        "| adversarial body (≈ 7.5 MiB) | status | wall | scimbus CPU |\n|---|---|---|---|\n",
    );
    let mut worst = (0u64, "");
    for case in scimbus::fuzzing::adversarial::cases(&user, &group) {
        let req = Req {
            tag: "adversarial",
            method: case.method,
            path: format!("{base}{}", case.path),
            body: case.body.map(Bytes::from),
            expect: 0,
            token: None,
        };
        let cpu_before = procs::cpu_ms(pid).context("scimbus is gone")?;
        let started = Instant::now();
        let (status, _) = conn.send(&target, &req).await?;
        let wall = started.elapsed();
        let cpu = procs::cpu_ms(pid)
            .context("scimbus is gone")?
            .saturating_sub(cpu_before);
        if cpu > worst.0 {
            worst = (cpu, case.name);
        }
        let line = format!(
            "| {} | {status} | {:.0} ms | {cpu} ms |",
            case.name,
            wall.as_secs_f64() * 1000.0
        );
        println!("{line}");
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!(
        "\nmost CPU: {} ms ({}); target ≤ {TARGET_MS} ms: {}\n",
        worst.0,
        worst.1,
        if worst.0 <= TARGET_MS {
            "met"
        } else {
            "missed"
        }
    ));
    Ok(out)
}
