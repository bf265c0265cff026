//! Typed settings from `SCIMBUS_*` variables, validated at start. Secrets are wrapped so
//! they are never printed by `Debug`. Nothing here is global: `Settings` is passed along.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

/// Smallest body limit accepted: a 10 000-member group PUT must fit (DESIGN 17).
pub const MIN_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Where the embedded default keeps its data.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://scimbus.db?mode=rwc";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Clone)]
pub struct Settings {
    /// `SCIMBUS_DATABASE_URL`: `postgres://…` or `sqlite://file?mode=rwc`.
    pub database_url: String,
    /// `SCIMBUS_LISTEN`: address to bind (port 0 picks a free port).
    pub listen: SocketAddr,
    /// `SCIMBUS_PUBLIC_URL`: the URL clients reach (TLS terminates at a proxy); builds
    /// `Location` and `meta.location`. Default: `http://<listen address>`.
    pub public_url: Option<Url>,
    /// `SCIMBUS_ADMIN_TOKEN`: bootstraps the admin token named `bootstrap`.
    pub admin_token: Option<SecretString>,
    /// `SCIMBUS_MIGRATE` (`on`/`off`): apply migrations at start-up.
    pub migrate: bool,
    /// `SCIMBUS_MAX_BODY_BYTES`: request body limit, at least 4 MiB.
    pub max_body_bytes: usize,
    /// `SCIMBUS_LOG`: tracing filter, e.g. `info` or `scimbus=debug`.
    pub log: String,
    /// `SCIMBUS_LOG_FORMAT` (`text`/`json`): human-readable lines or JSON lines.
    pub log_format: crate::telemetry::LogFormat,
    /// `SCIMBUS_CURSOR_KEY`: the key sealing pagination cursors; replicas must share it.
    /// Unset: a random key per process.
    pub cursor_key: Option<SecretString>,
    /// `SCIMBUS_CURSOR_TIMEOUT_SECS`: how long a cursor stays valid.
    pub cursor_timeout_secs: u32,
    /// The relay's broker and topology; `None` without `SCIMBUS_AMQP_URL`.
    pub relay: Option<RelaySettings>,
    /// `SCIMBUS_EVENT_RETENTION_HOURS`: how long events stay in the outbox (and the pull
    /// API) before retention prunes them; default 168 (7 days).
    pub event_retention: Duration,
    /// `SCIMBUS_RATE_LIMIT`: each tenant token's request budget (`<n>/s`, `<n>/min` or
    /// `off`; default 100/s, bursts of 1 000), per process.
    pub rate_limit: Option<RateLimit>,
    /// `SCIMBUS_RATE_LIMIT_TENANTS`: per-tenant budgets, `acme=50/s,globex=off`.
    pub rate_limit_tenants: std::collections::HashMap<String, Option<RateLimit>>,
    /// `SCIMBUS_TRUSTED_PROXIES`: addresses or CIDR ranges of the reverse proxies whose
    /// `Forwarded` / `X-Forwarded-*` headers are believed; from anyone else they are
    /// dropped before anything reads them.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `SCIMBUS_REQUEST_TIMEOUT_SECS`: a request still running after this answers 503
    /// (below Okta's 60 s client timeout, so the IdP sees a SCIM error, not a dropped call).
    pub request_timeout: Duration,
    /// `SCIMBUS_SHUTDOWN_TIMEOUT_SECS`: on SIGTERM/SIGINT, how long requests in flight may
    /// take to finish.
    pub shutdown_timeout: Duration,
    /// `SCIMBUS_MAINTENANCE_INTERVAL_SECS`: how often retention and tenant purges run.
    pub maintenance_interval: Duration,
    /// `SCIMBUS_METRICS_TOKEN`: when set, `/metrics` needs `Authorization: Bearer <it>`.
    pub metrics_token: Option<SecretString>,
    /// `SCIMBUS_RETENTION_UNPUBLISHED` (`keep`/`prune`): whether retention may prune events
    /// no relay has published. Unset: `prune` on SQLite without `SCIMBUS_AMQP_URL` (one
    /// process, so nothing else will publish them), `keep` otherwise (on PostgreSQL another
    /// process may be the relay).
    pub retention_unpublished: Option<bool>,
    /// `SCIMBUS_MAINTENANCE` (`on`/`off`): run retention and tenant purges in this process
    /// (on by default; any number of replicas may run them).
    pub maintenance: bool,
    /// The request journal's bounds (`SCIMBUS_JOURNAL_*`).
    pub journal: JournalSettings,
}

