//! `scimbus config`: the effective settings from environment, file and flags, secrets masked.

use super::scimbus;

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
