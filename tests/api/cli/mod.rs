//! The binary: `serve --demo` prints a curl line that works, refuses non-loopback
//! addresses, and revokes the previous demo token; `tenant`/`token` commands; one process
//! per SQLite file.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

mod commands;
mod config;
mod schema;
mod serve;

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
    demo(scimbus(dir)).await
}

/// Starts `command` (a `scimbus` with settings of the test's) as `serve --demo` and returns
/// the child with the URL and token of the curl line it prints.
async fn demo(mut command: Command) -> (Child, String, String) {
    let mut child = command.args(["serve", "--demo"]).spawn().unwrap();
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

/// Runs `scimbus <args>` on the directory's database; its stdout, or a panic with stderr.
async fn run_ok(dir: &tempfile::TempDir, args: &[&str]) -> String {
    let output = scimbus(dir).args(args).output().await.unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).to_string()
}
