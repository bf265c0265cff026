//! The report of the groups and query figures.

use super::*;

pub(crate) fn report_groups(opts: &Options, f: &GroupFigures) {
    println!();
    println!(
        "== groups ({}, PATCH one member, {} repetitions each; PUT {} runs) ==",
        opts.backend_name(),
        opts.patches,
        opts.puts
    );
    println!(
        "PATCH add    → group of {:>6}: {}",
        f.small,
        summary(&f.add_small)
    );
    println!(
        "PATCH add    → group of {:>6}: {}",
        f.big,
        summary(&f.add_big)
    );
    println!(
        "PATCH remove → group of {:>6}: {}",
        f.small,
        summary(&f.remove_small)
    );
    println!(
        "PATCH remove → group of {:>6}: {}",
        f.big,
        summary(&f.remove_big)
    );
    let ratio_add = median(&f.add_big) / median(&f.add_small);
    let ratio_remove = median(&f.remove_big) / median(&f.remove_small);
    println!(
        "ratio big/small (medians): add {ratio_add:.2}×, remove {ratio_remove:.2}×  (aim ≤ 1.5×: {})",
        if ratio_add <= 1.5 { "met" } else { "NOT met" }
    );
    let runs = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{:.0}", x))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let put = median(&f.put);
    println!(
        "PUT keeping {} and replacing {} (body {} B, response {} B): runs {} ms, median {put:.0} ms = {:.2}× Okta's {} s timeout ({})",
        f.big - opts.replace,
        opts.replace,
        f.put_body_bytes,
        f.put_response_bytes,
        runs(&f.put),
        put / ms(OKTA_TIMEOUT),
        OKTA_TIMEOUT.as_secs(),
        if put < ms(OKTA_TIMEOUT) {
            "inside"
        } else {
            "NOT inside"
        }
    );
    let waits: Vec<f64> = f.probes.iter().map(|p| p.0).collect();
    let statuses: Vec<u16> = f.probes.iter().map(|p| p.1).collect();
    println!(
        "probe PATCHes to the small group during the PUTs (new connection each, every 250 ms): {} sent, statuses {:?}, {}",
        f.probes.len(),
        distinct(&statuses),
        summary(&waits)
    );
}

pub(crate) fn report_queries(opts: &Options, q: &QueryFigures) {
    println!();
    println!(
        "== queries ({}, tenant of {} users beside another of {}; emails co \"@x\" matches {}) ==",
        opts.backend_name(),
        opts.users,
        opts.users + opts.replace,
        q.matches_co
    );
    for s in &q.shapes {
        println!("{}", s.name);
        if !s.http.is_empty() {
            println!("  HTTP            {}", summary(&s.http));
        }
        println!(
            "  same SQL (pool) {}   [{} statement(s){}]",
            summary(&s.sql_ms),
            s.sql.len(),
            if s.note.is_empty() {
                String::new()
            } else {
                format!("; {}", s.note)
            }
        );
        if !s.per_user_ms.is_empty() {
            println!(
                "  + groups, one memberships query per listed user (as list does), pool: {}",
                summary(&s.per_user_ms)
            );
            println!(
                "  + groups, one memberships_of_many query for the page, pool:        {}",
                summary(&s.memberships_ms)
            );
        }
        match &s.pgbench {
            Some(Ok(avg)) => println!("  pgbench         latency average {avg:.2} ms"),
            Some(Err(e)) => println!("  pgbench         unavailable: {e}"),
            None => {}
        }
    }
    if opts.plans {
        println!();
        println!("== plans ({}) ==", opts.backend_name());
        for s in &q.shapes {
            println!("-- {}:", s.name);
            for line in &s.plan {
                println!("   {line}");
            }
        }
        println!();
        println!("== SQL ({}) ==", opts.backend_name());
        for s in &q.shapes {
            println!("-- {}:", s.name);
            for st in &s.sql {
                println!("   {st};");
            }
        }
    }
}

