//! `/healthz` (the process answers), `/readyz` (database reachable, migrations applied;
//! the relay's backlog and counters in the body) and `/metrics`.

use actix_web::get;
use actix_web::{HttpResponse, web};
use serde_json::json;
use utoipa_actix_web::service_config::ServiceConfig;

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
    let r = readiness::check(&ctx).await;
    let body = json!({
        "status": if r.migrations { "ready" } else { "not ready" },
        "database": r.database,
        "migrations": r.migrations,
        "relay": {
            "backlog": r.backlog.events,
            "oldest_unpublished": r.backlog.oldest,
            "published": r.relay.published,
            "publish_failures": r.relay.publish_failures,
            "returned": r.relay.returned,
            "unpublishable": r.relay.unpublishable,
        },
    });
    if r.migrations {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
