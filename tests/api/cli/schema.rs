//! `scimbus schema`: dry runs, register, update, remove, and following the jobs.

use super::{run_ok, scimbus, start_demo};

#[tokio::test]
async fn schema_commands_dry_run_register_update_remove_and_follow_jobs() {
    const EXT: &str = "urn:example:cli:1.0:User";
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url, token) = start_demo(&dir).await;
    let client = crate::helpers::client();
    for (name, badge) in [
        ("ada", serde_json::json!(7)),
        ("bob", serde_json::json!("B-12")),
    ] {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", EXT],
            "userName": name, EXT: {"badge": badge}
        });
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    server.kill().await.unwrap();
    let file = |name: &str, badge: &str| {
        let path = dir.path().join(name);
        let definition =
            serde_json::json!({"id": EXT, "attributes": [{"name": "badge", "type": badge}]});
        std::fs::write(&path, definition.to_string()).unwrap();
        path.display().to_string()
    };
    let integer = file("integer.json", "integer");
    let decimal = file("decimal.json", "decimal");
    let string = file("string.json", "string");

    let dry = run_ok(
        &dir,
        &[
            "schema",
            "register",
            "--tenant",
            "demo",
            "--file",
            &integer,
            "--dry-run",
        ],
    )
    .await;
    assert!(
        dry.contains("nothing stored")
            && dry
                .contains("2 User resources checked, 2 hold values under the URN, 1 would not fit"),
        "{dry}"
    );
    assert_eq!(
        run_ok(&dir, &["schema", "list", "--tenant", "demo"]).await,
        ""
    );

    // Not on a terminal: no progress bar drawn, no escape codes; the report at the end.
    let registered = run_ok(
        &dir,
        &["schema", "register", "--tenant", "demo", "--file", &integer],
    )
    .await;
    assert!(
        registered.contains("succeeded; 2 resources re-indexed, 1 with values that do not fit"),
        "{registered}"
    );
    assert!(
        registered.contains("badge` must be an integer"),
        "{registered}"
    );
    assert!(!registered.contains('\u{1b}'), "{registered:?}");
    let updated = run_ok(
        &dir,
        &["schema", "update", "--tenant", "demo", "--file", &decimal],
    )
    .await;
    assert!(
        updated.contains(&format!("schema {EXT} updated")) && updated.contains("succeeded"),
        "{updated}"
    );
    let narrowing = scimbus(&dir)
        .args(["schema", "update", "--tenant", "demo", "--file", &string])
        .output()
        .await
        .unwrap();
    assert!(!narrowing.status.success());
    assert!(
        String::from_utf8_lossy(&narrowing.stderr).contains("widen"),
        "{narrowing:?}"
    );

    // Queued without waiting, then followed (and run here: no server holds it).
    let queued = run_ok(
        &dir,
        &["schema", "remove", "--tenant", "demo", EXT, "--no-wait"],
    )
    .await;
    let id = queued
        .split("re-index job ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(
        queued.contains("scimbus schema job --tenant demo"),
        "{queued}"
    );
    let listed = run_ok(&dir, &["schema", "jobs", "--tenant", "demo"]).await;
    assert!(
        listed
            .lines()
            .next()
            .unwrap()
            .starts_with(&format!("{id}\tqueued\tremove {EXT}")),
        "{listed}"
    );
    let followed = run_ok(&dir, &["schema", "job", "--tenant", "demo", &id]).await;
    assert!(
        followed.contains(&format!("job {id}: succeeded; 2 resources re-indexed")),
        "{followed}"
    );
    assert_eq!(
        run_ok(&dir, &["schema", "list", "--tenant", "demo"]).await,
        ""
    );
    let listed = run_ok(&dir, &["schema", "jobs", "--tenant", "demo"]).await;
    assert_eq!(
        listed
            .lines()
            .filter(|l| l.contains("\tsucceeded\t"))
            .count(),
        3,
        "{listed}"
    );
}
