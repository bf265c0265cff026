//! The relay against the real RabbitMQ: order, envelope, unrouted keys, outages through a
//! TCP proxy, redelivery after a crash, nacks mid-batch, leadership, parked events.

use serde_json::json;

use crate::broker::amqp_url;
use crate::helpers::{TestApp, user};

mod delivery;
mod leadership;

async fn write_lifecycle(app: &TestApp) -> String {
    let created = app.create_user(&user("bjensen")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    let mut body = user("bjensen");
    body["title"] = json!("Guide");
    assert_eq!(app.put(&path, &body).await.status(), 200);
    body["active"] = json!(false);
    assert_eq!(app.put(&path, &body).await.status(), 200);
    assert_eq!(app.delete(&path).await.status(), 204);
    id
}

/// The same names as `settings`, reached directly rather than through the proxy.
fn relay_settings_named(
    settings: &scimbus::config::RelaySettings,
) -> scimbus::config::RelaySettings {
    let mut direct = settings.clone();
    direct.amqp_url = secrecy::SecretString::from(amqp_url());
    direct
}