/// What the request journal keeps of each tenant's SCIM requests (DESIGN 20).
#[derive(Clone, Debug, PartialEq)]
pub struct JournalSettings {
    /// `SCIMBUS_JOURNAL_ENTRIES`: the newest entries kept per tenant (0: no journal).
    pub entries: u64,
    /// `SCIMBUS_JOURNAL_MAX_AGE_HOURS`: entries older than this are removed.
    pub max_age: Duration,
    /// `SCIMBUS_JOURNAL_BODY_BYTES`: a request or response body larger than this is not
    /// kept (the entry says how large it was).
    pub body_bytes: usize,
    /// `SCIMBUS_JOURNAL_MASK` (`on`/`off`): replace personal data in kept bodies by `***`.
    pub mask: bool,
    /// `SCIMBUS_JOURNAL_TENANTS_OFF`: slugs whose requests are not journaled.
    pub tenants_off: Vec<String>,
}

impl Default for JournalSettings {
    fn default() -> Self {
        Self {
            entries: 1000,
            max_age: Duration::from_secs(7 * 24 * 3600),
            body_bytes: 64 * 1024,
            mask: false,
            tenants_off: Vec::new(),
        }
    }
}

/// Where and how the relay publishes (DESIGN 12).
#[derive(Clone)]
pub struct RelaySettings {
    /// `SCIMBUS_AMQP_URL`, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub amqp_url: SecretString,
    /// `SCIMBUS_AMQP_EXCHANGE`: the topic exchange events go to.
    pub exchange: String,
    /// `SCIMBUS_AMQP_UNROUTED_EXCHANGE`: its alternate exchange (fanout).
    pub unrouted_exchange: String,
    /// `SCIMBUS_AMQP_UNROUTED_QUEUE`: the durable queue behind the alternate exchange.
    pub unrouted_queue: String,
    /// `SCIMBUS_AMQP_UNROUTED_MAX_LENGTH`: its length limit (oldest dropped first).
    pub unrouted_max_length: u32,
    /// `SCIMBUS_RELAY_BATCH_SIZE`: events per publish batch.
    pub batch_size: u64,
    /// `SCIMBUS_RELAY_POLL_MS`: how often the relay looks without a wake-up, and how often
    /// a standby relay tries to become leader.
    pub poll_interval: Duration,
    /// `SCIMBUS_RELAY_MAX_MESSAGE_BYTES`: larger events are parked as unpublishable.
    pub max_message_bytes: usize,
}

impl std::fmt::Debug for RelaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelaySettings")
            .field("amqp_url", &"[redacted]")
            .field("exchange", &self.exchange)
            .field("unrouted_exchange", &self.unrouted_exchange)
            .field("unrouted_queue", &self.unrouted_queue)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// A request budget: `requests` per `per`, with bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
    pub burst: u32,
}

