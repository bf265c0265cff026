//! Groups: member PATCHes on a small and a large group, full-list PUTs, and a probe of
//! writes meanwhile.

use super::*;

pub(crate) struct GroupFigures {
    pub(crate) small: usize,
    pub(crate) big: usize,
    pub(crate) add_small: Vec<f64>,
    pub(crate) add_big: Vec<f64>,
    pub(crate) remove_small: Vec<f64>,
    pub(crate) remove_big: Vec<f64>,
    pub(crate) put_body_bytes: usize,
    pub(crate) put_response_bytes: usize,
    pub(crate) put: Vec<f64>,
    /// Probe PATCHes to the small group while a PUT ran: (ms, status).
    pub(crate) probes: Vec<(f64, u16)>,
}

pub(crate) fn patch_add(id: &str) -> Value {
    json!({"schemas": [PATCH_URN], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": id}]}
    ]})
}

pub(crate) fn patch_remove(id: &str) -> Value {
    json!({"schemas": [PATCH_URN], "Operations": [
        {"op": "remove", "path": format!("members[value eq \"{id}\"]")}
    ]})
}

pub(crate) fn group_body(name: &str, member_ids: &[&String]) -> Value {
    let members: Vec<Value> = member_ids.iter().map(|id| json!({"value": id})).collect();
    json!({"schemas": [GROUP_URN], "displayName": name, "members": members})
}

/// The group's member count, read as the service reads it (`store::members::counts`).
pub(crate) async fn member_count(
    ctx: &Context,
    tenant: &Tenant,
    group: &str,
) -> anyhow::Result<i64> {
    let counts = members::counts(ctx.store.conn(), &tenant.id, &[ResourceId::from(group)]).await?;
    Ok(counts
        .get(group)
        .map_or(0, |&n| i64::try_from(n).unwrap_or(i64::MAX)))
}

pub(crate) async fn bench_groups(
    opts: &Options,
    ctx: &Context,
    api: &Api,
    tenant: &Tenant,
    people: &[Known],
    spares: &[Known],
) -> anyhow::Result<GroupFigures> {
    let ids: Vec<String> = people.iter().map(|k| k.id.clone()).collect();
    let t = Instant::now();
    let small = make_group(ctx, tenant, "Small", &ids[..opts.small]).await?;
    let big = make_group(ctx, tenant, "Everyone", &ids).await?;
    settle(ctx).await?;
    println!(
        "setup: groups of {} and {} members in {:.1} s (untimed)",
        opts.small,
        ids.len(),
        t.elapsed().as_secs_f64()
    );
    let newcomer = &spares[0].id;
    let path = |g: &str| format!("/Groups/{g}");
    let mut f = GroupFigures {
        small: opts.small,
        big: ids.len(),
        add_small: Vec::new(),
        add_big: Vec::new(),
        remove_small: Vec::new(),
        remove_big: Vec::new(),
        put_body_bytes: 0,
        put_response_bytes: 0,
        put: Vec::new(),
        probes: Vec::new(),
    };
    // Warm-up (not measured), then add/remove alternating, the two groups interleaved and
    // taking turns going first.
    let warm_up = 10;
    for rep in 0..warm_up + opts.patches {
        let order = if rep % 2 == 0 {
            [(&small, true), (&big, false)]
        } else {
            [(&big, false), (&small, true)]
        };
        for (group, is_small) in order {
            let add = api
                .write(
                    reqwest::Method::PATCH,
                    &path(group),
                    &patch_add(newcomer),
                    OKTA_TIMEOUT,
                )
                .await?;
            ensure!(add.status == 204, "PATCH add answered {}", add.status);
            let remove = api
                .write(
                    reqwest::Method::PATCH,
                    &path(group),
                    &patch_remove(newcomer),
                    OKTA_TIMEOUT,
                )
                .await?;
            ensure!(
                remove.status == 204,
                "PATCH remove answered {}",
                remove.status
            );
            if rep >= warm_up {
                let (adds, removes) = if is_small {
                    (&mut f.add_small, &mut f.remove_small)
                } else {
                    (&mut f.add_big, &mut f.remove_big)
                };
                adds.push(ms(add.elapsed));
                removes.push(ms(remove.elapsed));
            }
        }
    }
    ensure!(member_count(ctx, tenant, &big).await? == ids.len() as i64);
    ensure!(member_count(ctx, tenant, &small).await? == opts.small as i64);

    // PUTs of the full list, as Okta sends it: each keeps all but `replace` of the current
    // members and brings in `replace` others. Runs alternate between the two lists (the
    // last `replace` members out and the spares in, then back), so each run starts from
    // 100 000 members and is the same change. The small group's members are never touched.
    let keep = ids.len() - opts.replace;
    let swapped: Vec<&String> = ids[..keep]
        .iter()
        .chain(spares.iter().map(|k| &k.id))
        .collect();
    let original: Vec<&String> = ids.iter().collect();
    let bodies = [
        group_body("Everyone", &swapped),
        group_body("Everyone", &original),
    ];
    f.put_body_bytes = bodies[0].to_string().len();
    let put_timeout = Duration::from_secs(300);
    for run in 0..opts.puts {
        // A probe: PATCHes to the small group on new connections, every 250 ms while the
        // PUT runs (does one big PUT hold up other writes?).
        let done = Arc::new(AtomicBool::new(false));
        let probe = tokio::spawn(probe_writes(
            api.base.clone(),
            api.token.clone(),
            small.clone(),
            newcomer.clone(),
            done.clone(),
        ));
        let reply = api
            .write(
                reqwest::Method::PUT,
                &path(&big),
                &bodies[run % 2],
                put_timeout,
            )
            .await;
        done.store(true, Ordering::Relaxed);
        let probes = probe.await?;
        let reply = reply?;
        f.put_response_bytes = reply.body.len();
        f.put.push(ms(reply.elapsed));
        ensure!(member_count(ctx, tenant, &big).await? == ids.len() as i64);
        let statuses: Vec<u16> = probes.iter().map(|p| p.1).collect();
        let waits: Vec<f64> = probes.iter().map(|p| p.0).collect();
        println!(
            "PUT run {}: keep {keep}, replace {} of {}: {:.0} ms ({} B response); probe PATCHes meanwhile: {} sent, statuses {:?}, median {:.0} ms, max {:.0} ms",
            run + 1,
            opts.replace,
            ids.len(),
            ms(reply.elapsed),
            reply.body.len(),
            probes.len(),
            distinct(&statuses),
            median(&waits),
            max(&waits),
        );
        f.probes.extend(probes);
    }
    Ok(f)
}

