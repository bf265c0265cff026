//! Fault injection (issue: reliability), against a private PostgreSQL cluster (`initdb` in a
//! temporary directory, its own port) and a TCP proxy in front of RabbitMQ — never the
//! machine's shared services. Four faults during a write load on the real binary:
//! `kill -9` of scimbus, a restart of PostgreSQL, a broker cut, and a SET push receiver
//! that is down across a `kill -9`. Each run reports
//! acknowledged writes, delivered events, lost ones (must be 0) and duplicates (allowed,
//! identified by event id).
//!
//! The tests run one at a time (one lock) and in a short variant; `scripts/fault-injection`
//! runs the long one (`SCIMBUS_FAULTS_LONG=1`: more writes, a 60 s broker cut).
//!
//! They are `#[ignore]`d, so a plain `cargo test` (a minute of private clusters and killed
//! processes) leaves them out; `scripts/test`, which CI runs, runs them with `--ignored`.
//! Ignoring rather than a cargo feature keeps one build of the crate for both runs.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use harness::{Consumer, Scimbus, Tenant, long_run, private_cluster, report};
use scimbus_support::amqp::broker_address;
use scimbus_support::proxy::Proxy;
use scimbus_support::set_receiver::PushReceiver;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Writes every acknowledged creation's id, and counts the answers by status.
#[derive(Debug, Default)]
struct Load {
    acknowledged: Vec<String>,
    statuses: HashMap<u16, u64>,
    transport_errors: u64,
}