impl RateLimit {
    /// `off`, `<n>/s` or `<n>/min`. The burst is what the rate allows in ten seconds, and
    /// at least twice `n`: `100/s` takes 1 000 requests at once (a scim2-tester run against
    /// one tenant needed about 620 at 100/s, docs/operations.md), `30/min` takes 60.
    pub fn parse(value: &str) -> Result<Option<Self>, String> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (n, unit) = value
            .split_once('/')
            .ok_or_else(|| format!("`{value}` is not off, <n>/s or <n>/min"))?;
        let requests: u32 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("`{n}` is not a positive whole number"))?;
        let per = match unit.trim() {
            "s" | "sec" => Duration::from_secs(1),
            "min" | "m" => Duration::from_secs(60),
            other => return Err(format!("unit `{other}` is not s or min")),
        };
        let ten_seconds = u64::from(requests) * 10 / per.as_secs().max(1);
        let burst = u32::try_from(ten_seconds)
            .unwrap_or(u32::MAX)
            .max(requests.saturating_mul(2));
        Ok(Some(Self {
            requests,
            per,
            burst,
        }))
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = if self.per >= Duration::from_secs(60) {
            "min"
        } else {
            "s"
        };
        write!(f, "{}/{unit} (burst {})", self.requests, self.burst)
    }
}

impl Settings {
    /// Every setting with its effective value, secrets masked (`scimbus config`).
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        fn secret(value: Option<&SecretString>) -> String {
            value.map_or_else(|| "(unset)".to_owned(), |_| "(set, hidden)".to_owned())
        }
        fn opt(value: Option<String>) -> String {
            value.unwrap_or_else(|| "(unset)".to_owned())
        }
        fn on(value: bool) -> String {
            if value { "on" } else { "off" }.to_owned()
        }
        let database_url = match url::Url::parse(&self.database_url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("****"));
                url.to_string()
            }
            _ => self.database_url.clone(),
        };
        let relay = self.relay.as_ref();
        let mut out = vec![
            ("SCIMBUS_DATABASE_URL", database_url),
            ("SCIMBUS_LISTEN", self.listen.to_string()),
            (
                "SCIMBUS_PUBLIC_URL",
                opt(self.public_url.as_ref().map(ToString::to_string)),
            ),
            ("SCIMBUS_ADMIN_TOKEN", secret(self.admin_token.as_ref())),
            ("SCIMBUS_MIGRATE", on(self.migrate)),
            ("SCIMBUS_MAX_BODY_BYTES", self.max_body_bytes.to_string()),
            ("SCIMBUS_LOG", self.log.clone()),
            (
                "SCIMBUS_LOG_FORMAT",
                match self.log_format {
                    crate::telemetry::LogFormat::Text => "text",
                    crate::telemetry::LogFormat::Json => "json",
                }
                .to_owned(),
            ),
            ("SCIMBUS_CURSOR_KEY", secret(self.cursor_key.as_ref())),
            (
                "SCIMBUS_CURSOR_TIMEOUT_SECS",
                self.cursor_timeout_secs.to_string(),
            ),
            ("SCIMBUS_AMQP_URL", secret(relay.map(|r| &r.amqp_url))),
        ];
        if let Some(r) = relay {
            out.extend([
                ("SCIMBUS_AMQP_EXCHANGE", r.exchange.clone()),
                (
                    "SCIMBUS_AMQP_UNROUTED_EXCHANGE",
                    r.unrouted_exchange.clone(),
                ),
                ("SCIMBUS_AMQP_UNROUTED_QUEUE", r.unrouted_queue.clone()),
                (
                    "SCIMBUS_AMQP_UNROUTED_MAX_LENGTH",
                    r.unrouted_max_length.to_string(),
                ),
                ("SCIMBUS_RELAY_BATCH_SIZE", r.batch_size.to_string()),
                (
                    "SCIMBUS_RELAY_POLL_MS",
                    r.poll_interval.as_millis().to_string(),
                ),
                (
                    "SCIMBUS_RELAY_MAX_MESSAGE_BYTES",
                    r.max_message_bytes.to_string(),
                ),
            ]);
        }
        let mut tenants: Vec<String> = self
            .rate_limit_tenants
            .iter()
            .map(|(t, l)| format!("{t}={}", l.map_or("off".to_owned(), |l| l.to_string())))
            .collect();
        tenants.sort();
        out.extend([
            (
                "SCIMBUS_EVENT_RETENTION_HOURS",
                (self.event_retention.as_secs() / 3600).to_string(),
            ),
            (
                "SCIMBUS_RETENTION_UNPUBLISHED",
                match self.retention_unpublished {
                    None => "(default for the backend)".to_owned(),
                    Some(true) => "prune".to_owned(),
                    Some(false) => "keep".to_owned(),
                },
            ),
            ("SCIMBUS_MAINTENANCE", on(self.maintenance)),
            ("SCIMBUS_JOURNAL_ENTRIES", self.journal.entries.to_string()),
            (
                "SCIMBUS_JOURNAL_MAX_AGE_HOURS",
                (self.journal.max_age.as_secs() / 3600).to_string(),
            ),
            (
                "SCIMBUS_JOURNAL_BODY_BYTES",
                self.journal.body_bytes.to_string(),
            ),
            ("SCIMBUS_JOURNAL_MASK", on(self.journal.mask)),
            (
                "SCIMBUS_JOURNAL_TENANTS_OFF",
                self.journal.tenants_off.join(","),
            ),
            (
                "SCIMBUS_MAINTENANCE_INTERVAL_SECS",
                self.maintenance_interval.as_secs().to_string(),
            ),
            ("SCIMBUS_METRICS_TOKEN", secret(self.metrics_token.as_ref())),
            (
                "SCIMBUS_RATE_LIMIT",
                self.rate_limit.map_or("off".to_owned(), |l| l.to_string()),
            ),
            ("SCIMBUS_RATE_LIMIT_TENANTS", tenants.join(",")),
            (
                "SCIMBUS_TRUSTED_PROXIES",
                self.trusted_proxies
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "SCIMBUS_REQUEST_TIMEOUT_SECS",
                self.request_timeout.as_secs().to_string(),
            ),
            (
                "SCIMBUS_SHUTDOWN_TIMEOUT_SECS",
                self.shutdown_timeout.as_secs().to_string(),
            ),
        ]);
        out
    }
}

