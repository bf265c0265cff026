//! The relay inside `serve`: leadership on PostgreSQL (partitions, standbys, takeovers) and
//! background tenant purges announced on the broker.

use scimbus::events::RelayOutcome;

use crate::both_backends;
use crate::broker::{Proxy, TestQueue, amqp_url, body, cleanup, relay, relay_settings};
use crate::helpers::{Backend, spawn_app, spawn_app_with, user};

both_backends!(
    serve_with_an_amqp_url_relays_without_being_driven,
    a_served_tenant_deletion_is_purged_in_the_background_and_announced_on_the_broker,
);

async fn serve_with_an_amqp_url_relays_without_being_driven(backend: Backend) {
    let settings = relay_settings(&amqp_url());
    // Users only: the relay may publish the fixture's tenant.created before it is settled.
    let mut queue = TestQueue::bind(&settings, &["acme.user.*"], &[]).await;
    let app = spawn_app_with(
        backend,
        &[
            ("SCIMBUS_AMQP_URL", amqp_url()),
            ("SCIMBUS_AMQP_EXCHANGE", settings.exchange.clone()),
            (
                "SCIMBUS_AMQP_UNROUTED_EXCHANGE",
                settings.unrouted_exchange.clone(),
            ),
            (
                "SCIMBUS_AMQP_UNROUTED_QUEUE",
                settings.unrouted_queue.clone(),
            ),
            (
                "SCIMBUS_AMQP_UNROUTED_MAX_LENGTH",
                settings.unrouted_max_length.to_string(),
            ),
        ],
    )
    .await;
    let created = app.create_user(&user("bjensen")).await;
    let received = queue.take(1).await;
    assert_eq!(body(&received[0])["data"]["resource"], created);
    cleanup(&settings).await;
}

