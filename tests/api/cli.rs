//! The binary: `serve --demo` prints a curl line that works, refuses non-loopback
//! addresses, and revokes the previous demo token; `tenant`/`token` commands; one process
//! per SQLite file.

use scimbus::service::audit::Actor;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{ADMIN_TOKEN, settings};

fn scimbus(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scimbus"));
    command
        .env_clear()
        .env(
            "SCIMBUS_DATABASE_URL",
            format!("sqlite://{}/cli.db?mode=rwc", dir.path().display()),
        )
        .env("SCIMBUS_LISTEN", "127.0.0.1:0")
        .env("SCIMBUS_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts `serve --demo` and returns the child with its URL and token, read from the curl
/// line it prints.
async fn start_demo(dir: &tempfile::TempDir) -> (Child, String, String) {
    let mut child = scimbus(dir).args(["serve", "--demo"]).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(curl) = line.trim().strip_prefix("curl -H 'Authorization: Bearer ") {
            let (token, rest) = curl.split_once("' ").unwrap();
            return (child, rest.trim().to_owned(), token.to_owned());
        }
    }
    panic!("serve --demo printed no curl line");
}

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
async fn tenant_and_token_commands_issue_a_token_that_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut command = scimbus(&dir);
        command.args(args);
        async move {
            let output = command.output().await.unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        }
    };
    run(&["migrate"]).await;
    run(&["tenant", "create", "acme"]).await;
    let issued = run(&[
        "token", "issue", "--tenant", "acme", "--name", "okta", "--scope", "scim",
    ])
    .await;
    let token = issued.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("scimbus_t_"));
    let listed = run(&["token", "list", "--tenant", "acme"]).await;
    assert!(listed.contains("okta") && !listed.contains(&token));
    assert!(run(&["tenant", "list"]).await.contains("acme"));

    let app = scimbus::startup::Application::build(settings(&[
        (
            "SCIMBUS_DATABASE_URL",
            format!("sqlite://{}/cli.db?mode=rwc", dir.path().display()),
        ),
        ("SCIMBUS_LISTEN", "127.0.0.1:0".to_owned()),
        ("SCIMBUS_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
    ]))
    .await
    .unwrap();
    let url = format!("http://127.0.0.1:{}/scim/v2/acme/Users", app.port());
    let ctx = app.context().clone();
    tokio::spawn(app.run_until_stopped());
    let client = crate::helpers::client();
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let id = scimbus::service::tenants::list_tokens(&ctx, "acme")
        .await
        .unwrap()[0]
        .id
        .clone();
    scimbus::service::tenants::revoke_token(&ctx, &Actor::system(), "acme", &id)
        .await
        .unwrap();
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn cli_erasure_tenant_delete_and_audit_act_on_a_database_a_server_uses() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = crate::helpers::fresh_postgres().await;
    let run = |args: &[&str]| {
        let mut command = scimbus(&dir);
        command
            .env("SCIMBUS_DATABASE_URL", &database_url)
            .env("USER", "ops-alice")
            .args(args);
        async move {
            let output = command.output().await.unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        }
    };
    let app = scimbus::startup::Application::build(settings(&[
        ("SCIMBUS_DATABASE_URL", database_url.clone()),
        ("SCIMBUS_LISTEN", "127.0.0.1:0".to_owned()),
        ("SCIMBUS_MAINTENANCE", "off".to_owned()),
    ]))
    .await
    .unwrap();
    let ctx = app.context().clone();
    tokio::spawn(app.run_until_stopped());
    run(&["tenant", "create", "acme"]).await;
    let tenant = scimbus::service::tenants::get_tenant(&ctx, "acme")
        .await
        .unwrap();
    let user =
        scimbus::service::users::create(&ctx, &tenant, None, crate::helpers::user("bjensen"))
            .await
            .unwrap();

    let subject = format!("Users/{}", user.id);
    let purged = run(&["events", "purge", "--tenant", "acme", "--subject", &subject]).await;
    assert!(purged.contains("1 events"), "{purged}");
    let rows = scimbus::store::outbox::list_after(ctx.store.conn(), &tenant.id, 0)
        .await
        .unwrap();
    assert_eq!(rows[0].event_type, "scimbus.tenant.created");
    assert_eq!(
        rows[1].payload["data"],
        serde_json::json!({"redacted": true})
    );

    run(&["tenant", "delete", "acme"]).await;
    while scimbus::service::maintenance::purge_once(&ctx)
        .await
        .unwrap()
        != scimbus::service::maintenance::PurgeStep::Idle
    {}
    scimbus::events::sequencer::number_tenant(&ctx.store, &tenant.id)
        .await
        .unwrap();
    let rows = scimbus::store::outbox::list_after(ctx.store.conn(), &tenant.id, 0)
        .await
        .unwrap();
    assert_eq!(rows.last().unwrap().event_type, "scimbus.tenant.deleted");

    let audit = run(&["audit", "--tenant", "acme"]).await;
    let actions: Vec<(&str, &str)> = audit
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            (fields[2], fields[3])
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("os:ops-alice", "tenant.create"),
            ("os:ops-alice", "events.purge"),
            ("os:ops-alice", "tenant.delete"),
        ]
    );
}

