//! `journal-paired`: what journaling a request costs that request, measured as pairs in
//! one run. In each round one `serve` journals one of the two seeded tenants and not the
//! other (`SCIMBUS_JOURNAL_TENANTS_OFF`); every connection alternates between the two,
//! sending the same units (a create, a PATCH and a PUT of a seeded user) to each. Both halves
//! share the same seconds, the same process, the same database and the journal writer's
//! background work, so the machine's drift (which moves separate runs by 10–35 % here)
//! falls on both alike, and what differs between them is the request path's own cost of
//! the journal. The tenants are not alike (the first one's users are in groups, which its
//! answers list), so the rounds cross over: odd rounds journal the first tenant, even
//! rounds the second, and the geometric mean of the ratios over both cancels the tenants'
//! difference.

use super::*;

/// The tags of one operation: journaled, then not.
const TAGS: [(&str, &str); 3] = [
    ("POST /Users · journal on", "POST /Users · journal off"),
    (
        "PATCH active=false · journal on",
        "PATCH active=false · journal off",
    ),
    (
        "PUT /Users/{id} · journal on",
        "PUT /Users/{id} · journal off",
    ),
];

/// One unit in the tenant of `base` and `token`, tagged by whether it is journaled.
fn unit(base: &str, token: &Arc<str>, journaled: bool, user: &str) -> Vec<Req> {
    let tag = |k: usize| if journaled { TAGS[k].0 } else { TAGS[k].1 };
    let mut create = create_req_in(base).with_token(token);
    create.tag = tag(0);
    let mut put_patch = patch_put_unit(user);
    for (k, r) in put_patch.iter_mut().enumerate() {
        r.tag = tag(k + 1);
        r.path = r.path.replacen(BASE, base, 1);
        r.token = Some(token.clone());
    }
    let mut all = vec![create];
    all.extend(put_patch);
    all
}

impl Bench {
    pub(crate) async fn journal_paired(&mut self) -> anyhow::Result<String> {
        println!("\n## journal-paired");
        let tenants = match (self.tenants.first(), self.tenants.get(1)) {
            (Some(a), Some(b)) => [a.clone(), b.clone()],
            _ => anyhow::bail!("journal-paired needs two seeded tenants"),
        };
        // The PATCHes deactivate hundreds of users a second: the brake would hold both
        // tenants' events after the first 500, for the rest of the run. Off for the pairs,
        // then as it was.
        let mut kept = Vec::new();
        for t in &tenants {
            let shown: Value =
                serde_json::from_str(&self.cli(&["brake", "show", "--tenant", &t.slug]).await?)?;
            let mut settings = shown["settings"].clone();
            settings["enabled"] = Value::Bool(false);
            let file = self.dir.join(format!("brake-{}.json", t.slug));
            std::fs::write(&file, settings.to_string())?;
            self.set_brake(&t.slug, &file).await?;
            let before = self.dir.join(format!("brake-{}-before.json", t.slug));
            std::fs::write(&before, shown["settings"].to_string())?;
            // Settings of its own, or the defaults (which `brake set` would pin).
            let custom = shown["custom"].as_bool().unwrap_or(true);
            kept.push((t.clone(), before, custom));
        }
        let result = self.journal_rounds(&tenants).await;
        self.stop_serve().await?;
        for (t, before, custom) in &kept {
            if *custom {
                self.set_brake(&t.slug, before).await?;
            } else {
                self.cluster.query(&format!(
                    "UPDATE tenant_brakes SET settings = NULL WHERE tenant_id = '{}'",
                    t.id
                ))?;
            }
        }
        self.start_serve().await?;
        result
    }

    async fn set_brake(&self, slug: &str, file: &std::path::Path) -> anyhow::Result<()> {
        let file = file
            .to_str()
            .context("a work directory path that is not UTF-8")?;
        self.cli(&["brake", "set", "--tenant", slug, "--file", file])
            .await?;
        Ok(())
    }