/// A leader cut off from the database by a partition (nothing answers, nothing is
/// closed on its side) gives up within its bounded operations instead of hanging for a
/// TCP timeout, and the standby, which tries the lock on its poll interval, takes over
/// once the server has let the dead session go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_gives_up_in_bounded_time_and_a_standby_takes_over() {
    let app = spawn_app(Backend::Postgres).await;
    let settings = relay_settings(&amqp_url());
    let mut queue = TestQueue::bind(&settings, &["#"], &[]).await;
    let proxy = Proxy::start("127.0.0.1:5432").await.unwrap();
    let direct = app.ctx.store.url().to_owned();
    let through_proxy = direct.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port()));
    assert_ne!(direct, through_proxy);
    let partitioned_store = scimbus::store::Store::connect(&through_proxy)
        .await
        .unwrap();
    let mut leader = scimbus::events::Relay::new(
        partitioned_store,
        app.ctx.clock.clone(),
        settings.clone(),
        app.ctx.relay_metrics.clone(),
    );
    let mut standby = relay(&app, &settings);
    app.create_user(&user("before")).await;
    assert!(matches!(
        leader.relay_once().await.unwrap(),
        RelayOutcome::Published { published: 1, .. }
    ));
    proxy.partition();
    app.create_user(&user("after")).await;
    // The cut-off leader answers within its bound, without publishing.
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(
        scimbus::events::leader::LEADER_TIMEOUT * 3,
        leader.relay_once(),
    )
    .await
    .expect("a partitioned leader gives up within its bounded operations");
    assert!(
        !matches!(outcome, Ok(RelayOutcome::Published { .. })),
        "{outcome:?} after {:?}",
        started.elapsed()
    );
    // The standby takes over and publishes what the leader could not.
    let mut published = false;
    for _ in 0..200 {
        if let RelayOutcome::Published { published: 1, .. } = standby.relay_once().await.unwrap() {
            published = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(published, "the standby took over");
    let received = queue.take(2).await;
    assert_eq!(body(&received[1])["data"]["resource"]["userName"], "after");
    standby.shutdown().await;
    cleanup(&settings).await;
}

/// A standby tries the lock on its poll interval only, on one kept connection: a burst of
/// wake-ups (a write each) opens no connection per wake-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_tries_the_lock_on_its_poll_interval_only() {
    let app = spawn_app(Backend::Postgres).await;
    let mut settings = relay_settings(&amqp_url());
    settings.poll_interval = std::time::Duration::from_secs(3600);
    let mut leader = relay(&app, &settings);
    let mut standby = relay(&app, &settings);
    assert!(!matches!(
        leader.relay_once().await.unwrap(),
        RelayOutcome::NotLeader
    ));
    for _ in 0..20 {
        assert_eq!(standby.relay_once().await.unwrap(), RelayOutcome::NotLeader);
    }
    assert_eq!(standby.leadership_attempts(), 1);
    leader.shutdown().await;
    standby.shutdown().await;
    cleanup(&settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_postgres_one_publishes_and_the_other_takes_over() {
    let app = spawn_app(Backend::Postgres).await;
    let settings = relay_settings(&amqp_url());
    let mut queue = TestQueue::bind(&settings, &["#"], &[]).await;
    app.create_user(&user("a")).await;
    let mut first = relay(&app, &settings);
    let mut second = relay(&app, &settings);
    assert_eq!(
        first.relay_once().await.unwrap(),
        RelayOutcome::Published {
            published: 1,
            held_back: 0
        }
    );
    app.create_user(&user("b")).await;
    assert_eq!(second.relay_once().await.unwrap(), RelayOutcome::NotLeader);
    first.shutdown().await;
    // The standby tries the lock again on its poll interval.
    let mut outcome = second.relay_once().await.unwrap();
    for _ in 0..50 {
        if outcome != RelayOutcome::NotLeader {
            break;
        }
        tokio::time::sleep(settings.poll_interval).await;
        outcome = second.relay_once().await.unwrap();
    }
    assert_eq!(
        outcome,
        RelayOutcome::Published {
            published: 1,
            held_back: 0
        }
    );
    assert_eq!(queue.take(2).await.len(), 2);
    second.shutdown().await;
    cleanup(&settings).await;
}

async fn a_served_tenant_deletion_is_purged_in_the_background_and_announced_on_the_broker(
    backend: Backend,
) {
    let settings = relay_settings(&amqp_url());
    let mut queue = TestQueue::bind(&settings, &["acme.tenant.*"], &[]).await;
    let app = spawn_app_with(
        backend,
        &[
            ("SCIMBUS_AMQP_URL", amqp_url()),
            ("SCIMBUS_AMQP_EXCHANGE", settings.exchange.clone()),
            (
                "SCIMBUS_AMQP_UNROUTED_EXCHANGE",
                settings.unrouted_exchange.clone(),
            ),
            (
                "SCIMBUS_AMQP_UNROUTED_QUEUE",
                settings.unrouted_queue.clone(),
            ),
            (
                "SCIMBUS_AMQP_UNROUTED_MAX_LENGTH",
                settings.unrouted_max_length.to_string(),
            ),
            ("SCIMBUS_MAINTENANCE", "on".to_owned()),
        ],
    )
    .await;
    for i in 0..3 {
        app.create_user(&user(&format!("user{i}"))).await;
    }
    let response = app
        .admin(reqwest::Method::DELETE, "/tenants/acme", None)
        .await;
    assert_eq!(response.status(), 204);
    // The deletion wakes the maintenance loop: no interval to wait for. The tenant's own
    // `tenant.created` (bound by `acme.tenant.*` too) may have gone out before the
    // fixture marked it published: it comes first if it did.
    let received = loop {
        let received = queue.take(1).await;
        if body(&received[0])["type"] != "scimbus.tenant.created" {
            break received;
        }
    };
    let event = body(&received[0]);
    assert_eq!(event["type"], "scimbus.tenant.deleted");
    assert_eq!(event["data"]["tenant"], "acme");
    assert_eq!(received[0].routing_key.as_str(), "acme.tenant.deleted");
    let tenant = app.tenant_row().await;
    assert!(tenant.purged_at.is_some());
    cleanup(&settings).await;
}
