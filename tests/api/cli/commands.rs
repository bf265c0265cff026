//! The operator commands on a database a server may be using: tenants, tokens, application
//! credentials, admin tokens, erasure, the audit log, the journal, `--json` listings.

use scimbus::service::audit::Actor;
use serde_json::Value;

use crate::helpers::{ADMIN_TOKEN, settings};

use super::{run_ok, scimbus, start_demo};

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

#[tokio::test]
async fn cli_registers_lists_replays_and_removes_set_receivers_and_rotates_keys() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "cli-set-key-secret-0123456789abcdef";
    let run = |args: &[&str], with_secret: bool| {
        let mut command = scimbus(&dir);
        command.env("USER", "ops-alice").args(args);
        if with_secret {
            command.env("SCIMBUS_SET_KEY_SECRET", secret);
        }
        async move { command.output().await.unwrap() }
    };
    assert!(
        run(&["tenant", "create", "acme"], false)
            .await
            .status
            .success()
    );
    // Without the secret: refused, saying what is missing.
    let off = run(&["sets", "register", "acme", "--name", "billing"], false).await;
    assert!(!off.status.success());
    assert!(String::from_utf8_lossy(&off.stderr).contains("SCIMBUS_SET_KEY_SECRET"));
    let bad = run(
        &[
            "sets",
            "register",
            "acme",
            "--name",
            "billing",
            "--form",
            "notice",
            "--event",
            "urn:ietf:params:scim:event:prov:create:full",
        ],
        true,
    )
    .await;
    assert!(!bad.status.success());

    let registered = run(
        &[
            "sets", "register", "acme", "--name", "billing", "--alg", "ES256", "--after", "0",
        ],
        true,
    )
    .await;
    assert!(registered.status.success(), "{registered:?}");
    let out = String::from_utf8(registered.stdout).unwrap();
    let token = out.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("scimbus_r_"), "{out}");
    let id = out.split_whitespace().nth(1).unwrap().to_owned();
    let listed = String::from_utf8(run(&["sets", "receivers", "acme"], true).await.stdout).unwrap();
    assert!(
        listed.starts_with(&format!(
            "{id}\tbilling\tpoll\tfull\tES256\tposition 0 of 1\tok"
        )),
        "{listed}"
    );
    assert!(!listed.contains(&token));
    // A push receiver: its Authorization value comes from a variable, never from the
    // command line, and is never shown; an internal endpoint is refused.
    let mut push = scimbus(&dir);
    push.env("USER", "ops-alice")
        .env("SCIMBUS_SET_KEY_SECRET", secret)
        .env("RECEIVER_AUTH", "Bearer cli-push-secret")
        .args([
            "sets",
            "register",
            "acme",
            "--name",
            "pushed",
            "--endpoint",
            "https://receiver.example.com/sets",
            "--authorization-env",
            "RECEIVER_AUTH",
            "--alg",
            "ES256",
        ]);
    let pushed = push.output().await.unwrap();
    assert!(pushed.status.success(), "{pushed:?}");
    let out = String::from_utf8(pushed.stdout).unwrap();
    assert!(
        out.contains("pushed to https://receiver.example.com/sets") && !out.contains("scimbus_r_"),
        "{out}"
    );
    let internal = run(
        &[
            "sets",
            "register",
            "acme",
            "--name",
            "internal",
            "--endpoint",
            "https://169.254.169.254/",
        ],
        true,
    )
    .await;
    assert!(!internal.status.success());
    let listed = String::from_utf8(run(&["sets", "receivers", "acme"], true).await.stdout).unwrap();
    assert!(listed.contains("\tpushed\tpush\t"), "{listed}");
    assert!(!listed.contains("cli-push-secret"), "{listed}");
    let pushed_id = out.split_whitespace().nth(1).unwrap().to_owned();
    assert!(
        run(&["sets", "remove", "acme", &pushed_id], true)
            .await
            .status
            .success()
    );
    // A receiver of an application credential: one lane per tenant it reads.
    let issued = run(&["app", "issue", "--name", "crm", "--all-tenants"], true).await;
    assert!(issued.status.success(), "{issued:?}");
    let app_id = String::from_utf8(issued.stdout)
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_owned();
    let group = run(
        &[
            "sets",
            "register-app",
            &app_id,
            "--name",
            "crm",
            "--endpoint",
            "https://crm.example.com/sets",
            "--alg",
            "ES256",
        ],
        true,
    )
    .await;
    assert!(group.status.success(), "{group:?}");
    let out = String::from_utf8(group.stdout).unwrap();
    assert!(out.contains("the SETs of 1 tenants"), "{out}");
    let group_id = out.split_whitespace().nth(1).unwrap().to_owned();
    let lanes =
        String::from_utf8(run(&["sets", "app-receivers", &app_id], true).await.stdout).unwrap();
    assert!(
        lanes.starts_with(&format!("{group_id}\tcrm\tacme\t")),
        "{lanes}"
    );
    assert!(
        run(&["sets", "remove-app", &app_id, &group_id], true)
            .await
            .status
            .success()
    );
    // Without an endpoint it polls: its credential is printed once.
    let polled = run(
        &[
            "sets",
            "register-app",
            &app_id,
            "--name",
            "crm-poll",
            "--alg",
            "ES256",
        ],
        true,
    )
    .await;
    assert!(polled.status.success(), "{polled:?}");
    let out = String::from_utf8(polled.stdout).unwrap();
    assert!(
        out.contains("/sets/v1/poll")
            && out
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("scimbus_r_")),
        "{out}"
    );
    let polled_id = out.split_whitespace().nth(1).unwrap().to_owned();
    assert!(
        run(&["sets", "remove-app", &app_id, &polled_id], true)
            .await
            .status
            .success()
    );
    let json = run(&["sets", "receivers", "acme", "--json"], true).await;
    let parsed: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed[0]["id"], id.as_str());
    let replayed = run(&["sets", "replay", "acme", &id, "--after", "1"], true).await;
    assert!(replayed.status.success(), "{replayed:?}");

    // Keys: the ES256 key the registration made, then a rotation.
    let keys = String::from_utf8(run(&["sets", "keys"], true).await.stdout).unwrap();
    assert_eq!(keys.lines().count(), 1, "{keys}");
    assert!(
        keys.contains("ES256\t") && keys.trim_end().ends_with("signing"),
        "{keys}"
    );
    assert!(
        run(&["sets", "rotate", "--alg", "ES256"], true)
            .await
            .status
            .success()
    );
    let keys = String::from_utf8(run(&["sets", "keys"], true).await.stdout).unwrap();
    assert_eq!(keys.lines().count(), 2, "{keys}");
    assert!(keys.contains("published until"), "{keys}");
    let config = String::from_utf8(run(&["config"], true).await.stdout).unwrap();
    assert!(!config.contains(secret), "{config}");

    assert!(
        run(&["sets", "remove", "acme", &id], true)
            .await
            .status
            .success()
    );
    let listed = String::from_utf8(run(&["sets", "receivers", "acme"], true).await.stdout).unwrap();
    assert!(listed.trim().is_empty(), "{listed}");
    let audit = String::from_utf8(run(&["audit"], true).await.stdout).unwrap();
    for action in [
        "set_receiver.register",
        "set_receiver.replay",
        "set_key.rotate",
        "set_receiver.remove",
    ] {
        assert!(
            audit.contains(&format!("os:ops-alice\t{action}")),
            "{action}: {audit}"
        );
    }
}

