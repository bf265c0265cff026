//! The `scimbus` binary: parse the command line, load settings, start telemetry, run.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let (cli, settings) = match scimbus::cli::parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(scimbus::config::LoadError::Usage(e)) => e.exit(),
        Err(scimbus::config::LoadError::Setting(e)) => {
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