#[tokio::test]
async fn cli_issues_lists_and_revokes_application_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = crate::helpers::fresh_postgres().await;
    let run = |args: &[&str]| {
        let mut command = scimbus(&dir);
        command
            .env("SCIMBUS_DATABASE_URL", &database_url)
            .env("USER", "ops-alice")
            .args(args);
        async move { command.output().await.unwrap() }
    };
    let app = scimbus::startup::Application::build(settings(&[
        ("SCIMBUS_DATABASE_URL", database_url.clone()),
        ("SCIMBUS_LISTEN", "127.0.0.1:0".to_owned()),
        ("SCIMBUS_MAINTENANCE", "off".to_owned()),
    ]))
    .await
    .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    for slug in ["acme", "globex"] {
        assert!(run(&["tenant", "create", slug]).await.status.success());
    }
    // Neither a tenant list nor --all-tenants, and an unknown tenant: refused.
    assert!(
        !run(&["app", "issue", "--name", "crm"])
            .await
            .status
            .success()
    );
    let unknown = run(&["app", "issue", "--name", "crm", "--tenant", "nobody"]).await;
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nobody"));

    let issued = run(&["app", "issue", "--name", "crm", "--tenant", "acme"]).await;
    assert!(issued.status.success());
    let out = String::from_utf8(issued.stdout).unwrap();
    let secret = out.lines().last().unwrap().trim().to_owned();
    assert!(secret.starts_with("scimbus_app_"), "{out}");
    let id = out.split_whitespace().nth(2).unwrap().to_owned();
    let pull = |slug: &str| {
        crate::helpers::client()
            .get(format!("{address}/events/v1/{slug}"))
            .bearer_auth(&secret)
            .send()
    };
    assert_eq!(pull("acme").await.unwrap().status(), 200);
    assert_eq!(pull("globex").await.unwrap().status(), 401);

    let listed = String::from_utf8(run(&["app", "list"]).await.stdout).unwrap();
    assert_eq!(listed.trim(), format!("{id}\tcrm\tacme\tlive"));
    assert!(!listed.contains(&secret));
    assert!(run(&["app", "revoke", &id]).await.status.success());
    assert_eq!(pull("acme").await.unwrap().status(), 401);
    let listed = String::from_utf8(run(&["app", "list"]).await.stdout).unwrap();
    assert!(listed.contains("revoked"), "{listed}");
    let audit = String::from_utf8(run(&["audit"]).await.stdout).unwrap();
    assert!(audit.contains("os:ops-alice\tapp.issue"), "{audit}");
    assert!(audit.contains("os:ops-alice\tapp.revoke"), "{audit}");
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

