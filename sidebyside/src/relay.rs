//! The relay scenarios: the drain of a backlog against a plain lapin publisher, and the
//! write-to-consumer latency.

use super::*;

impl Bench {
    /// The relay draining `events` unpublished events (spread evenly over the first
    /// `spread` tenants), against a plain publisher of the same messages in the same order;
    /// alternating runs, medians.
    pub(crate) async fn relay_drain(&mut self, spread: usize) -> anyhow::Result<String> {
        let name = if spread > 1 {
            format!("relay-drain-{spread}t")
        } else {
            "relay-drain".to_owned()
        };
        println!("\n## {name}");
        self.stop_serve().await?;
        // Only the drain's events are to publish: earlier writes' events that the serving
        // relay had not published yet are marked, and the consumer has gone quiet.
        self.settle_outbox()?;
        if let Some(consumer) = &self.consumer {
            let mut last = u64::MAX;
            while consumer.count() != last {
                last = consumer.count();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        let n = self.args.events;
        let tid = self.tenant_id.clone();
        let template = self.cluster.query(&format!(
            "SELECT sequence FROM outbox WHERE tenant_id = '{tid}' AND event_type = 'scimbus.user.created' \
             ORDER BY sequence LIMIT 1"
        ))?;
        let template: i64 = template.parse().context("no user.created event to copy")?;
        let tpl_id = self.cluster.query(&format!(
            "SELECT id FROM outbox WHERE tenant_id = '{tid}' AND sequence = {template}"
        ))?;
        // Event ids of this drain: its own prefix, then the event's number, so that the
        // copies are told apart from every other row and ordered by id across tenants.
        self.drains += 1;
        let prefix = format!("00000000-0000-4000-{:04x}-", 0x8000 + self.drains);
        let spread = spread.clamp(1, self.tenants.len());
        for (k, t) in self.tenants.iter().take(spread).enumerate() {
            let count = n / spread as u64 + u64::from((k as u64) < n % spread as u64);
            let seq: i64 = self
                .cluster
                .query(&last_sequence(&format!("'{}'", t.id)))?
                .parse()?;
            let mut replacements = vec![(
                tpl_id.as_str(),
                format!("'{prefix}' || lpad(((g - 1) * {spread} + {k} + 1)::text, 12, '0')"),
            )];
            let (routing, source, tenant) = (
                format!("{TENANT}.user."),
                format!("/scim/v2/{TENANT}\""),
                format!("\"tenant\": \"{TENANT}\""),
            );
            if k > 0 {
                replacements.extend([
                    (routing.as_str(), format!("'{}.user.'", t.slug)),
                    (source.as_str(), format!("'/scim/v2/{}\"'", t.slug)),
                    (tenant.as_str(), format!("'\"tenant\": \"{}\"'", t.slug)),
                ]);
            }
            self.replicate(
                "outbox",
                &format!("t.tenant_id = '{tid}' AND t.sequence = {template}"),
                &format!("generate_series(1, {count}) AS g"),
                &replacements,
                &[
                    ("tenant_id", &format!("'{}'", t.id)),
                    ("sequence", &format!("{seq} + g")),
                    ("published_at", "NULL"),
                    ("attempts", "0"),
                ],
            )?;
            self.cluster.query(&format!(
                "UPDATE tenants SET event_seq = {} WHERE id = '{}'",
                seq + count as i64,
                t.id
            ))?;
        }
        let file = self.dir.join("messages.csv");
        self.cluster.copy_out(
            &format!(
                "SELECT id, routing_key, payload::text FROM outbox WHERE id LIKE '{prefix}%' ORDER BY id"
            ),
            &file,
        )?;
        let mut messages = Vec::new();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(&file)?;
        for record in reader.records() {
            let r = record?;
            messages.push(broker::Message {
                id: r.get(0).unwrap_or_default().to_owned(),
                routing_key: r.get(1).unwrap_or_default().to_owned(),
                body: r.get(2).unwrap_or_default().as_bytes().to_vec(),
            });
        }
        let consumer = self.consumer.as_ref().context("no consumer")?;
        let mut relay_rates = Vec::new();
        let mut plain_rates = Vec::new();
        let mut relay_cpu = Vec::new();
        let mut plain_cpu = Vec::new();
        let mut lines = String::new();
        for run in 0..self.args.drain_runs {
            for side in if run % 2 == 0 {
                ["relay", "plain"]
            } else {
                ["plain", "relay"]
            } {
                self.cluster.query(&format!(
                    "UPDATE outbox SET published_at = NULL WHERE id LIKE '{prefix}%'"
                ))?;
                self.cluster.query("VACUUM ANALYZE outbox")?;
                let target = consumer.count() + n;
                let mut groups = self.groups();
                let start = Instant::now();
                let (elapsed, cpu) = if side == "relay" {
                    let relay =
                        Server::start(&self.bin, "relay", &self.scimbus_env("postgres", true))
                            .await?;
                    groups.pids.push(("scimbus relay".into(), relay.pid));
                    let before = groups.snapshot();
                    let done = consumer
                        .wait_for(target, Duration::from_secs(60))
                        .await
                        .context("the relay stopped delivering")?;
                    let after = groups.snapshot();
                    relay.stop().await?;
                    (
                        done.duration_since(start),
                        CpuSplit::between(&before, &after),
                    )
                } else {
                    let before = groups.snapshot();
                    broker::plain_publish(&self.args.amqp_url, &self.exchange, &messages, 500)
                        .await?;
                    consumer
                        .wait_for(target, Duration::from_secs(60))
                        .await
                        .context("the consumer stopped receiving")?;
                    let after = groups.snapshot();
                    (start.elapsed(), CpuSplit::between(&before, &after))
                };
                let rate = n as f64 / elapsed.as_secs_f64();
                writeln!(
                    lines,
                    "  run {} {side}: {:.2} s, {rate:.0} events/s; CPU: {}",
                    run + 1,
                    elapsed.as_secs_f64(),
                    cpu.render()
                )?;
                println!("{}", lines.lines().last().unwrap_or_default());
                if side == "relay" {
                    relay_rates.push(rate);
                    relay_cpu.push(cpu);
                } else {
                    plain_rates.push(rate);
                    plain_cpu.push(cpu);
                }
            }
        }
        let r = median(&mut relay_rates);
        let p = median(&mut plain_rates);
        let summary = format!(
            "| {name} ({n} events) | {r:.0} events/s | {p:.0} events/s | **{:.2}×** (target ≥ 0.7) | {} | {} |",
            r / p,
            relay_cpu.first().map(|c| c.render()).unwrap_or_default(),
            plain_cpu.first().map(|c| c.render()).unwrap_or_default(),
        );
        println!("{summary}");
        // The last run may have been the plain publisher's: the copies stay unpublished.
        self.settle_outbox()?;
        self.start_serve().await?;
        Ok(format!("{lines}\n{summary}"))
    }

    /// Open loop at `rate` writes/s: time from each 201 (and from sending) to the
    /// consumer's receipt of the event.
    pub(crate) async fn write_latency(&mut self) -> anyhow::Result<String> {
        println!("\n## write-latency");
        let rate = self.args.rate.unwrap_or_else(|| {
            self.rows
                .iter()
                .find(|r| r.name == "create-user")
                .and_then(|r| r.scimbus.as_ref())
                .map(|s| (s.throughput() * 0.4).max(10.0))
                .unwrap_or(100.0)
        });
        // The drain before it leaves 100 000 updated outbox rows behind.
        self.quiesce()?;
        // Push receivers of the tenant, registered at its latest event: they get the SETs of
        // the writes below while the relay publishes them.
        let receiver = if self.args.set_receivers > 0 {
            let receiver = scimbus_support::set_receiver::PushReceiver::start().await?;
            for i in 0..self.args.set_receivers {
                let name = format!("bench-{i}");
                self.cli(&[
                    "sets",
                    "register",
                    "bench",
                    "--name",
                    &name,
                    "--endpoint",
                    &receiver.url,
                    "--alg",
                    &self.args.set_alg,
                ])
                .await?;
            }
            Some(receiver)
        } else {
            None
        };
        let serve = self.serve.as_ref().context("scimbus is not serving")?;
        let target = self.target(serve);
        let consumer = self.consumer.as_ref().context("no consumer")?;
        consumer
            .track
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let pool: Arc<tokio::sync::Mutex<Vec<Conn>>> =
            Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let total = (rate * self.args.measure as f64) as u64;
        let warm = (rate * self.args.warmup as f64) as u64;
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut tasks = Vec::new();
        let groups = self.groups();
        let mut before = None;
        if self.args.top_statements > 0 {
            self.cluster.query("SELECT pg_stat_statements_reset()")?;
        }
        let started = Instant::now();
        for i in 0..warm + total {
            interval.tick().await;
            if i == warm {
                before = Some(groups.snapshot());
            }
            let pool = pool.clone();
            let target = target.clone();
            let measured = i >= warm;
            tasks.push(tokio::spawn(async move {
                let conn = pool.lock().await.pop();
                let mut conn = match conn {
                    Some(c) => c,
                    None => Conn::open(target.addr).await?,
                };
                let req = create_req();
                let sent = Instant::now();
                let body = conn.expect(&target, &req).await?;
                let ok = Instant::now();
                pool.lock().await.push(conn);
                let v: Value = serde_json::from_slice(&body)?;
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                anyhow::Ok((measured, id, sent, ok))
            }));
        }
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await??);
        }
        let after = groups.snapshot();
        let achieved = (warm + total) as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let cpu = before
            .map(|b| CpuSplit::between(&b, &after))
            .unwrap_or_default();
        // Wait for the events of every measured write.
        let expected: Vec<_> = done.into_iter().filter(|d| d.0).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut missing = expected.len();
        while Instant::now() < deadline {
            missing = {
                let seen = consumer
                    .seen
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?;
                expected
                    .iter()
                    .filter(|(_, id, _, _)| !seen.contains_key(&format!("Users/{id}")))
                    .count()
            };
            if missing == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut from_ok = histogram();
        let mut from_sent = histogram();
        let mut early = 0;
        {
            let seen = consumer
                .seen
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            for (_, id, sent, ok) in &expected {
                if let Some(at) = seen.get(&format!("Users/{id}")) {
                    if at < ok {
                        early += 1;
                    }
                    let _ =
                        from_ok.record(at.saturating_duration_since(*ok).as_micros().max(1) as u64);
                    let _ = from_sent
                        .record(at.saturating_duration_since(*sent).as_micros().max(1) as u64);
                }
            }
        }
        consumer
            .track
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let a = Latency::of(&from_ok);
        let b = Latency::of(&from_sent);
        let mut pushed = String::new();
        if let Some(r) = receiver {
            // Every write makes one SET per receiver (warm-up writes included).
            let want = (warm + total) as usize * self.args.set_receivers as usize;
            let deadline = Instant::now() + Duration::from_secs(30);
            while r.accepted().len() < want && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            pushed = format!(
                "; {} SET push receivers got {} of {want} SETs",
                self.args.set_receivers,
                r.accepted().len()
            );
        }
        if self.args.top_statements > 0 {
            // Tab-separated so that a statement's own `|` or newline cannot break a row.
            let top = self.cluster.query(&format!(
                "SELECT calls || E'\\t' || round(total_exec_time::numeric, 1) || E'\\t' || \
                 left(regexp_replace(query, '\\s+', ' ', 'g'), 160) \
                 FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid \
                 WHERE r.rolname = 'postgres' AND query NOT ILIKE '%pg_stat_statements%' \
                 ORDER BY total_exec_time DESC LIMIT {}",
                self.args.top_statements
            ))?;
            println!("calls\tms\tstatement (write-latency, warm-up included)");
            println!("{top}");
        }
        let out = format!(
            "| write-latency | {rate:.0}/s asked, {:.0}/s sent | {} writes, {missing} events missing, {early} before their 201{pushed} | 2xx → event p50/p90/p99 {} ms (max {:.1}) | request → event {} ms (max {:.1}) | {} |",
            achieved,
            expected.len(),
            a.render(),
            a.max,
            b.render(),
            b.max,
            cpu.render()
        );
        println!("{out}");
        Ok(out)
    }
}