/// PATCHes add and remove `member` on `group` alternately, each on a new connection, every
/// 250 ms until `done` (at most 2 400); each one's time and status. Leaves `member` out.
pub(crate) async fn probe_writes(
    base: String,
    token: String,
    group: String,
    member: String,
    done: Arc<AtomicBool>,
) -> Vec<(f64, u16)> {
    let Ok(client) = {
        scimbus::telemetry::install_tls_provider();
        reqwest::Client::builder()
    }
    .timeout(Duration::from_secs(300))
    .pool_max_idle_per_host(0)
    .build() else {
        return Vec::new();
    };
    let url = format!("{base}/Groups/{group}");
    let send = |body: Value| {
        let request = client
            .patch(&url)
            .bearer_auth(&token)
            .header("Content-Type", "application/scim+json")
            .body(body.to_string());
        async move {
            let start = Instant::now();
            let status = match request.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let _ = r.bytes().await;
                    status
                }
                Err(_) => 0,
            };
            (ms(start.elapsed()), status)
        }
    };
    let mut out = Vec::new();
    let mut added = false;
    for k in 0..2400 {
        if done.load(Ordering::Relaxed) {
            break;
        }
        let body = if k % 2 == 0 {
            patch_add(&member)
        } else {
            patch_remove(&member)
        };
        let (took, status) = send(body).await;
        if status == 204 {
            added = k % 2 == 0;
        }
        out.push((took, status));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if added {
        send(patch_remove(&member)).await;
    }
    out
}

pub(crate) fn distinct(statuses: &[u16]) -> Vec<(u16, usize)> {
    let mut out: Vec<(u16, usize)> = Vec::new();
    for s in statuses {
        match out.iter_mut().find(|(k, _)| k == s) {
            Some(entry) => entry.1 += 1,
            None => out.push((*s, 1)),
        }
    }
    out
}
