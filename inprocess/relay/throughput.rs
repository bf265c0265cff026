//! Throughput: the relay draining a backlog against a plain lapin publisher, and where a
//! relay step's time goes.

use super::*;

/// (a) The relay drains the backlog: `relay_once` until `Empty`, from a fresh relay
/// (leadership, connection and topology declaration included, as at a restart).
pub(crate) async fn relay_run(
    store: &Store,
    settings: &RelaySettings,
    n: u64,
) -> anyhow::Result<Duration> {
    let mut relay = Relay::new(
        store.clone(),
        Arc::new(SystemClock),
        settings.clone(),
        Arc::new(RelayMetrics::default()),
    );
    let start = Instant::now();
    let mut published = 0u64;
    let mut held_back = 0u64;
    let max_steps = n / BATCH * 4 + 100;
    for _ in 0..max_steps {
        match relay.relay_once().await? {
            RelayOutcome::Published {
                published: p,
                held_back: h,
            } => {
                published += p as u64;
                held_back += h as u64;
            }
            RelayOutcome::Empty => break,
            RelayOutcome::NotLeader => bail!("the bench relay is not the leader"),
        }
    }
    let elapsed = start.elapsed();
    relay.shutdown().await;
    ensure!(
        published == n,
        "the relay published {published} of {n} events ({held_back} held back)"
    );
    Ok(elapsed)
}

/// (b) A plain lapin publisher: same connection setup (confirm mode), same properties,
/// same bodies in the same order, 500 pipelined then every confirm awaited.
pub(crate) async fn plain_run(
    settings: &RelaySettings,
    messages: &[Message],
) -> anyhow::Result<Duration> {
    amqp::plain_publish(
        settings.amqp_url.expose_secret(),
        "scimbus-bench",
        &settings.exchange,
        CLOUDEVENTS_JSON,
        messages,
        BATCH as usize,
    )
    .await
}

/// Where a relay step's time goes, measured by replaying `relay_once` with the same
/// public pieces (leader check ×2, fetch, publish with confirms, mark). The relay
/// publishes the stored payload text as it is, so there is no encode step; the size check
/// and the range bookkeeping fall into "other".
#[derive(Debug, Default)]
pub(crate) struct Phases {
    pub(crate) leader: Duration,
    pub(crate) fetch: Duration,
    pub(crate) publish: Duration,
    pub(crate) mark: Duration,
    pub(crate) total: Duration,
    pub(crate) steps: u64,
    /// Per full step: fetch and mark times, to see whether they grow along the drain.
    pub(crate) fetch_steps: Vec<Duration>,
    pub(crate) mark_steps: Vec<Duration>,
}

pub(crate) async fn phases_run(
    store: &Store,
    settings: &RelaySettings,
    n: u64,
) -> anyhow::Result<Phases> {
    let clock = SystemClock;
    let mut leader = match store.backend() {
        Backend::Postgres => Leader::postgres(store.url(), settings.poll_interval),
        Backend::Sqlite => Leader::InProcess,
    };
    let publisher = Publisher::connect(settings).await?;
    let mut p = Phases::default();
    let mut published = 0u64;
    let start = Instant::now();
    for _ in 0..(n / BATCH * 4 + 100) {
        p.steps += 1;
        let t = Instant::now();
        ensure!(leader.ensure().await?, "not the leader");
        p.leader += t.elapsed();

        let t = Instant::now();
        let batch = outbox::fetch_unpublished(store.conn(), BATCH).await?;
        let fetched = t.elapsed();
        p.fetch += fetched;
        if batch.is_empty() {
            break;
        }

        // As `relay_once`: the timestamp for the mark, the size check (untimed: "other").
        // The stored text is published as it is, so nothing is encoded.
        let now = Timestamp::at(clock.now());
        let sendable: Vec<Pending> = batch
            .into_iter()
            .filter(|e| e.body.len() <= settings.max_message_bytes)
            .collect();

        let t = Instant::now();
        ensure!(leader.ensure().await?, "not the leader");
        p.leader += t.elapsed();

        let t = Instant::now();
        let deliveries = publisher.publish(&sendable).await;
        p.publish += t.elapsed();
        ensure!(
            deliveries
                .iter()
                .all(|d| matches!(d, Delivery::Acked { .. })),
            "a message was not confirmed"
        );

        let t = Instant::now();
        let mut ranges: Vec<(TenantId, i64, i64)> = Vec::new();
        for event in &sendable {
            match ranges.iter_mut().find(|r| r.0 == event.tenant_id) {
                Some(r) => r.2 = event.sequence,
                None => ranges.push((event.tenant_id.clone(), event.sequence, event.sequence)),
            }
        }
        published += outbox::mark_published(store.conn(), &ranges, &now).await?;
        p.mark += t.elapsed();
        p.fetch_steps.push(fetched);
        p.mark_steps.push(t.elapsed());
    }
    p.total = start.elapsed();
    leader.release().await;
    publisher.close().await;
    ensure!(published == n, "replay published {published} of {n}");
    Ok(p)
}