/// Sends `signal` to the child and waits (bounded) for it to exit.
async fn stop_with(child: &mut Child, signal: &str) -> std::process::ExitStatus {
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid])
        .status()
        .unwrap();
    assert!(sent.success());
    tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .expect("scimbus exits within 30 s")
        .unwrap()
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
    let mut child = scimbus(&dir)
        .env("SCIMBUS_AMQP_URL", crate::broker::amqp_url())
        .env("SCIMBUS_AMQP_EXCHANGE", &relay.exchange)
        .env("SCIMBUS_AMQP_UNROUTED_EXCHANGE", &relay.unrouted_exchange)
        .env("SCIMBUS_AMQP_UNROUTED_QUEUE", &relay.unrouted_queue)
        .env(
            "SCIMBUS_AMQP_UNROUTED_MAX_LENGTH",
            relay.unrouted_max_length.to_string(),
        )
        .args(["serve", "--demo"])
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut curl = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(rest) = line.trim().strip_prefix("curl -H 'Authorization: Bearer ") {
            curl = Some(rest.to_owned());
            break;
        }
    }
    let curl = curl.expect("a curl line");
    let (token, url) = curl.split_once("' ").unwrap();
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
async fn config_prints_the_effective_settings_from_environment_and_file_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scimbus.toml");
    std::fs::write(
        &file,
        "rate_limit = \"25/s\"\nadmin_token = \"file-admin-token-0123456789\"\n",
    )
    .unwrap();
    let output = scimbus(&dir)
        .env("SCIMBUS_CONFIG", &file)
        .env("SCIMBUS_LISTEN", "127.0.0.1:9123")
        .arg("config")
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(
        printed.contains("SCIMBUS_LISTEN=127.0.0.1:9123\t# environment"),
        "{printed}"
    );
    assert!(
        printed.contains("SCIMBUS_RATE_LIMIT=25/s\t# file"),
        "{printed}"
    );
    assert!(
        printed.contains("SCIMBUS_MIGRATE=on\t# default"),
        "{printed}"
    );
    assert!(
        printed.contains("SCIMBUS_ADMIN_TOKEN=(set, hidden)"),
        "{printed}"
    );
    assert!(!printed.contains("file-admin-token"));

    // A flag wins over the environment; `--json` gives the same for programs.
    let output = scimbus(&dir)
        .env("SCIMBUS_CONFIG", &file)
        .env("SCIMBUS_LISTEN", "127.0.0.1:9123")
        .args(["config", "--listen", "127.0.0.1:9124", "--json"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let settings: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    let setting = |name: &str| {
        settings
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(setting("SCIMBUS_LISTEN")["value"], "127.0.0.1:9124");
    assert_eq!(setting("SCIMBUS_LISTEN")["source"], "flag");
    assert_eq!(setting("SCIMBUS_ADMIN_TOKEN")["value"], "(set, hidden)");
    assert_eq!(setting("SCIMBUS_PUBLIC_URL")["source"], "unset");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("file-admin-token"));

    // `--help` lists every setting's variable, never a secret's value.
    let output = scimbus(&dir)
        .env("SCIMBUS_ADMIN_TOKEN", "env-admin-token-0123456789")
        .arg("--help")
        .output()
        .await
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for s in &settings {
        let name = s["name"].as_str().unwrap();
        assert!(
            help.contains(&format!("[env: {name}")),
            "{name} not in --help"
        );
    }
    assert!(!help.contains("env-admin-token"), "{help}");

    // `--config` names the file as the variable does; `--help` works whatever the file.
    let output = scimbus(&dir)
        .args(["--config", file.to_str().unwrap(), "config"])
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(
        printed.contains("SCIMBUS_RATE_LIMIT=25/s\t# file"),
        "{printed}"
    );
    let output = scimbus(&dir)
        .env("SCIMBUS_CONFIG", dir.path().join("missing.toml"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let output = scimbus(&dir)
        .env("SCIMBUS_CONFIG", dir.path().join("missing.toml"))
        .arg("config")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SCIMBUS_CONFIG"));

    // An empty variable counts as unset.
    let output = scimbus(&dir)
        .env("SCIMBUS_LISTEN", "")
        .env("SCIMBUS_AMQP_URL", " ")
        .arg("config")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(
        printed.contains("SCIMBUS_LISTEN=127.0.0.1:8080\t# default"),
        "{printed}"
    );
    assert!(printed.contains("SCIMBUS_AMQP_URL=(unset)"), "{printed}");

    // A bad setting stops the process with a message naming it.
    std::fs::write(&file, "rate_limit = \"lots\"\n").unwrap();
    let output = scimbus(&dir)
        .env("SCIMBUS_CONFIG", &file)
        .arg("config")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("SCIMBUS_RATE_LIMIT"), "{stderr}");
}

#[tokio::test]
async fn operator_commands_issue_list_and_revoke_admin_tokens_and_never_touch_the_bootstrap_one() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut command = scimbus(&dir);
        command.env("SCIMBUS_ADMIN_TOKEN", ADMIN_TOKEN).args(args);
        command
    };
    let output = run(&["operator", "issue", "alice"]).output().await.unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout).to_string();
    let id = printed
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_owned();
    assert!(printed.contains("scimbus_a_"), "{printed}");
    let output = run(&["operator", "list"]).output().await.unwrap();
    let listed = String::from_utf8_lossy(&output.stdout).to_string();
    // The CLI never stores SCIMBUS_ADMIN_TOKEN: only `serve` does, at start.
    assert!(
        listed.contains("alice") && !listed.contains("bootstrap"),
        "{listed}"
    );
    assert!(!listed.contains("scimbus_a_"), "{listed}");
    let output = run(&["operator", "revoke", &id]).output().await.unwrap();
    assert!(output.status.success(), "{output:?}");
    let output = run(&["operator", "list"]).output().await.unwrap();
    let listed = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(listed.contains("revoked"), "{listed}");
    let output = run(&["audit"]).output().await.unwrap();
    let audit = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        audit.contains("operator.issue") && audit.contains("operator.revoke"),
        "{audit}"
    );
}

