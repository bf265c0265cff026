//! The `scimbus` binary: parse the command line, load settings, start telemetry, run.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = scimbus::cli::Cli::parse();
    let settings = match scimbus::config::Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("scimbus: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    scimbus::telemetry::init(&settings.log, settings.log_format);
    match scimbus::cli::run(cli, settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scimbus: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
