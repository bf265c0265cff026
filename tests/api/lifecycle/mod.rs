//! Tenant lifecycle, retention, erasure, token rotation and the audit log (DESIGN 13, 15),
//! stepping `service::maintenance` directly so nothing waits on time.

use scimbus::domain::TenantSlug;
use scimbus::store::tenants;

use crate::helpers::{TestApp, user};

mod audit;
mod retention;
mod tenant;

async fn create_users(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let u = app.create_user(&user(&format!("user{i}"))).await;
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn tenant_row(app: &TestApp, slug: &str) -> Option<scimbus::domain::Tenant> {
    tenants::find(app.ctx.store.conn(), &TenantSlug::parse(slug).unwrap())
        .await
        .unwrap()
}
