//! Command-line options and their `SCIMBUS_BENCH_*` variables.

use super::*;

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) backend: Backend,
    pub(crate) users: usize,
    pub(crate) small: usize,
    pub(crate) replace: usize,
    pub(crate) patches: usize,
    pub(crate) puts: usize,
    pub(crate) reads: usize,
    pub(crate) pages: usize,
    pub(crate) scans: usize,
    pub(crate) groups: bool,
    pub(crate) queries: bool,
    pub(crate) pgbench: bool,
    pub(crate) plans: bool,
    pub(crate) database_url: String,
}

pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Options {
    pub(crate) fn parse() -> anyhow::Result<Self> {
        const VALUED: [&str; 9] = [
            "backend", "users", "small", "replace", "patches", "puts", "reads", "pages", "scans",
        ];
        const SWITCHES: [&str; 4] = ["skip-groups", "skip-queries", "no-pgbench", "no-plans"];
        let mut flags: HashMap<String, Option<String>> = HashMap::new();
        let mut args = std::env::args().skip(1);
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
                    let takes_value = VALUED.contains(&name);
                    let value = if takes_value { args.next() } else { None };
                    if takes_value && value.is_none() {
                        bail!("--{name} needs a value");
                    }
                    flags.insert(name.to_owned(), value);
                }
            }
        }
        if let Some(unknown) = flags
            .keys()
            .find(|k| !VALUED.contains(&k.as_str()) && !SWITCHES.contains(&k.as_str()))
        {
            bail!(
                "unknown option --{unknown} (known: --{}, --{})",
                VALUED.join(", --"),
                SWITCHES.join(", --")
            );
        }
        let value = |flag: &str| -> Option<String> {
            let var = format!("SCIMBUS_BENCH_{}", flag.to_uppercase().replace('-', "_"));
            flags.get(flag).cloned().flatten().or_else(|| env(&var))
        };
        let backend = match value("backend").as_deref() {
            None | Some("postgres" | "pg" | "postgresql") => Backend::Postgres,
            Some("sqlite") => Backend::Sqlite,
            Some(other) => bail!("--backend must be postgres or sqlite, not `{other}`"),
        };
        let number = |flag: &str, default: usize| -> anyhow::Result<usize> {
            match value(flag) {
                None => Ok(default),
                Some(v) => match v.parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => bail!("--{flag} must be a positive integer, not `{v}`"),
                },
            }
        };
        let opts = Self {
            backend,
            users: number("users", 100_000)?,
            small: number("small", 100)?,
            replace: number("replace", 1000)?,
            patches: number("patches", 200)?,
            puts: number("puts", 3)?,
            reads: number("reads", 300)?,
            pages: number("pages", 20)?,
            scans: number("scans", 10)?,
            groups: !flags.contains_key("skip-groups"),
            queries: !flags.contains_key("skip-queries"),
            pgbench: !flags.contains_key("no-pgbench"),
            plans: !flags.contains_key("no-plans"),
            database_url: env("SCIMBUS_BENCH_DATABASE_URL")
                .or_else(|| env("SCIMBUS_TEST_DATABASE_URL"))
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
        };
        ensure!(
            opts.small < opts.users && opts.replace < opts.users,
            "--small and --replace must be below --users"
        );
        Ok(opts)
    }

    pub(crate) fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}