/// Reads a TOML settings file into `SCIMBUS_<KEY>` → value.
fn read_file(path: &str) -> Result<std::collections::HashMap<String, String>, ConfigError> {
    let err = |reason: String| ConfigError {
        name: "SCIMBUS_CONFIG",
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("{path}: {e}")))?;
    let table: toml::Table = text.parse().map_err(|e| err(format!("{path}: {e}")))?;
    table
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => if b { "on" } else { "off" }.to_owned(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    return Err(err(format!(
                        "{path}: `{key}` must be a string, number or boolean, not {}",
                        other.type_str()
                    )));
                }
            };
            Ok((format!("SCIMBUS_{}", key.to_uppercase()), value))
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_and_file(|name| std::env::var(name).ok())
    }

    /// Settings from `env`, and from the TOML file `SCIMBUS_CONFIG` names for what `env`
    /// leaves unset. The file's keys are the variables' names without `SCIMBUS_`, in lower
    /// case (`database_url = "postgres://…"`); a key that names no setting is an error.
    pub fn from_env_and_file(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let file = match env("SCIMBUS_CONFIG").filter(|p| !p.trim().is_empty()) {
            None => std::collections::HashMap::new(),
            Some(path) => read_file(&path)?,
        };
        let asked = std::cell::RefCell::new(std::collections::HashSet::new());
        let settings = Self::from_lookup(|name| {
            asked.borrow_mut().insert(name.to_owned());
            env(name).or_else(|| file.get(name).cloned())
        })?;
        let asked = asked.into_inner();
        let mut unknown: Vec<&String> = file.keys().filter(|k| !asked.contains(*k)).collect();
        unknown.sort();
        if let Some(key) = unknown.first() {
            return Err(ConfigError {
                name: "SCIMBUS_CONFIG",
                reason: format!(
                    "`{}` is not a setting",
                    key.trim_start_matches("SCIMBUS_").to_lowercase()
                ),
            });
        }
        Ok(settings)
    }

    /// Reads settings through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let err = |name: &'static str, reason: String| ConfigError { name, reason };

        let database_url =
            get("SCIMBUS_DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if !(database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
            || database_url.starts_with("sqlite:"))
        {
            return Err(err(
                "SCIMBUS_DATABASE_URL",
                "must start with postgres://, postgresql:// or sqlite:".to_owned(),
            ));
        }
        let listen = get("SCIMBUS_LISTEN")
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned())
            .parse()
            .map_err(|e| err("SCIMBUS_LISTEN", format!("{e} (expected host:port)")))?;
        let public_url = get("SCIMBUS_PUBLIC_URL")
            .map(|v| {
                let url = Url::parse(v.trim_end_matches('/'))
                    .map_err(|e| err("SCIMBUS_PUBLIC_URL", e.to_string()))?;
                if matches!(url.scheme(), "http" | "https") {
                    Ok(url)
                } else {
                    Err(err(
                        "SCIMBUS_PUBLIC_URL",
                        "must be http or https".to_owned(),
                    ))
                }
            })
            .transpose()?;
        let admin_token = get("SCIMBUS_ADMIN_TOKEN").map(|v| {
            if v.len() < 16 {
                Err(err(
                    "SCIMBUS_ADMIN_TOKEN",
                    "must be at least 16 characters".to_owned(),
                ))
            } else {
                Ok(SecretString::from(v))
            }
        });
        let admin_token = admin_token.transpose()?;
        let switch = |name: &'static str| match get(name).as_deref() {
            None | Some("on" | "true" | "1") => Ok(true),
            Some("off" | "false" | "0") => Ok(false),
            Some(other) => Err(err(name, format!("`{other}` is not on or off"))),
        };
        let migrate = switch("SCIMBUS_MIGRATE")?;
        let maintenance = switch("SCIMBUS_MAINTENANCE")?;
        let retention_unpublished = match get("SCIMBUS_RETENTION_UNPUBLISHED").as_deref() {
            None => None,
            Some("prune") => Some(true),
            Some("keep") => Some(false),
            Some(other) => {
                return Err(err(
                    "SCIMBUS_RETENTION_UNPUBLISHED",
                    format!("`{other}` is not keep or prune"),
                ));
            }
        };
        let metrics_token = get("SCIMBUS_METRICS_TOKEN")
            .map(|v| {
                if v.len() < 16 {
                    Err(err(
                        "SCIMBUS_METRICS_TOKEN",
                        "must be at least 16 characters".to_owned(),
                    ))
                } else {
                    Ok(SecretString::from(v))
                }
            })
            .transpose()?;
        let max_body_bytes = match get("SCIMBUS_MAX_BODY_BYTES") {
            None => 8 * 1024 * 1024,
            Some(v) => {
                let n: usize = v
                    .parse()
                    .map_err(|_| err("SCIMBUS_MAX_BODY_BYTES", format!("`{v}` is not a number")))?;
                if n < MIN_BODY_BYTES {
                    return Err(err(
                        "SCIMBUS_MAX_BODY_BYTES",
                        format!("must be at least {MIN_BODY_BYTES}"),
                    ));
                }
                n
            }
        };
        let log = get("SCIMBUS_LOG").unwrap_or_else(|| "info".to_owned());
        let log_format = match get("SCIMBUS_LOG_FORMAT").as_deref() {
            None | Some("text") => crate::telemetry::LogFormat::Text,
            Some("json") => crate::telemetry::LogFormat::Json,
            Some(other) => {
                return Err(err(
                    "SCIMBUS_LOG_FORMAT",
                    format!("`{other}` is not text or json"),
                ));
            }
        };
        let number = |name: &'static str, default: u64, min: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(err(name, format!("`{v}` is not a whole number ≥ {min}"))),
                },
            }
        };
        let cursor_key = get("SCIMBUS_CURSOR_KEY")
            .map(|k| {
                if k.len() < 32 {
                    Err(err(
                        "SCIMBUS_CURSOR_KEY",
                        "must be at least 32 characters".to_owned(),
                    ))
                } else {
                    Ok(SecretString::from(k))
                }
            })
            .transpose()?;
        let cursor_timeout_secs = u32::try_from(number("SCIMBUS_CURSOR_TIMEOUT_SECS", 3600, 1)?)
            .map_err(|_| err("SCIMBUS_CURSOR_TIMEOUT_SECS", "too large".to_owned()))?;
        let relay = match get("SCIMBUS_AMQP_URL") {
            None => None,
            Some(url) => {
                if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
                    return Err(err(
                        "SCIMBUS_AMQP_URL",
                        "must start with amqp:// or amqps://".to_owned(),
                    ));
                }
                let name = |var: &'static str, default: &str| -> Result<String, ConfigError> {
                    let value = get(var).unwrap_or_else(|| default.to_owned());
                    if value.len() > 255 || value.chars().any(char::is_whitespace) {
                        Err(err(
                            var,
                            "must be 1 to 255 characters without spaces".to_owned(),
                        ))
                    } else {
                        Ok(value)
                    }
                };
                Some(RelaySettings {
                    amqp_url: SecretString::from(url),
                    exchange: name("SCIMBUS_AMQP_EXCHANGE", "scimbus.events")?,
                    unrouted_exchange: name("SCIMBUS_AMQP_UNROUTED_EXCHANGE", "scimbus.unrouted")?,
                    unrouted_queue: name("SCIMBUS_AMQP_UNROUTED_QUEUE", "scimbus.unrouted")?,
                    unrouted_max_length: u32::try_from(number(
                        "SCIMBUS_AMQP_UNROUTED_MAX_LENGTH",
                        100_000,
                        1,
                    )?)
                    .map_err(|_| err("SCIMBUS_AMQP_UNROUTED_MAX_LENGTH", "too large".to_owned()))?,
                    batch_size: number("SCIMBUS_RELAY_BATCH_SIZE", 500, 1)?,
                    poll_interval: Duration::from_millis(number("SCIMBUS_RELAY_POLL_MS", 1000, 1)?),
                    max_message_bytes: usize::try_from(number(
                        "SCIMBUS_RELAY_MAX_MESSAGE_BYTES",
                        64 * 1024 * 1024,
                        1024,
                    )?)
                    .unwrap_or(usize::MAX),
                })
            }
        };
        let event_retention = Duration::from_secs(
            number("SCIMBUS_EVENT_RETENTION_HOURS", 168, 1)?
                .checked_mul(3600)
                .ok_or_else(|| err("SCIMBUS_EVENT_RETENTION_HOURS", "too large".to_owned()))?,
        );
        let rate_limit = match get("SCIMBUS_RATE_LIMIT") {
            None => RateLimit::parse("100/s"),
            Some(v) => RateLimit::parse(&v),
        }
        .map_err(|e| err("SCIMBUS_RATE_LIMIT", e))?;
        let mut rate_limit_tenants = std::collections::HashMap::new();
        for pair in get("SCIMBUS_RATE_LIMIT_TENANTS")
            .unwrap_or_default()
            .split(',')
            .filter(|p| !p.trim().is_empty())
        {
            let (tenant, limit) = pair.split_once('=').ok_or_else(|| {
                err(
                    "SCIMBUS_RATE_LIMIT_TENANTS",
                    format!("`{pair}` is not <tenant>=<limit>"),
                )
            })?;
            let limit =
                RateLimit::parse(limit).map_err(|e| err("SCIMBUS_RATE_LIMIT_TENANTS", e))?;
            rate_limit_tenants.insert(tenant.trim().to_owned(), limit);
        }
        let trusted_proxies = get("SCIMBUS_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        err(
                            "SCIMBUS_TRUSTED_PROXIES",
                            format!("`{p}` is not an IP address or CIDR range"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let request_timeout = Duration::from_secs(number("SCIMBUS_REQUEST_TIMEOUT_SECS", 50, 1)?);
        let shutdown_timeout = Duration::from_secs(number("SCIMBUS_SHUTDOWN_TIMEOUT_SECS", 30, 1)?);
        let maintenance_interval =
            Duration::from_secs(number("SCIMBUS_MAINTENANCE_INTERVAL_SECS", 60, 1)?);
        let defaults = JournalSettings::default();
        let journal = JournalSettings {
            entries: number("SCIMBUS_JOURNAL_ENTRIES", defaults.entries, 0)?,
            max_age: Duration::from_secs(
                number(
                    "SCIMBUS_JOURNAL_MAX_AGE_HOURS",
                    defaults.max_age.as_secs() / 3600,
                    1,
                )?
                .saturating_mul(3600),
            ),
            body_bytes: usize::try_from(number(
                "SCIMBUS_JOURNAL_BODY_BYTES",
                defaults.body_bytes as u64,
                1024,
            )?)
            .unwrap_or(usize::MAX),
            mask: match get("SCIMBUS_JOURNAL_MASK") {
                None => false,
                Some(_) => switch("SCIMBUS_JOURNAL_MASK")?,
            },
            tenants_off: get("SCIMBUS_JOURNAL_TENANTS_OFF")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        };
        Ok(Self {
            database_url,
            listen,
            public_url,
            admin_token,
            migrate,
            max_body_bytes,
            log,
            log_format,
            cursor_key,
            cursor_timeout_secs,
            relay,
            event_retention,
            rate_limit,
            rate_limit_tenants,
            trusted_proxies,
            request_timeout,
            shutdown_timeout,
            maintenance_interval,
            maintenance,
            metrics_token,
            retention_unpublished,
            journal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_rate_limit_bursts_ten_seconds_of_its_rate_and_at_least_twice_its_count() {
        let limit = |v: &str| RateLimit::parse(v).unwrap().unwrap();
        // The default: a conformance run's burst (about 620 requests at 100/s) fits.
        let default = settings(&[("SCIMBUS_DATABASE_URL", "sqlite://x.db")])
            .unwrap()
            .rate_limit
            .unwrap();
        assert_eq!((default.requests, default.burst), (100, 1000));
        assert_eq!(limit("20/s").burst, 200);
        assert_eq!(limit("30/min").burst, 60);
        assert_eq!(limit("1/min").burst, 2);
        assert_eq!(limit("600/min").burst, 1200);
        assert_eq!(limit("100/s").to_string(), "100/s (burst 1000)");
        assert_eq!(RateLimit::parse("off").unwrap(), None);
    }

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_run_on_sqlite_on_loopback() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert!(s.migrate);
        assert!(s.max_body_bytes >= MIN_BODY_BYTES);
        assert_eq!(s.event_retention, Duration::from_secs(7 * 24 * 3600));
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (name, value) in [
            ("SCIMBUS_DATABASE_URL", "mysql://x"),
            ("SCIMBUS_LISTEN", "localhost"),
            ("SCIMBUS_PUBLIC_URL", "ftp://x"),
            ("SCIMBUS_ADMIN_TOKEN", "short"),
            ("SCIMBUS_MIGRATE", "maybe"),
            ("SCIMBUS_MAX_BODY_BYTES", "1024"),
            ("SCIMBUS_AMQP_URL", "http://broker"),
            ("SCIMBUS_EVENT_RETENTION_HOURS", "0"),
            ("SCIMBUS_MAINTENANCE_INTERVAL_SECS", "soon"),
            ("SCIMBUS_MAINTENANCE", "sometimes"),
            ("SCIMBUS_RETENTION_UNPUBLISHED", "maybe"),
            ("SCIMBUS_LOG_FORMAT", "xml"),
            ("SCIMBUS_RATE_LIMIT", "fast"),
            ("SCIMBUS_RATE_LIMIT", "0/s"),
            ("SCIMBUS_RATE_LIMIT_TENANTS", "acme"),
            ("SCIMBUS_TRUSTED_PROXIES", "10.0.0.0/33"),
        ] {
            let e = settings(&[(name, value)]).unwrap_err();
            assert_eq!(e.name, name);
        }
    }

    #[test]
    fn the_relay_is_configured_by_the_amqp_url() {
        assert!(settings(&[]).unwrap().relay.is_none());
        let s = settings(&[
            (
                "SCIMBUS_AMQP_URL",
                "amqp://guest:secret-pw@127.0.0.1:5672/%2f",
            ),
            ("SCIMBUS_RELAY_BATCH_SIZE", "50"),
        ])
        .unwrap();
        let relay = s.relay.as_ref().unwrap();
        assert_eq!(relay.exchange, "scimbus.events");
        assert_eq!(relay.unrouted_exchange, "scimbus.unrouted");
        assert_eq!(relay.batch_size, 50);
        assert!(!format!("{s:?}").contains("secret-pw"));
        let e = settings(&[
            ("SCIMBUS_AMQP_URL", "amqp://x"),
            ("SCIMBUS_RELAY_BATCH_SIZE", "0"),
        ])
        .unwrap_err();
        assert_eq!(e.name, "SCIMBUS_RELAY_BATCH_SIZE");
    }

    #[test]
    fn a_settings_file_fills_what_the_environment_leaves_unset_and_names_unknown_keys() {
        let dir = tempfile_dir();
        let path = dir.join("scimbus.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\nmaintenance = false\nevent_retention_hours = 24\n\
             database_url = \"sqlite://from-file.db?mode=rwc\"\n",
        )
        .unwrap();
        let env: HashMap<String, String> = [
            ("SCIMBUS_CONFIG", path.display().to_string()),
            (
                "SCIMBUS_DATABASE_URL",
                "sqlite://from-env.db?mode=rwc".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let s = Settings::from_env_and_file(|k| env.get(k).cloned()).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9999");
        assert!(!s.maintenance);
        assert_eq!(s.event_retention, Duration::from_secs(24 * 3600));
        assert_eq!(
            s.database_url, "sqlite://from-env.db?mode=rwc",
            "the environment wins"
        );

        std::fs::write(&path, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let e = Settings::from_env_and_file(|k| env.get(k).cloned()).unwrap_err();
        assert_eq!(e.name, "SCIMBUS_CONFIG");
        assert!(e.reason.contains("lisen"), "{e}");
        std::fs::write(&path, "listen = \"nowhere\"\n").unwrap();
        let e = Settings::from_env_and_file(|k| env.get(k).cloned()).unwrap_err();
        assert_eq!(e.name, "SCIMBUS_LISTEN");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("scimbus-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_effective_configuration_masks_every_secret() {
        let s = settings(&[
            ("SCIMBUS_ADMIN_TOKEN", "super-secret-admin-token"),
            (
                "SCIMBUS_DATABASE_URL",
                "postgres://scimbus:db-password-1@db:5432/scimbus",
            ),
            ("SCIMBUS_AMQP_URL", "amqp://app:amqp-password-2@mq:5672/%2f"),
            ("SCIMBUS_CURSOR_KEY", "cursor-key-0123456789-0123456789-xx"),
            ("SCIMBUS_METRICS_TOKEN", "metrics-token-0123456789"),
        ])
        .unwrap();
        let printed = format!("{:?}", s.effective());
        for secret in [
            "super-secret",
            "db-password-1",
            "amqp-password-2",
            "cursor-key",
            "metrics-token",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("postgres://scimbus:****@db:5432/scimbus"));
        let names: Vec<&str> = s.effective().iter().map(|(n, _)| *n).collect();
        assert!(
            names.contains(&"SCIMBUS_RATE_LIMIT") && names.contains(&"SCIMBUS_RELAY_BATCH_SIZE")
        );
    }

    #[test]
    fn the_admin_token_is_not_printed() {
        let s = settings(&[("SCIMBUS_ADMIN_TOKEN", "super-secret-admin-token")]).unwrap();
        assert!(!format!("{s:?}").contains("super-secret"));
    }
}