pub(crate) async fn bench(opts: &Options) -> anyhow::Result<()> {
    println!(
        "scimbus SCIM bench: backend {}, {} users a tenant, groups of {} and {}",
        opts.backend_name(),
        opts.users,
        opts.small,
        opts.users
    );
    let db = bench_db(opts).await?;
    let result = bench_in(opts, &db).await;
    db.remove().await;
    result
}

pub(crate) async fn bench_in(opts: &Options, db: &Scratch) -> anyhow::Result<()> {
    let vars: HashMap<&str, String> = [
        ("SCIMBUS_DATABASE_URL", db.url().to_owned()),
        ("SCIMBUS_LISTEN", "127.0.0.1:0".to_owned()),
        // Measure the service, not its per-token rate limit.
        ("SCIMBUS_RATE_LIMIT", "off".to_owned()),
    ]
    .into_iter()
    .collect();
    let settings = Settings::from_lookup(|k| vars.get(k).cloned())?;
    let app = Application::build(settings).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let ctx = app.context().clone();
    let server = tokio::spawn(app.run_until_stopped());
    let result = async {
        let alpha = tenants::create_tenant(&ctx, &Actor::system(), ALPHA).await?;
        let beta = tenants::create_tenant(&ctx, &Actor::system(), BETA).await?;
        let http = {
            scimbus::telemetry::install_tls_provider();
            reqwest::Client::builder()
        }
        .timeout(OKTA_TIMEOUT)
        .build()?;
        let api = |slug: &str, token: String| Api {
            http: http.clone(),
            base: format!("{address}/scim/v2/{slug}"),
            token,
        };
        let alpha_api = api(ALPHA, token(&ctx, ALPHA).await?);
        let beta_api = api(BETA, token(&ctx, BETA).await?);

        let t = Instant::now();
        let n = opts.users;
        // alpha: n users (the big group) + `replace` spares; beta: n users.
        let alpha_people = fill_users(&ctx, &alpha, 0, n).await?;
        let spares = fill_users(&ctx, &alpha, n, n + opts.replace).await?;
        let beta_people = if opts.queries {
            fill_users(&ctx, &beta, 0, n).await?
        } else {
            Vec::new()
        };
        settle(&ctx).await?;
        println!(
            "setup: {} + {} users (alpha) and {} users (beta) in {:.1} s (untimed)",
            alpha_people.len(),
            spares.len(),
            beta_people.len(),
            t.elapsed().as_secs_f64()
        );

        let groups = if opts.groups {
            let t = Instant::now();
            let g = bench_groups(opts, &ctx, &alpha_api, &alpha, &alpha_people, &spares).await?;
            println!("groups part: {:.1} s", t.elapsed().as_secs_f64());
            Some(g)
        } else {
            None
        };
        let queries = if opts.queries {
            settle(&ctx).await?;
            let t = Instant::now();
            // Alpha's users that every PUT keeps: each is in the big group, the first ones
            // also in the small one (when the groups part ran).
            let grouped =
                opts.groups
                    .then_some((&alpha_api, &alpha, &alpha_people[..n - opts.replace]));
            let q = bench_queries(
                opts,
                db.url(),
                &ctx,
                &beta_api,
                &beta,
                &beta_people,
                grouped,
            )
            .await?;
            println!("queries part: {:.1} s", t.elapsed().as_secs_f64());
            Some(q)
        } else {
            None
        };
        if let Some(g) = &groups {
            report_groups(opts, g);
        }
        if let Some(q) = &queries {
            report_queries(opts, q);
        }
        anyhow::Ok(())
    }
    .await;
    server.abort();
    ctx.store.close().await?;
    result
}

pub(crate) fn main() -> anyhow::Result<()> {
    let opts = Options::parse()?;
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(bench(&opts));
    runtime.shutdown_timeout(Duration::from_secs(2));
    println!("total: {:.1} s", started.elapsed().as_secs_f64());
    result
}
