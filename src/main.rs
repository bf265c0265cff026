//! The `scimbus` binary: parse the command line and settings, start telemetry, run the
//! command on a Tokio runtime, then flush the spans still buffered.

fn main() -> std::process::ExitCode {
    let (cli, settings) = match scimbus::cli::parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(scimbus::config::LoadError::Usage(e)) => e.exit(),
        Err(scimbus::config::LoadError::Setting(e)) => {
            eprintln!("scimbus: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // Outside the runtime: the span exporter's HTTP client runs its own.
    let telemetry = match scimbus::telemetry::init(
        &settings.log,
        settings.log_format,
        settings.otlp_endpoint.as_ref(),
    ) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("scimbus: cannot start the trace exporter: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(scimbus::cli::run(cli, settings)));
    telemetry.shutdown();
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scimbus: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
