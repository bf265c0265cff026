//! `/healthz` (the process answers) and `/readyz` (database reachable, migrations applied;
//! the relay's backlog and counters in the body).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::events::RelayMetrics;
use crate::service::Context;
use crate::store::outbox;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(ctx: web::Data<Context>) -> HttpResponse {
    let database = ctx.store.ping().await.is_ok();
    let migrations = database && ctx.store.migrations_applied().await.unwrap_or(false);
    // The relay's state is reported, not judged: a broker outage does not make the
    // service unready (SCIM writes go on; events wait in the outbox).
    let (backlog, oldest) = if migrations {
        outbox::backlog(ctx.store.conn()).await.unwrap_or((0, None))
    } else {
        (0, None)
    };
    let m = &ctx.relay_metrics;
    let body = json!({
        "status": if migrations { "ready" } else { "not ready" },
        "database": database,
        "migrations": migrations,
        "relay": {
            "backlog": backlog,
            "oldest_unpublished": oldest,
            "published": RelayMetrics::get(&m.published),
            "publish_failures": RelayMetrics::get(&m.publish_failures),
            "returned": RelayMetrics::get(&m.returned),
            "unpublishable": RelayMetrics::get(&m.unpublishable),
        },
    });
    if migrations {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