async fn create_users(tenant: &Tenant, base: &str, prefix: &str, n: usize) -> Load {
    let client = {
        scimbus::telemetry::install_tls_provider();
        reqwest::Client::new()
    };
    let mut load = Load::default();
    for i in 0..n {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("{prefix}-{i}@example.com"),
        });
        match client
            .post(format!("{base}/scim/v2/{}/Users", tenant.slug))
            .bearer_auth(&tenant.token)
            .timeout(Duration::from_secs(30))
            .json(&body)
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status().as_u16();
                *load.statuses.entry(status).or_default() += 1;
                if status == 201 {
                    let created: serde_json::Value = response.json().await.unwrap();
                    load.acknowledged
                        .push(created["id"].as_str().unwrap().to_owned());
                }
            }
            Err(_) => load.transport_errors += 1,
        }
    }
    load
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: scripts/test runs it (--ignored)"]
async fn kill_9_during_writes_loses_no_acknowledged_write_or_event() {
    let _serial = SERIAL.lock().await;
    let n = if long_run() { 2000 } else { 200 };
    let pg = private_cluster();
    let consumer = Consumer::bind().await;
    let mut scimbus = Scimbus::start(&pg.url(), &consumer.settings, None).await;
    let tenant = scimbus.tenant("faults").await;

    // The load runs against the first process; it is killed once a quarter is in.
    let base = scimbus.base.clone();
    let writer = {
        let tenant = tenant.clone();
        tokio::spawn(async move { create_users(&tenant, &base, "k", n).await })
    };
    consumer.wait_for(n / 4, Duration::from_secs(60)).await;
    scimbus.kill9();
    let load = writer.await.unwrap();
    // Restart on the same database: the relay publishes what was committed but unpublished.
    let scimbus = Scimbus::start(&pg.url(), &consumer.settings, None).await;
    let acknowledged: HashSet<&String> = load.acknowledged.iter().collect();
    let delivered = consumer
        .until_subjects(&acknowledged, Duration::from_secs(120))
        .await;
    for id in &acknowledged {
        assert_eq!(
            scimbus.status_of(&tenant, id).await,
            200,
            "user {id} is stored"
        );
    }
    let summary = report("kill -9 of scimbus", &load.acknowledged, &delivered);
    println!(
        "{summary} (answers {:?}, transport errors {})",
        load.statuses, load.transport_errors
    );
    assert_eq!(summary.lost, 0, "{summary}");
    assert!(load.acknowledged.len() < n, "the kill cut the load short");
    drop(scimbus);
    consumer.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: scripts/test runs it (--ignored)"]
async fn a_postgresql_restart_answers_503_then_recovers_without_restarting_scimbus() {
    let _serial = SERIAL.lock().await;
    let n = if long_run() { 1000 } else { 150 };
    let pg = private_cluster();
    let consumer = Consumer::bind().await;
    let scimbus = Scimbus::start(&pg.url(), &consumer.settings, None).await;
    let tenant = scimbus.tenant("faults").await;

    let base = scimbus.base.clone();
    let writer = {
        let tenant = tenant.clone();
        tokio::spawn(async move { create_users(&tenant, &base, "p", n).await })
    };
    consumer.wait_for(n / 4, Duration::from_secs(60)).await;
    pg.restart().await.unwrap();
    let load = writer.await.unwrap();
    // During the outage answers are 503 SCIM errors, never 500; then writes work again.
    let unexpected: Vec<(&u16, &u64)> = load
        .statuses
        .iter()
        .filter(|(s, _)| **s != 201 && **s != 503)
        .collect();
    assert!(unexpected.is_empty(), "{:?}", load.statuses);
    let after = create_users(&tenant, &scimbus.base, "after", 10).await;
    assert_eq!(after.acknowledged.len(), 10, "{:?}", after.statuses);

    let mut all = load.acknowledged.clone();
    all.extend(after.acknowledged.iter().cloned());
    let acknowledged: HashSet<&String> = all.iter().collect();
    let delivered = consumer
        .until_subjects(&acknowledged, Duration::from_secs(120))
        .await;
    let summary = report("PostgreSQL restart", &all, &delivered);
    println!("{summary} (answers {:?})", load.statuses);
    assert_eq!(summary.lost, 0, "{summary}");
    drop(scimbus);
    consumer.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: scripts/test runs it (--ignored)"]
async fn a_broker_cut_fails_no_write_loses_no_event_and_keeps_per_resource_order() {
    let _serial = SERIAL.lock().await;
    let cut_for = if long_run() {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(3)
    };
    let pg = private_cluster();
    let consumer = Consumer::bind().await;
    let proxy = Proxy::start(&broker_address()).await.unwrap();
    let scimbus = Scimbus::start(&pg.url(), &consumer.settings, Some(&proxy.url())).await;
    let tenant = scimbus.tenant("faults").await;

    let first = create_users(&tenant, &scimbus.base, "before", 20).await;
    consumer.wait_for(20, Duration::from_secs(60)).await;
    proxy.cut();
    // Writes during the cut: creations and updates of the same users (order matters).
    let during = create_users(&tenant, &scimbus.base, "during", 40).await;
    let client = {
        scimbus::telemetry::install_tls_provider();
        reqwest::Client::new()
    };
    let mut updates = 0;
    for id in first.acknowledged.iter().take(10) {
        for title in ["a", "b", "c"] {
            let status = client
                .patch(format!(
                    "{}/scim/v2/{}/Users/{id}",
                    scimbus.base, tenant.slug
                ))
                .bearer_auth(&tenant.token)
                .json(&serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "title", "value": title}]
                }))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200, "a write failed during the broker cut");
            updates += 1;
        }
    }
    assert_eq!(during.acknowledged.len(), 40, "{:?}", during.statuses);
    tokio::time::sleep(cut_for).await;
    proxy.restore();

    let mut all = first.acknowledged.clone();
    all.extend(during.acknowledged.iter().cloned());
    let acknowledged: HashSet<&String> = all.iter().collect();
    let delivered = consumer
        .until_versions(&acknowledged, 3 * 10, Duration::from_secs(180))
        .await;
    let summary = report("broker cut", &all, &delivered);
    println!("{summary} ({updates} updates during the cut)");
    assert_eq!(summary.lost, 0, "{summary}");
    // Per resource, versions arrive in order (duplicates aside).
    let mut last: HashMap<String, i64> = HashMap::new();
    for event in &delivered {
        let version = event.version;
        let previous = last.insert(event.subject.clone(), version).unwrap_or(0);
        assert!(
            version >= previous,
            "{}: version {version} after {previous}",
            event.subject
        );
    }
    drop(scimbus);
    consumer.cleanup().await;
}

