//! `/healthz` (the process answers), `/readyz` (database reachable, migrations applied;
//! the relay's backlog and counters in the body) and `/metrics`.

use actix_web::get;
use actix_web::{HttpResponse, web};
use serde_json::json;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::events::RelayMetrics;
use crate::service::{Context, readiness};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(healthz)
        .service(readyz)
        .service(super::metrics::metrics);
    super::other_methods(cfg, &["/healthz", "/readyz", "/metrics"]);
}

/// Liveness: the process serves.
#[utoipa::path(
    operation_id = "healthz",
    tag = "Operations",
    security(()),
    responses((status = 200, description = "The process serves", body = super::openapi::Health))
)]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: the database answers and every migration this binary knows is applied. The
/// relay's state is reported, never a reason to be unready.
#[utoipa::path(
    operation_id = "readyz",
    tag = "Operations",
    security(()),
    responses(
        (status = 200, description = "Ready", body = super::openapi::Ready),
        (status = 503, description = "Database down or migrations missing", body = super::openapi::Ready),
    )
)]
#[get("/readyz")]
async fn readyz(ctx: web::Data<Context>) -> HttpResponse {
    let database = ctx.store.ping().await.is_ok();
    let migrations = database && ctx.store.migrations_applied().await.unwrap_or(false);
    // The relay's state is reported, not judged: a broker outage does not make the
    // service unready (SCIM writes go on; events wait in the outbox).
    let backlog = if migrations {
        readiness::backlog(&ctx).await.unwrap_or_default()
    } else {
        readiness::Backlog::default()
    };
    let m = &ctx.relay_metrics;
    let body = json!({
        "status": if migrations { "ready" } else { "not ready" },
        "database": database,
        "migrations": migrations,
        "relay": {
            "backlog": backlog.events,
            "oldest_unpublished": backlog.oldest,
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
