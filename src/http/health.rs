//! `/healthz` (the process answers) and `/readyz` (database reachable, migrations applied).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::service::Context;

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
    let body = json!({
        "status": if migrations { "ready" } else { "not ready" },
        "database": database,
        "migrations": migrations,
    });
    if migrations {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