#[tokio::test]
async fn setup_link_commands_create_list_and_revoke_a_link() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(&dir, &["tenant", "create", "acme"]).await;
    let output = scimbus(&dir)
        .env("SCIMBUS_PUBLIC_URL", "https://scim.example.com")
        .args(["tenant", "setup-link", "acme", "--expires-in-hours", "2"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout).to_string();
    let url = printed.lines().last().unwrap().trim().to_owned();
    assert!(
        url.starts_with("https://scim.example.com/setup/scimbus_s_"),
        "{printed}"
    );
    let listed: Vec<Value> =
        serde_json::from_str(&run_ok(&dir, &["tenant", "setup-links", "acme", "--json"]).await)
            .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["state"], "open");
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let secret = url.rsplit('/').next().unwrap();
    assert!(!serde_json::to_string(&listed).unwrap().contains(secret));
    run_ok(&dir, &["tenant", "revoke-setup-link", "acme", &id]).await;
    let listed = run_ok(&dir, &["tenant", "setup-links", "acme"]).await;
    assert!(
        listed.contains(&id) && listed.contains("revoked"),
        "{listed}"
    );
    // Refused: a lifetime out of range, an unknown link.
    for args in [
        &["tenant", "setup-link", "acme", "--expires-in-hours", "721"][..],
        &["tenant", "revoke-setup-link", "acme", "no-such-link"][..],
    ] {
        let output = scimbus(&dir).args(args).output().await.unwrap();
        assert!(!output.status.success(), "{args:?}");
    }
    let audit = run_ok(&dir, &["audit", "--tenant", "acme"]).await;
    assert!(
        audit.contains("setup_link.create") && audit.contains("setup_link.revoke"),
        "{audit}"
    );
}
