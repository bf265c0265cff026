//! Running the replayed SQL with `pgbench -M prepared`: a warm-up run, then a measured run
//! with the per-transaction log, from which the latency percentiles are taken.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::cluster::{Cluster, bin};
use crate::procs::{CpuSplit, Groups};
use scimbus_support::stats::{Latency, histogram};

pub struct Run {
    /// pgbench transactions (= units of work) per second.
    pub tps: f64,
    /// Per transaction, ms.
    pub latency: Latency,
    pub cpu: CpuSplit,
    pub failed: u64,
}

pub struct Job<'a> {
    pub scripts: Vec<(PathBuf, u32)>,
    pub defines: Vec<(String, String)>,
    pub clients: usize,
    pub dir: &'a Path,
}

fn command(cluster: &Cluster, job: &Job<'_>, seconds: u64) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(bin("pgbench"));
    c.env("PGDATABASE", "scimbus")
        .args(["-n", "-M", "prepared", "-h", "127.0.0.1", "-U", "postgres"])
        .args(["-p", &cluster.port().to_string()])
        .args(["-c", &job.clients.to_string()])
        .args(["-j", &job.clients.min(2).to_string()])
        .args(["-T", &seconds.to_string()]);
    for (path, weight) in &job.scripts {
        c.arg("-f").arg(format!("{}@{weight}", path.display()));
    }
    for (name, value) in &job.defines {
        c.arg("-D").arg(format!("{name}={value}"));
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

async fn finish(child: tokio::process::Child) -> anyhow::Result<String> {
    let out = child.wait_with_output().await?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "pgbench failed: {}\n{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(stdout)
}

pub async fn run(
    cluster: &Cluster,
    job: &Job<'_>,
    warmup: Duration,
    measure: Duration,
    groups: &Groups,
) -> anyhow::Result<Run> {
    let warm = command(cluster, job, warmup.as_secs().max(1)).spawn()?;
    finish(warm).await?;

    let prefix = job
        .dir
        .join(format!("pgbench-{}", uuid::Uuid::new_v4().simple()));
    let mut c = command(cluster, job, measure.as_secs().max(1));
    c.arg("-l")
        .arg(format!("--log-prefix={}", prefix.display()));
    let before_groups = groups.clone();
    let child = c.spawn()?;
    let mut with_pgbench = before_groups;
    if let Some(pid) = child.id() {
        with_pgbench.pids.push(("pgbench".into(), pid));
    }
    let before = with_pgbench.snapshot();
    // The pgbench process is gone once it exits: take its CPU time from the snapshot just
    // before, by polling until it ends.
    let mut last = before.clone();
    let pid = child.id();
    let waiter = tokio::spawn(finish(child));
    while !waiter.is_finished() {
        if let Some(pid) = pid
            && std::fs::metadata(format!("/proc/{pid}")).is_ok()
        {
            last = with_pgbench.snapshot();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stdout = waiter.await.context("pgbench task")??;
    let cpu = CpuSplit::between(&before, &last);

    let tps = stdout
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .context("no tps line in pgbench's output")?;
    let failed = stdout
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("number of failed transactions: ")?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .unwrap_or(0);

    let mut h = histogram();
    let name = prefix
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    for entry in std::fs::read_dir(job.dir)?.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        if !file.starts_with(&name) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())?;
        for line in text.lines() {
            // client_id transaction_no time script_no time_epoch time_us
            if let Some(us) = line
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<u64>().ok())
            {
                let _ = h.record(us.max(1));
            }
        }
        let _ = std::fs::remove_file(entry.path());
    }
    Ok(Run {
        tps,
        latency: Latency::of(&h),
        cpu,
        failed,
    })
}