    async fn journal_rounds(&mut self, tenants: &[TenantRef; 2]) -> anyhow::Result<String> {
        let probed = PROBED.min(self.args.users);
        let mut out = String::from(
            "| round | journaled tenant | request | journal on: p50 / p90 / p99, mean (n) | journal off: p50 / p90 / p99, mean (n) | on / off: p50, mean |\n|---|---|---|---|---|---|",
        );
        let mut ratios: Vec<Vec<(f64, f64)>> = vec![Vec::new(); TAGS.len()];
        let rounds = self.args.journal_rounds.max(1);
        for round in 1..=rounds {
            let (on, off) = if round % 2 == 1 {
                (&tenants[0], &tenants[1])
            } else {
                (&tenants[1], &tenants[0])
            };
            // The serving process, again, with the other tenant's journal off, and nothing
            // of that tenant in the journal.
            self.stop_serve().await?;
            self.cluster.query(&format!(
                "DELETE FROM request_journal WHERE tenant_id = '{}'",
                off.id
            ))?;
            let mut env = self.scimbus_env("postgres", true);
            env.push(("SCIMBUS_JOURNAL_TENANTS_OFF".to_owned(), off.slug.clone()));
            self.serve = Some(Server::start(&self.bin, "serve", &env).await?);
            let serve = self.serve.as_ref().context("scimbus is not serving")?;
            let target = self.target(serve);
            let (a, b) = (
                (on.base(), on.token.clone()),
                (off.base(), off.token.clone()),
            );
            let result = load::closed_loop(
                &target,
                self.args.connections,
                Duration::from_secs(self.args.warmup),
                Duration::from_secs(self.args.measure),
                &self.groups(),
                move |w, n| {
                    // Each connection alternates, starting with its own half: at any
                    // moment half the connections send to each tenant.
                    let journaled = (w as u64 + n).is_multiple_of(2);
                    let (base, token) = if journaled { &a } else { &b };
                    unit(base, token, journaled, &random_user(probed))
                },
            )
            .await?;
            if result.errors > 0 {
                anyhow::bail!(
                    "journal-paired: {} failed requests, first: {}",
                    result.errors,
                    result.first_error.unwrap_or_default()
                );
            }
            for (k, (tag_on, tag_off)) in TAGS.iter().enumerate() {
                let (Some(x), Some(y)) = (result.per_tag.get(tag_on), result.per_tag.get(tag_off))
                else {
                    continue;
                };
                let ratio = (x.p50 / y.p50.max(1e-9), x.mean / y.mean.max(1e-9));
                ratios[k].push(ratio);
                out.push_str(&format!(
                    "\n| {round} | {} | {} | {}, {:.2} ms ({}) | {}, {:.2} ms ({}) | {:.3}, {:.3} |",
                    on.slug,
                    tag_on.trim_end_matches(" · journal on"),
                    x.render(),
                    x.mean,
                    x.count,
                    y.render(),
                    y.mean,
                    y.count,
                    ratio.0,
                    ratio.1
                ));
            }
            // The writer lingers before it writes.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let count = |t: &TenantRef| -> anyhow::Result<u64> {
                Ok(self
                    .cluster
                    .query(&format!(
                        "SELECT count(*) FROM request_journal WHERE tenant_id = '{}'",
                        t.id
                    ))?
                    .trim()
                    .parse()?)
            };
            let (journaled, leaked) = (count(on)?, count(off)?);
            println!(
                "  round {round} of {rounds}: {:.0} req/s; journal rows of {}: {journaled}, of {}: {leaked}",
                result.throughput(),
                on.slug,
                off.slug
            );
            if journaled == 0 || leaked > 0 {
                anyhow::bail!(
                    "journal-paired: {} has {journaled} journal rows (want some), {} has {leaked} (want none)",
                    on.slug,
                    off.slug
                );
            }
        }
        for (k, (tag_on, _)) in TAGS.iter().enumerate() {
            let geo = |f: fn(&(f64, f64)) -> f64| {
                let logs: Vec<f64> = ratios[k].iter().map(|r| f(r).ln()).collect();
                (logs.iter().sum::<f64>() / logs.len().max(1) as f64).exp()
            };
            out.push_str(&format!(
                "\n| geometric mean of {rounds} | both | {} | | | {:.3}, {:.3} |",
                tag_on.trim_end_matches(" · journal on"),
                geo(|r| r.0),
                geo(|r| r.1)
            ));
        }
        println!("{out}");
        Ok(out)
    }
}
