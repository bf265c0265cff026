//! Latency: a steady write rate, each 2xx matched with the consumer's receipt of its event.

use super::*;

#[derive(serde::Deserialize)]
pub(crate) struct Subject {
    pub(crate) subject: String,
}

pub(crate) struct Latency {
    pub(crate) target_rate: f64,
    pub(crate) sent: u64,
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) achieved_rate: f64,
    /// 2xx → consumer receipt, ms (negative when the event arrived before the response).
    pub(crate) after_response: Vec<f64>,
    /// request sent → consumer receipt, ms.
    pub(crate) after_request: Vec<f64>,
    pub(crate) missing: u64,
}

pub(crate) fn signed_ms(later: Instant, earlier: Instant) -> f64 {
    if later >= earlier {
        (later - earlier).as_secs_f64() * 1e3
    } else {
        -((earlier - later).as_secs_f64() * 1e3)
    }
}

pub(crate) struct Writer {
    pub(crate) client: reqwest::Client,
    pub(crate) url: String,
    pub(crate) token: String,
}

impl Writer {
    /// POSTs a user; on 2xx, its id and the instant the response arrived.
    pub(crate) async fn create(&self, i: u64) -> anyhow::Result<(String, Instant)> {
        let body = user_document(i, &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("Content-Type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await?;
        let at = Instant::now();
        let status = response.status();
        if !status.is_success() {
            bail!("{status}: {}", response.text().await.unwrap_or_default());
        }
        let from_location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .map(str::to_owned);
        let id = match from_location {
            Some(id) => id,
            None => response.json::<Value>().await?["id"]
                .as_str()
                .context("no id in the response")?
                .to_owned(),
        };
        Ok((id, at))
    }
}

pub(crate) async fn latency(opts: &Options) -> anyhow::Result<Latency> {
    let db = bench_db(opts).await?;
    let settings = relay_settings(&opts.amqp_url);
    let receipts: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = receipts.clone();
    let sink = sink(&settings, opts.durable_queue, move |body, at| {
        if let Ok(s) = serde_json::from_slice::<Subject>(body) {
            seen.lock().unwrap().insert(s.subject, at);
        }
    })
    .await;
    let sink = match sink {
        Ok(s) => s,
        Err(e) => {
            db.remove().await;
            return Err(e);
        }
    };
    let result = latency_in(opts, &db, &settings, &sink, receipts).await;
    remove(sink, &settings).await;
    db.remove().await;
    result
}

pub(crate) async fn latency_in(
    opts: &Options,
    db: &Scratch,
    relay: &RelaySettings,
    sink: &Sink,
    receipts: Arc<Mutex<HashMap<String, Instant>>>,
) -> anyhow::Result<Latency> {
    let vars: HashMap<&str, String> = [
        ("SCIMBUS_DATABASE_URL", db.url().to_owned()),
        ("SCIMBUS_LISTEN", "127.0.0.1:0".to_owned()),
        // Measure the service, not its per-token rate limit.
        ("SCIMBUS_RATE_LIMIT", "off".to_owned()),
        ("SCIMBUS_AMQP_URL", opts.amqp_url.clone()),
        ("SCIMBUS_AMQP_EXCHANGE", relay.exchange.clone()),
        (
            "SCIMBUS_AMQP_UNROUTED_EXCHANGE",
            relay.unrouted_exchange.clone(),
        ),
        ("SCIMBUS_AMQP_UNROUTED_QUEUE", relay.unrouted_queue.clone()),
        (
            "SCIMBUS_AMQP_UNROUTED_MAX_LENGTH",
            relay.unrouted_max_length.to_string(),
        ),
    ]
    .into_iter()
    .collect();
    let settings = Settings::from_lookup(|k| vars.get(k).cloned())?;
    let app = Application::build(settings).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let ctx = app.context().clone();
    let server = tokio::spawn(app.run_until_stopped());
    tenants::create_tenant(&ctx, &Actor::system(), TENANT).await?;
    let (_, secret) = tenants::issue_token(
        &ctx,
        &Actor::system(),
        TENANT,
        TokenRequest {
            name: "bench".to_owned(),
            scopes: vec![Scope::Scim],
            expires_at: None,
        },
    )
    .await?;
    let writer = Arc::new(Writer {
        client: {
            scimbus::telemetry::install_tls_provider();
            reqwest::Client::builder()
        }
        .timeout(Duration::from_secs(30))
        .build()?,
        url: format!("{address}/scim/v2/{TENANT}/Users"),
        token: secret.expose_secret().to_owned(),
    });

    // Warm-up (not measured): HTTP connections, the relay's broker connection.
    let warm_up = 20u64;
    for i in 0..warm_up {
        writer.create(1_000_000 + i).await?;
    }
    if sink
        .wait_for(warm_up, Duration::from_secs(30))
        .await
        .is_none()
    {
        bail!(
            "the relay published {} of {warm_up} warm-up events",
            sink.count()
        );
    }

    let total = (opts.rate * opts.duration.as_secs_f64()).round().max(1.0) as u64;
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total as usize);
    let started = Instant::now();
    for i in 0..total {
        interval.tick().await;
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            writer.create(i).await.map(|(id, ok)| (id, sent, ok))
        }));
    }
    let mut acked = Vec::with_capacity(tasks.len());
    let mut failed = 0u64;
    for task in tasks {
        match task.await {
            Ok(Ok(a)) => acked.push(a),
            Ok(Err(e)) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("write failed: {e:#}");
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("writer task failed: {e}");
            }
        }
    }
    let last_ok = acked.iter().map(|a| a.2).max().unwrap_or(started);
    let achieved_rate = acked.len() as f64 / (last_ok - started).as_secs_f64().max(1e-9);

    // Every acknowledged write's event should arrive; wait a bounded time for stragglers.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = {
            let r = receipts.lock().unwrap();
            acked
                .iter()
                .all(|(id, _, _)| r.contains_key(&format!("Users/{id}")))
        };
        if all || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = receipts.lock().unwrap().clone();
    let mut out = Latency {
        target_rate: opts.rate,
        sent: total,
        ok: acked.len() as u64,
        failed,
        achieved_rate,
        after_response: Vec::new(),
        after_request: Vec::new(),
        missing: 0,
    };
    for (id, sent, ok) in &acked {
        match r.get(&format!("Users/{id}")) {
            Some(&received) => {
                out.after_response.push(signed_ms(received, *ok));
                out.after_request.push(signed_ms(received, *sent));
            }
            None => out.missing += 1,
        }
    }
    server.abort();
    Ok(out)
}

pub(crate) fn summary(values: &[f64]) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    format!(
        "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        percentile_of_sorted(&v, 50.0),
        percentile_of_sorted(&v, 90.0),
        percentile_of_sorted(&v, 99.0),
        v.last().copied().unwrap_or(f64::NAN)
    )
}
