//! `scimbus serve`: the demo's curl line and commands, loopback only, one process per
//! SQLite file, JSON logs without secrets, graceful stops on SIGTERM and SIGINT.

use tokio::io::{AsyncBufReadExt, BufReader};

use super::{scimbus, start_demo, stop_with};

#[tokio::test]
async fn serve_demo_prints_a_curl_line_that_works_and_revokes_the_previous_token() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, url, first_token) = start_demo(&dir).await;
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/scim/v2/demo/Users"),
        "{url}"
    );
    let client = crate::helpers::client();
    let response = client
        .get(&url)
        .bearer_auth(&first_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    first.kill().await.unwrap();

    let (mut second, url, second_token) = start_demo(&dir).await;
    assert_ne!(first_token, second_token);
    let stale = client
        .get(&url)
        .bearer_auth(&first_token)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
    let fresh = client
        .get(&url)
        .bearer_auth(&second_token)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    second.kill().await.unwrap();
}

#[tokio::test]
async fn serve_demo_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let output = scimbus(&dir)
        .env("SCIMBUS_LISTEN", "0.0.0.0:0")
        .args(["serve", "--demo"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}

#[tokio::test]
async fn a_second_process_on_the_same_sqlite_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (mut running, _, _) = start_demo(&dir).await;
    let output = scimbus(&dir)
        .args(["tenant", "list"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("in use by another scimbus process"),
        "{stderr}"
    );
    running.kill().await.unwrap();
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_never_the_token_or_query_values_at_info() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = scimbus(&dir)
        .env("SCIMBUS_LOG", "info")
        .env("SCIMBUS_LOG_FORMAT", "json")
        .args(["serve", "--demo"])
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut found = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(curl) = line.trim().strip_prefix("curl -H 'Authorization: Bearer ") {
            let (token, rest) = curl.split_once("' ").unwrap();
            found = Some((rest.trim().to_owned(), token.to_owned()));
            break;
        }
    }
    let (url, token) = found.expect("serve --demo printed a curl line");
    let response = crate::helpers::client()
        .get(&url)
        .query(&[("filter", "userName eq \"secret.person@example.com\"")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    let mut handled = false;
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if entry["fields"]["message"] == "request handled"
            && entry["span"]["request_id"] == request_id.as_str()
        {
            handled = true;
            assert_eq!(entry["span"]["route"], "/scim/v2/{tenant}/Users");
            assert_eq!(entry["fields"]["status"], 200);
        }
    }
    assert!(handled, "no line of the request {request_id}:\n{stderr}");
    assert!(
        !stderr.contains("secret.person"),
        "a filter value was logged at info"
    );
    assert!(!stderr.contains(&token), "a token was logged");
}

#[tokio::test]
async fn sigterm_and_sigint_stop_serve_gracefully_with_exit_code_0() {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, url, token) = start_demo(&dir).await;
        let client = crate::helpers::client();
        let response = client.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let status = stop_with(&mut child, signal).await;
        assert!(status.success(), "SIG{signal}: {status:?}");
        // It no longer accepts connections.
        assert!(client.get(&url).send().await.is_err());
    }
}

#[tokio::test]
async fn serve_with_a_relay_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let relay = crate::broker::relay_settings(&crate::broker::amqp_url());
    let mut command = scimbus(&dir);
    command
        .env("SCIMBUS_AMQP_URL", crate::broker::amqp_url())
        .env("SCIMBUS_AMQP_EXCHANGE", &relay.exchange)
        .env("SCIMBUS_AMQP_UNROUTED_EXCHANGE", &relay.unrouted_exchange)
        .env("SCIMBUS_AMQP_UNROUTED_QUEUE", &relay.unrouted_queue)
        .env(
            "SCIMBUS_AMQP_UNROUTED_MAX_LENGTH",
            relay.unrouted_max_length.to_string(),
        );
    let (mut child, url, token) = super::demo(command).await;
    let response = crate::helpers::client()
        .post(url.trim())
        .bearer_auth(token)
        .json(&serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bjensen"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let status = stop_with(&mut child, "TERM").await;
    assert!(status.success(), "{status:?}");
    crate::broker::cleanup(&relay).await;
}

#[tokio::test]
async fn serve_demo_prints_commands_that_create_a_user_and_show_its_event_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = scimbus(&dir)
        .env("SCIMBUS_LOG", "info")
        .args(["serve", "--demo"])
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        let done = line.contains("/events/v1/");
        printed.push(line);
        if done {
            break;
        }
    }
    let after_token = |line: &str| -> (String, String) {
        let rest = line.split("Bearer ").nth(1).unwrap();
        let (token, rest) = rest.split_once('\'').unwrap();
        (token.to_owned(), rest.to_owned())
    };
    let events_line = printed.last().unwrap().trim().to_owned();
    let (token, events_url) = after_token(&events_line);
    let create = printed
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("-d '"))
        .unwrap_or_else(|| panic!("no create command in {printed:?}"));
    let (body, url) = create["-d '".len()..].split_once("' ").unwrap();
    let client = crate::helpers::client();
    let created = client
        .post(url.trim())
        .bearer_auth(&token)
        .header("Content-Type", "application/scim+json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{printed:?}");
    let events = client
        .get(events_url.trim())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let events = events.text().await.unwrap();
    assert!(
        events.contains("scimbus.user.created") && events.contains("bjensen@example.com"),
        "{events}"
    );
    // Its log went to a pipe: plain text, no colour codes.
    child.kill().await.unwrap();
    let mut log = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut log)
        .await
        .unwrap();
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
}

/// A stop while requests are in flight, on PostgreSQL: every request answered is in the
/// journal and no background task meets a connection of the HTTP workers' runtimes, which
/// are gone by then (they used to share one pool: "journal entries not written … the
/// runtime is being shut down" on every stop under load).
#[tokio::test]
async fn a_stop_under_load_on_postgres_loses_no_journal_entry() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = crate::helpers::fresh_postgres().await;
    let mut command = scimbus(&dir);
    command
        .env("SCIMBUS_DATABASE_URL", &database_url)
        .env("SCIMBUS_RATE_LIMIT", "off");
    let (mut child, url, token) = super::demo(command).await;
    let client = crate::helpers::client();
    let requests = (0..200).map(|i| {
        client
            .post(url.trim())
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": format!("load{i}")
            }))
            .send()
    });
    let answered = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.status() == 201))
        .count();
    assert_eq!(answered, 200);
    let status = stop_with(&mut child, "TERM").await;
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(
        !stderr.contains("being shutdown") && !stderr.contains("not written"),
        "{stderr}"
    );
    let store = scimbus::store::Store::connect(&database_url).await.unwrap();
    let row = sea_orm::ConnectionTrait::query_one_raw(
        store.conn(),
        sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT COUNT(*) AS n FROM request_journal",
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let journaled: i64 = row.try_get("", "n").unwrap();
    assert_eq!(journaled, 200, "{stderr}");
}