pub(crate) struct Throughput {
    pub(crate) relay: Vec<Duration>,
    pub(crate) relay_consumed: Vec<Option<Duration>>,
    pub(crate) plain: Vec<Duration>,
    pub(crate) plain_consumed: Vec<Option<Duration>>,
    pub(crate) mean_body: f64,
    pub(crate) phases: Option<Phases>,
}

pub(crate) fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

pub(crate) async fn throughput(opts: &Options) -> anyhow::Result<Throughput> {
    let db = bench_db(opts).await?;
    let settings = relay_settings(&opts.amqp_url);
    let sink = sink(&settings, opts.durable_queue, |_, _| {}).await;
    let sink = match sink {
        Ok(s) => s,
        Err(e) => {
            db.remove().await;
            return Err(e);
        }
    };
    let result = throughput_in(opts, &db, &settings, &sink).await;
    remove(sink, &settings).await;
    db.remove().await;
    result
}

pub(crate) async fn throughput_in(
    opts: &Options,
    db: &Scratch,
    settings: &RelaySettings,
    sink: &Sink,
) -> anyhow::Result<Throughput> {
    let n = opts.events;
    let ctx = context(db.url()).await?;
    let tenant = tenants::create_tenant(&ctx, &Actor::system(), TENANT).await?;
    let t = Instant::now();
    fill(&ctx, &tenant, n).await?;
    settle(&ctx.store).await?;
    let messages = load_messages(&ctx.store, &tenant.id).await?;
    ensure!(
        messages.len() as u64 == n,
        "the outbox holds {}",
        messages.len()
    );
    let mean_body = messages.iter().map(|m| m.body.len()).sum::<usize>() as f64 / n as f64;
    println!(
        "setup: {n} events of {mean_body:.0} bytes on average written in {:.1} s (untimed)",
        t.elapsed().as_secs_f64()
    );

    let consumer_timeout = Duration::from_secs(300);
    let mut out = Throughput {
        relay: Vec::new(),
        relay_consumed: Vec::new(),
        plain: Vec::new(),
        plain_consumed: Vec::new(),
        mean_body,
        phases: None,
    };
    let mut expected = 0u64;
    for run in 1..=opts.runs {
        // Odd runs start with the relay, even runs with the plain publisher.
        let order: [bool; 2] = if run % 2 == 1 {
            [true, false]
        } else {
            [false, true]
        };
        for relay_turn in order {
            expected += n;
            let start = Instant::now();
            let elapsed = if relay_turn {
                relay_run(&ctx.store, settings, n).await?
            } else {
                plain_run(settings, &messages).await?
            };
            let consumed = sink
                .wait_for(expected, consumer_timeout)
                .await
                .map(|at| at - start);
            let name = if relay_turn { "relay" } else { "plain" };
            println!(
                "run {run} {name:>5}: {:>7.3} s  {:>8.0} events/s  (consumer had all after {})",
                elapsed.as_secs_f64(),
                rate(n, elapsed),
                consumed.map_or("—".to_owned(), |d| format!("{:.3} s", d.as_secs_f64()))
            );
            if consumed.is_none() {
                bail!(
                    "the consumer got {} of {expected} messages in {consumer_timeout:?}",
                    sink.count()
                );
            }
            if relay_turn {
                out.relay.push(elapsed);
                out.relay_consumed.push(consumed);
                reset(&ctx.store).await?;
            } else {
                out.plain.push(elapsed);
                out.plain_consumed.push(consumed);
            }
        }
    }
    if opts.phases {
        let phases = phases_run(&ctx.store, settings, n).await?;
        expected += n;
        sink.wait_for(expected, consumer_timeout).await;
        out.phases = Some(phases);
    }
    ctx.store.close().await?;
    Ok(out)
}
