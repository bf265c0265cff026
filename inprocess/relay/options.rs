//! Command-line options and their `SCIMBUS_BENCH_*` variables.

use super::*;

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) backend: Backend,
    pub(crate) events: u64,
    pub(crate) runs: usize,
    pub(crate) rate: f64,
    pub(crate) duration: Duration,
    pub(crate) throughput: bool,
    pub(crate) latency: bool,
    pub(crate) phases: bool,
    pub(crate) durable_queue: bool,
    pub(crate) database_url: String,
    pub(crate) amqp_url: String,
}

pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Options {
    pub(crate) fn parse() -> anyhow::Result<Self> {
        let mut flags: HashMap<String, Option<String>> = HashMap::new();
        let mut args = std::env::args().skip(1).peekable();
        while let Some(arg) = args.next() {
            // `cargo bench` passes `--bench` to harness-less benches.
            if arg == "--bench" {
                continue;
            }
            let Some(name) = arg.strip_prefix("--") else {
                bail!("unexpected argument `{arg}`");
            };
            match name.split_once('=') {
                Some((k, v)) => {
                    flags.insert(k.to_owned(), Some(v.to_owned()));
                }
                None => {
                    let takes_value =
                        matches!(name, "backend" | "events" | "runs" | "rate" | "duration");
                    let value = if takes_value { args.next() } else { None };
                    if takes_value && value.is_none() {
                        bail!("--{name} needs a value");
                    }
                    flags.insert(name.to_owned(), value);
                }
            }
        }
        let value = |flag: &str, var: &str| -> Option<String> {
            flags
                .get(flag)
                .cloned()
                .flatten()
                .or_else(|| env(&format!("SCIMBUS_BENCH_{var}")))
        };
        let backend = match value("backend", "BACKEND").as_deref() {
            None | Some("postgres" | "pg" | "postgresql") => Backend::Postgres,
            Some("sqlite") => Backend::Sqlite,
            Some(other) => bail!("--backend must be postgres or sqlite, not `{other}`"),
        };
        let number = |flag: &str, var: &str, default: f64| -> anyhow::Result<f64> {
            match value(flag, var) {
                None => Ok(default),
                Some(v) => match v.parse::<f64>() {
                    Ok(n) if n > 0.0 && n.is_finite() => Ok(n),
                    _ => bail!("--{flag} must be a positive number, not `{v}`"),
                },
            }
        };
        let known = [
            "backend",
            "events",
            "runs",
            "rate",
            "duration",
            "skip-throughput",
            "skip-latency",
            "no-phases",
            "durable-queue",
        ];
        if let Some(unknown) = flags.keys().find(|k| !known.contains(&k.as_str())) {
            bail!("unknown option --{unknown} (known: {})", known.join(", --"));
        }
        Ok(Self {
            backend,
            events: number("events", "EVENTS", 100_000.0)? as u64,
            runs: number("runs", "RUNS", 3.0)? as usize,
            rate: number("rate", "RATE", 50.0)?,
            duration: Duration::from_secs_f64(number("duration", "DURATION", 20.0)?),
            throughput: !flags.contains_key("skip-throughput"),
            latency: !flags.contains_key("skip-latency"),
            phases: !flags.contains_key("no-phases"),
            durable_queue: flags.contains_key("durable-queue"),
            database_url: env("SCIMBUS_BENCH_DATABASE_URL")
                .or_else(|| env("SCIMBUS_TEST_DATABASE_URL"))
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
            amqp_url: env("SCIMBUS_BENCH_AMQP_URL")
                .or_else(|| env("SCIMBUS_TEST_AMQP_URL"))
                .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
        })
    }

    pub(crate) fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}