#[tokio::test]
async fn tenant_journal_prints_what_the_idp_sent_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url, token) = start_demo(&dir).await;
    let client = crate::helpers::client();
    let response = client
        .get(format!("{url}?filter=userName%20eq%20%22nobody%22"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .get(format!("{url}?filter=userName%20zz%20%22x%22"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // The writer is off the request path: give it a moment, then stop the server (one
    // process per SQLite file).
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    server.kill().await.unwrap();
    let output = scimbus(&dir)
        .args(["tenant", "journal", "demo", "--status", "4xx"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout).to_string();
    let entries: Vec<serde_json::Value> = printed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 1, "{printed}");
    assert_eq!(entries[0]["scimType"], "invalidFilter");
    assert!(!printed.contains(&token), "{printed}");
    let output = scimbus(&dir)
        .args(["tenant", "journal", "demo"])
        .output()
        .await
        .unwrap();
    let all = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(all.lines().count() >= 2, "{all}");
}

/// Runs `scimbus <args>` on the directory's database; its stdout, or a panic with stderr.
async fn run_ok(dir: &tempfile::TempDir, args: &[&str]) -> String {
    let output = scimbus(dir).args(args).output().await.unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).to_string()
}

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

#[tokio::test]
async fn listing_commands_print_json_arrays_with_json() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(&dir, &["tenant", "create", "acme"]).await;
    run_ok(
        &dir,
        &["token", "issue", "--tenant", "acme", "--name", "okta"],
    )
    .await;
    run_ok(&dir, &["app", "issue", "--name", "crm", "--all-tenants"]).await;
    run_ok(&dir, &["operator", "issue", "alice"]).await;
    let json = |printed: String| -> Vec<serde_json::Value> {
        serde_json::from_str(&printed).unwrap_or_else(|e| panic!("{e}: {printed}"))
    };
    let tenants = json(run_ok(&dir, &["tenant", "list", "--json"]).await);
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0]["slug"], "acme");
    let tokens = json(run_ok(&dir, &["token", "list", "--tenant", "acme", "--json"]).await);
    assert_eq!(tokens[0]["name"], "okta");
    assert!(
        !tokens[0].to_string().contains("scimbus_t_"),
        "never a secret"
    );
    let apps = json(run_ok(&dir, &["app", "list", "--json"]).await);
    assert_eq!(apps[0]["name"], "crm");
    let operators = json(run_ok(&dir, &["operator", "list", "--json"]).await);
    assert_eq!(operators[0]["name"], "alice");
    let audit = json(run_ok(&dir, &["audit", "--json"]).await);
    assert!(audit.len() >= 4, "{audit:?}");
    let jobs = json(run_ok(&dir, &["schema", "jobs", "--tenant", "acme", "--json"]).await);
    assert!(jobs.is_empty());
    // Without --json: lines of text, as before.
    assert!(
        run_ok(&dir, &["tenant", "list"])
            .await
            .starts_with("acme\t")
    );
}
