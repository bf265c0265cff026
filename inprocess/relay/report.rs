//! The report of the throughput and latency figures.

use super::*;

pub(crate) fn report_throughput(opts: &Options, t: &Throughput) {
    let n = opts.events;
    let relay: Vec<f64> = t.relay.iter().map(|d| rate(n, *d)).collect();
    let plain: Vec<f64> = t.plain.iter().map(|d| rate(n, *d)).collect();
    let (r, p) = (median(&relay), median(&plain));
    let per_run = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.2}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!();
    println!(
        "== throughput ({}, {n} events of {:.0} B, batches of {BATCH}, {} runs) ==",
        opts.backend_name(),
        t.mean_body,
        opts.runs
    );
    println!(
        "relay  runs {} s   median {r:.0} events/s",
        per_run(&t.relay)
    );
    println!(
        "plain  runs {} s   median {p:.0} events/s",
        per_run(&t.plain)
    );
    let consumed = |v: &[Option<Duration>]| {
        median(
            &v.iter()
                .flatten()
                .map(|d| rate(n, *d))
                .collect::<Vec<f64>>(),
        )
    };
    println!(
        "consumer side (run start → last message received): relay median {:.0} events/s, plain median {:.0} events/s",
        consumed(&t.relay_consumed),
        consumed(&t.plain_consumed)
    );
    let ratio = r / p;
    println!(
        "ratio relay/plain (median throughput): {ratio:.2}×  (target ≥ 0.70×: {})",
        if ratio >= 0.7 { "met" } else { "NOT met" }
    );
    if let Some(ph) = &t.phases {
        let total = ph.total.as_secs_f64();
        let share = |d: Duration| {
            format!(
                "{:>7.3} s {:>5.1} %",
                d.as_secs_f64(),
                100.0 * d.as_secs_f64() / total
            )
        };
        let accounted = ph.leader + ph.fetch + ph.publish + ph.mark;
        println!(
            "phases (one replay of relay_once's steps, {} steps, {total:.3} s = {:.0} events/s):",
            ph.steps,
            rate(n, ph.total)
        );
        println!("  leader checks   {}", share(ph.leader));
        println!("  fetch           {}", share(ph.fetch));
        println!("  publish+confirm {}", share(ph.publish));
        println!("  mark            {}", share(ph.mark));
        println!(
            "  other           {}",
            share(ph.total.saturating_sub(accounted))
        );
        let tenth = (ph.fetch_steps.len() / 10).max(1);
        let mean_ms = |v: &[Duration]| {
            v.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / v.len().max(1) as f64
        };
        let (f, m) = (&ph.fetch_steps, &ph.mark_steps);
        println!(
            "  per step, first vs last tenth of the drain: fetch {:.1} → {:.1} ms, mark {:.1} → {:.1} ms",
            mean_ms(&f[..tenth.min(f.len())]),
            mean_ms(&f[f.len().saturating_sub(tenth)..]),
            mean_ms(&m[..tenth.min(m.len())]),
            mean_ms(&m[m.len().saturating_sub(tenth)..]),
        );
    }
}

pub(crate) fn report_latency(opts: &Options, l: &Latency) {
    println!();
    println!(
        "== latency ({}, POST /Users at {} /s for {:.0} s, relay in-process) ==",
        opts.backend_name(),
        l.target_rate,
        opts.duration.as_secs_f64()
    );
    println!(
        "writes: {} sent, {} 2xx, {} failed; achieved {:.1} writes/s; {} events matched, {} missing",
        l.sent,
        l.ok,
        l.failed,
        l.achieved_rate,
        l.after_response.len(),
        l.missing
    );
    println!("2xx → consumer receipt:     {}", summary(&l.after_response));
    println!("request → consumer receipt: {}", summary(&l.after_request));
    let early = l.after_response.iter().filter(|v| **v < 0.0).count();
    if early > 0 {
        println!(
            "({early} events reached the consumer before their write's 2xx reached the client)"
        );
    }
}

pub(crate) async fn bench(opts: &Options) -> anyhow::Result<()> {
    println!(
        "scimbus relay bench: backend {}, {} events × {} runs, latency {} writes/s for {:.0} s",
        opts.backend_name(),
        opts.events,
        opts.runs,
        opts.rate,
        opts.duration.as_secs_f64()
    );
    let throughput = if opts.throughput {
        Some(throughput(opts).await?)
    } else {
        None
    };
    let latency = if opts.latency {
        Some(latency(opts).await?)
    } else {
        None
    };
    if let Some(t) = &throughput {
        report_throughput(opts, t);
    }
    if let Some(l) = &latency {
        report_latency(opts, l);
    }
    Ok(())
}

pub(crate) fn main() -> anyhow::Result<()> {
    let opts = Options::parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(bench(&opts));
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}
