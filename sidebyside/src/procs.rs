//! CPU time and memory of the processes taking part, read from `/proc`.
//!
//! CPU is the sum of user and system time of each group of processes between two
//! snapshots, shown as a share of one core (100 % = one core busy for the whole window;
//! the machine has two). Memory is scimbus's resident set: `VmRSS` now and `VmHWM`, its
//! peak, which is reset before each scenario through `/proc/<pid>/clear_refs`.

use std::collections::BTreeMap;
use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let (head, rest) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let mut fields = vec![comm];
    fields.extend(rest.split_whitespace().map(str::to_owned));
    Some(fields)
}

/// CPU time a process has used so far (user + system, all threads), in `/proc` ticks of
/// 10 ms.
pub fn cpu_ms(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, _, ticks)| (ticks as f64 * 1000.0 / TICKS) as u64)
}

/// (command name, parent pid, user + system ticks) of a process.
fn stat(pid: u32) -> Option<(String, u32, u64)> {
    let f = stat_fields(pid)?;
    // After the name: state(1) ppid(2) … utime(12) stime(13).
    let ppid = f.get(2)?.parse().ok()?;
    let utime: u64 = f.get(12)?.parse().ok()?;
    let stime: u64 = f.get(13)?.parse().ok()?;
    Some((f[0].clone(), ppid, utime + stime))
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Which processes are counted under which name.
#[derive(Clone, Debug, Default)]
pub struct Groups {
    /// Single processes by name (scimbus, pgbench, …).
    pub pids: Vec<(String, u32)>,
    /// The private PostgreSQL's postmaster: it and its children are "postgres".
    pub postmaster: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Snapshot {
    at: Instant,
    ticks: BTreeMap<String, u64>,
    machine_busy: u64,
    machine_total: u64,
}

fn machine() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

impl Snapshot {
    pub fn at(&self) -> Instant {
        self.at
    }
}

impl Groups {
    pub fn snapshot(&self) -> Snapshot {
        let mut ticks = BTreeMap::new();
        for (name, pid) in &self.pids {
            if let Some((_, _, t)) = stat(*pid) {
                *ticks.entry(name.clone()).or_insert(0) += t;
            }
        }
        let mut postgres = 0;
        let mut rabbit = 0;
        for pid in all_pids() {
            let Some((comm, ppid, t)) = stat(pid) else {
                continue;
            };
            if Some(pid) == self.postmaster || Some(ppid) == self.postmaster {
                postgres += t;
            } else if comm == "beam.smp" {
                rabbit += t;
            }
        }
        if self.postmaster.is_some() {
            ticks.insert("postgres".into(), postgres);
        }
        ticks.insert("rabbitmq".into(), rabbit);
        if let Some((_, _, t)) = stat(std::process::id()) {
            ticks.insert("bench (load/consumer)".into(), t);
        }
        let (machine_busy, machine_total) = machine();
        Snapshot {
            at: Instant::now(),
            ticks,
            machine_busy,
            machine_total,
        }
    }
}

/// CPU use between two snapshots: per group, % of one core.
#[derive(Clone, Debug, Default)]
pub struct CpuSplit {
    pub groups: Vec<(String, f64)>,
    /// The whole machine's busy share, % of all cores.
    pub machine: f64,
}

impl CpuSplit {
    pub fn between(a: &Snapshot, b: &Snapshot) -> Self {
        let secs = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
        let groups = b
            .ticks
            .iter()
            .map(|(name, t)| {
                let before = a.ticks.get(name).copied().unwrap_or(*t);
                (
                    name.clone(),
                    (t.saturating_sub(before)) as f64 / TICKS / secs * 100.0,
                )
            })
            .collect();
        let total = b.machine_total.saturating_sub(a.machine_total).max(1) as f64;
        let busy = b.machine_busy.saturating_sub(a.machine_busy) as f64;
        Self {
            groups,
            machine: busy / total * 100.0,
        }
    }

    pub fn render(&self) -> String {
        let mut parts: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, v)| *v >= 0.5)
            .map(|(n, v)| format!("{n} {v:.0}%"))
            .collect();
        parts.push(format!("machine {:.0}% of 2 cores", self.machine));
        parts.join(", ")
    }
}

/// A `/proc/<pid>/status` field in kB (`VmRSS`, `VmHWM`).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resets the peak resident set (`VmHWM`) of a process to its current size.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}