/// The user ids of the `prov:create` SETs a receiver accepted, how many SETs it accepted in
/// all, and how many distinct `jti`s.
fn accepted_creations(receiver: &PushReceiver) -> (HashSet<String>, usize, usize) {
    let accepted = receiver.accepted();
    let created = accepted
        .iter()
        .filter(|r| {
            r.claims["events"]
                .as_object()
                .is_some_and(|e| e.contains_key("urn:ietf:params:scim:event:prov:create:full"))
        })
        .filter_map(|r| r.claims["sub_id"]["id"].as_str().map(str::to_owned))
        .collect();
    let unique = accepted
        .iter()
        .filter_map(|r| r.claims["jti"].as_str())
        .collect::<HashSet<_>>()
        .len();
    (created, accepted.len(), unique)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: scripts/test runs it (--ignored)"]
async fn a_set_push_receiver_outage_and_a_kill_9_lose_no_set() {
    let _serial = SERIAL.lock().await;
    let n = if long_run() { 2000 } else { 200 };
    let pg = private_cluster();
    let consumer = Consumer::bind().await;
    // Down (503) until scimbus has been killed and restarted.
    let receiver = PushReceiver::start().await.unwrap();
    receiver.answer(std::sync::Arc::new(|_| (503, None, vec![])));
    let settings = [
        (
            "SCIMBUS_SET_KEY_SECRET",
            "faults-set-key-secret-0123456789abcdef",
        ),
        ("SCIMBUS_SET_PUSH_ALLOW_PRIVATE", "on"),
        ("SCIMBUS_SET_PUSH_FAILING_AFTER_SECONDS", "1"),
    ];
    let mut scimbus = Scimbus::start_with(&pg.url(), &consumer.settings, None, &settings).await;
    let tenant = scimbus.tenant("faults").await;
    let client = {
        scimbus::telemetry::install_tls_provider();
        reqwest::Client::new()
    };
    let registered = client
        .post(format!(
            "{}/admin/v1/tenants/faults/receivers",
            scimbus.base
        ))
        .bearer_auth(harness::ADMIN_TOKEN)
        .json(&serde_json::json!({"name": "pushed", "endpoint": receiver.url, "after": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);

    // The receiver is down while writes go on; scimbus is killed a quarter in, restarted,
    // and the receiver comes back only then.
    let base = scimbus.base.clone();
    let writer = {
        let tenant = tenant.clone();
        tokio::spawn(async move { create_users(&tenant, &base, "s", n).await })
    };
    consumer.wait_for(n / 4, Duration::from_secs(60)).await;
    scimbus.kill9();
    let load = writer.await.unwrap();
    let scimbus = Scimbus::start_with(&pg.url(), &consumer.settings, None, &settings).await;
    // It is marked failing (after a second of failures), and still retried.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let listed: serde_json::Value = client
            .get(format!(
                "{}/admin/v1/tenants/faults/receivers",
                scimbus.base
            ))
            .bearer_auth(harness::ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if listed["receivers"][0]["state"] == "failing" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never marked failing: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    receiver.answer(std::sync::Arc::new(|_| (202, None, vec![])));
    let acknowledged: HashSet<String> = load.acknowledged.iter().cloned().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let (created, received, unique) = loop {
        let (created, received, unique) = accepted_creations(&receiver);
        if acknowledged.is_subset(&created) || tokio::time::Instant::now() > deadline {
            break (created, received, unique);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let lost = acknowledged.difference(&created).count();
    println!(
        "SET push through a receiver outage and a kill -9: {} writes acknowledged, {} SETs \
         received, {} lost, {} duplicates",
        acknowledged.len(),
        received,
        lost,
        received - unique
    );
    assert_eq!(lost, 0);
    assert!(load.acknowledged.len() < n, "the kill cut the load short");
    drop(scimbus);
    consumer.cleanup().await;
}
