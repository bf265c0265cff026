use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

both_backends!(healthz_and_readyz_answer_200_once_up);

async fn healthz_and_readyz_answer_200_once_up(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/healthz", "/readyz"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let ready: serde_json::Value = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], true);
    assert_eq!(ready["migrations"], true);
    assert_eq!(ready["relay"]["backlog"], 0);
    assert_eq!(ready["relay"]["published"], 0);
}
