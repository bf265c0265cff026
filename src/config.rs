//! Settings, declared once. [`Declared`] names each setting's flag, environment variable,
//! default, validation and whether it is secret; from it come parsing (flag, then
//! `SCIMBUS_*` variable, then the `SCIMBUS_CONFIG` file, then the default), `scimbus
//! config`, `scimbus --help` and the README's table (a test keeps that table equal to
//! [`markdown_table`]). [`Settings`] is the typed view the rest of the service reads;
//! nothing here is global: `Settings` is passed along. Secrets never reach `Debug`, help
//! or `scimbus config`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgMatches, Command, FromArgMatches as _};
use secrecy::SecretString;
use url::Url;

use crate::telemetry::LogFormat;

/// Smallest body limit accepted: a 10 000-member group PUT must fit (DESIGN 17).
pub const MIN_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Where the embedded default keeps its data.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://scimbus.db?mode=rwc";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The environment variable naming the settings file.
const CONFIG_VARIABLE: &str = "SCIMBUS_CONFIG";

/// Every setting. The first paragraph of each comment is its `-h` line; the whole comment
/// is its `--help` text and its row in the README's table.
#[derive(Clone, clap::Args)]
#[command(next_help_heading = "Settings (each flag may instead be set by the variable shown)")]
pub struct Declared {
    /// Where the data lives: `postgres://user@host/db` or `sqlite://file?mode=rwc`. SQLite
    /// means one process: a second one on the same file refuses to start. A password in
    /// it is masked wherever scimbus prints the URL.
    #[arg(long, env = "SCIMBUS_DATABASE_URL", value_name = "URL", hide_env_values = true,
          default_value = DEFAULT_DATABASE_URL, value_parser = database_url)]
    pub database_url: String,
    /// Address to bind, `host:port`; port `0` picks a free one.
    #[arg(long, env = "SCIMBUS_LISTEN", value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// A second address serving only `/admin/v1/…`, `/metrics`, `/healthz` and `/readyz`;
    /// set, the admin API and `/metrics` leave `SCIMBUS_LISTEN`.
    #[arg(long, env = "SCIMBUS_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// The URL clients use, `http` or `https` (TLS terminates at a proxy; Entra requires
    /// HTTPS); builds `Location`, `meta.location` and `$ref`. Unset: `http://` and the
    /// listen address.
    #[arg(long, env = "SCIMBUS_PUBLIC_URL", value_name = "URL", value_parser = public_url)]
    pub public_url: Option<Url>,
    /// `serve` stores it at start as the admin token of the operator `bootstrap` (16
    /// characters or more); once revoked it stays revoked. With none set and none stored,
    /// the admin API is off.
    #[arg(long, env = "SCIMBUS_ADMIN_TOKEN", value_name = "SECRET", hide_env_values = true,
          value_parser = secret::<16>)]
    pub admin_token: Option<SecretString>,
    /// `on`: apply pending migrations at start (under a PostgreSQL advisory lock); `off`
    /// leaves them to `scimbus migrate`.
    #[arg(long, env = "SCIMBUS_MIGRATE", value_name = "on|off", default_value = "on",
          value_parser = switch, action = clap::ArgAction::Set)]
    pub migrate: bool,
    /// Request body limit in bytes, at least 4 MiB; larger bodies answer 413.
    #[arg(long, env = "SCIMBUS_MAX_BODY_BYTES", value_name = "BYTES", default_value = "8388608",
          value_parser = clap::value_parser!(u64).range(MIN_BODY_BYTES as u64..))]
    pub max_body_bytes: u64,
    /// Tracing filter, e.g. `info` or `scimbus=debug` (query strings, which carry filter
    /// values, are logged only at debug).
    #[arg(long, env = "SCIMBUS_LOG", value_name = "FILTER", default_value = "info",
          value_parser = log_filter)]
    pub log: String,
    /// `text` (coloured only when stderr is a terminal and `NO_COLOR` is unset) or `json`:
    /// one object per line, each line of a request carrying its `request_id` (also sent as
    /// `X-Request-Id`, in its events as `correlationid` and in a 5xx body as the
    /// reference).
    #[arg(
        long,
        env = "SCIMBUS_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Where to send traces: an OpenTelemetry collector's OTLP/HTTP base URL
    /// (`http://otel-collector:4318`; spans are posted as protobuf to `<it>/v1/traces`,
    /// service name `scimbus`). A request's W3C `traceparent` becomes its span's parent, and
    /// each event it writes carries that span as its `traceparent`. Unset: no spans are
    /// exported, and an incoming `traceparent` is still copied into the events. The SDK's
    /// `OTEL_BSP_*` and `OTEL_EXPORTER_OTLP_TIMEOUT` variables tune the export.
    #[arg(long, env = "SCIMBUS_OTLP_ENDPOINT", value_name = "URL", value_parser = public_url)]
    pub otlp_endpoint: Option<Url>,
    /// The key sealing pagination cursors (32 characters or more); replicas behind one
    /// load balancer must share it. Unset: a random key per process.
    #[arg(long, env = "SCIMBUS_CURSOR_KEY", value_name = "SECRET", hide_env_values = true,
          value_parser = secret::<32>)]
    pub cursor_key: Option<SecretString>,
    /// How long a pagination cursor stays valid, in seconds (`expiredCursor` after).
    #[arg(long, env = "SCIMBUS_CURSOR_TIMEOUT_SECS", value_name = "SECS", default_value = "3600",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub cursor_timeout_secs: u32,
    /// RabbitMQ URL (`amqp://user:pass@host:5672/%2f` or `amqps://…`); set, `serve` runs a
    /// relay. The `SCIMBUS_AMQP_*` and `SCIMBUS_RELAY_*` settings apply only with it.
    #[arg(long, env = "SCIMBUS_AMQP_URL", value_name = "URL", hide_env_values = true,
          value_parser = amqp_url)]
    pub amqp_url: Option<SecretString>,
    /// The durable topic exchange events go to.
    #[arg(long, env = "SCIMBUS_AMQP_EXCHANGE", value_name = "NAME",
          default_value = "scimbus.events", value_parser = amqp_name)]
    pub amqp_exchange: String,
    /// The exchange's alternate exchange (fanout), where events no queue takes go.
    #[arg(long, env = "SCIMBUS_AMQP_UNROUTED_EXCHANGE", value_name = "NAME",
          default_value = "scimbus.unrouted", value_parser = amqp_name)]
    pub amqp_unrouted_exchange: String,
    /// The durable queue behind the alternate exchange.
    #[arg(long, env = "SCIMBUS_AMQP_UNROUTED_QUEUE", value_name = "NAME",
          default_value = "scimbus.unrouted", value_parser = amqp_name)]
    pub amqp_unrouted_queue: String,
    /// That queue's length limit (oldest dropped first).
    #[arg(long, env = "SCIMBUS_AMQP_UNROUTED_MAX_LENGTH", value_name = "N",
          default_value = "100000", value_parser = clap::value_parser!(u32).range(1..))]
    pub amqp_unrouted_max_length: u32,
    /// Events per publish batch.
    #[arg(long, env = "SCIMBUS_RELAY_BATCH_SIZE", value_name = "N", default_value = "500",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub relay_batch_size: u64,
    /// Milliseconds between the relay's looks when no wake-up comes; also how often a
    /// standby relay tries to lead.
    #[arg(long, env = "SCIMBUS_RELAY_POLL_MS", value_name = "MS", default_value = "1000",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub relay_poll_ms: u64,
    /// Larger events are parked as unpublishable (metric and log line) instead of
    /// blocking their tenant's lane.
    #[arg(long, env = "SCIMBUS_RELAY_MAX_MESSAGE_BYTES", value_name = "BYTES",
          default_value = "67108864", value_parser = clap::value_parser!(u64).range(1024..))]
    pub relay_max_message_bytes: u64,
    /// Addresses or CIDR ranges (comma-separated) of the reverse proxies whose `Forwarded`
    /// and `X-Forwarded-*` headers are believed; from anyone else those headers are dropped.
    #[arg(long, env = "SCIMBUS_TRUSTED_PROXIES", value_name = "LIST",
          value_parser = trusted_proxies)]
    pub trusted_proxies: Option<TrustedProxies>,
    /// Each tenant token's request budget: `<n>/s`, `<n>/min` or `off`. Bursts of ten
    /// seconds of the rate and at least twice `n` (1 000 at once by default; Entra's gallery
    /// asks for at least 25/s). Per process: with N replicas a token may get N times it.
    /// Over it: 429 SCIM error with `Retry-After`.
    #[arg(long, env = "SCIMBUS_RATE_LIMIT", value_name = "BUDGET", default_value = "100/s",
          value_parser = budget)]
    pub rate_limit: Budget,
    /// Per-tenant budgets, e.g. `acme=50/s,globex=off`.
    #[arg(long, env = "SCIMBUS_RATE_LIMIT_TENANTS", value_name = "LIST",
          value_parser = tenant_budgets)]
    pub rate_limit_tenants: Option<TenantBudgets>,
    /// Seconds after which a request still running answers 503 with `Retry-After` (below
    /// Okta's 60 s client timeout). Its transaction rolls back, but a create or a user's
    /// PATCH/PUT on PostgreSQL is one statement that PostgreSQL may still commit if it was
    /// already running (a retry then finds it: 409 for the create, the same state for the
    /// PATCH).
    #[arg(long, env = "SCIMBUS_REQUEST_TIMEOUT_SECS", value_name = "SECS", default_value = "50",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,
    /// On SIGTERM or SIGINT `serve` stops accepting connections, lets requests in flight
    /// finish within this many seconds, lets the relay finish its batch, and exits 0.
    #[arg(long, env = "SCIMBUS_SHUTDOWN_TIMEOUT_SECS", value_name = "SECS", default_value = "30",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub shutdown_timeout_secs: u64,
    /// How long events are kept in the outbox and the pull API, in hours; older ones are
    /// pruned once published.
    #[arg(long, env = "SCIMBUS_EVENT_RETENTION_HOURS", value_name = "HOURS",
          default_value = "168", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub event_retention_hours: u64,
    /// Whether retention may prune events no relay published: `prune` only where no relay
    /// runs at all. Unset: `prune` on SQLite without `SCIMBUS_AMQP_URL` (one process, so
    /// nothing else will publish them), `keep` otherwise.
    #[arg(long, env = "SCIMBUS_RETENTION_UNPUBLISHED", value_name = "keep|prune",
          value_parser = unpublished)]
    pub retention_unpublished: Option<Unpublished>,
    /// `on`: serve the operator console under `/console/` (sign-in with a named admin
    /// token). `off`: the console's paths answer 404.
    #[arg(long, env = "SCIMBUS_CONSOLE", value_name = "on|off", default_value = "off",
          value_parser = switch, action = clap::ArgAction::Set)]
    pub console: bool,
    /// `on`: run retention and the purge of deleted tenants in this process (safe in every
    /// replica).
    #[arg(long, env = "SCIMBUS_MAINTENANCE", value_name = "on|off", default_value = "on",
          value_parser = switch, action = clap::ArgAction::Set)]
    pub maintenance: bool,
    /// How often maintenance runs, in seconds; a tenant deletion in this process starts its
    /// purge at once.
    #[arg(long, env = "SCIMBUS_MAINTENANCE_INTERVAL_SECS", value_name = "SECS",
          default_value = "60", value_parser = clap::value_parser!(u64).range(1..))]
    pub maintenance_interval_secs: u64,
    /// The token `/metrics` asks for (`Authorization: Bearer <it>`, 16 characters or more).
    /// On `SCIMBUS_LISTEN` `/metrics` answers only with it; on `SCIMBUS_ADMIN_LISTEN` it is
    /// open unless this is set.
    #[arg(long, env = "SCIMBUS_METRICS_TOKEN", value_name = "SECRET", hide_env_values = true,
          value_parser = secret::<16>)]
    pub metrics_token: Option<SecretString>,
    /// The request journal's newest entries kept per tenant; `0` turns the journal off.
    #[arg(
        long,
        env = "SCIMBUS_JOURNAL_ENTRIES",
        value_name = "N",
        default_value = "1000"
    )]
    pub journal_entries: u64,
    /// Journal entries older than this many hours are removed.
    #[arg(long, env = "SCIMBUS_JOURNAL_MAX_AGE_HOURS", value_name = "HOURS",
          default_value = "168", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub journal_max_age_hours: u64,
    /// A request or response body larger than this many bytes is journaled as its size only.
    #[arg(long, env = "SCIMBUS_JOURNAL_BODY_BYTES", value_name = "BYTES",
          default_value = "65536", value_parser = clap::value_parser!(u64).range(1024..))]
    pub journal_body_bytes: u64,
    /// `on`: personal data in journaled bodies (every string but structural ones such as
    /// `schemas`, `op`, `path`, `id`) is kept as `***`.
    #[arg(long, env = "SCIMBUS_JOURNAL_MASK", value_name = "on|off", default_value = "off",
          value_parser = switch, action = clap::ArgAction::Set)]
    pub journal_mask: bool,
    /// Comma-separated slugs whose requests are not journaled.
    #[arg(long, env = "SCIMBUS_JOURNAL_TENANTS_OFF", value_name = "LIST", value_parser = slugs)]
    pub journal_tenants_off: Option<Slugs>,
    /// The key sealing the signing keys of security event tokens in the database
    /// (AES-256-GCM; 32 characters or more). Every replica needs the same; changing it makes
    /// the stored signing keys unusable (rotate them after). Unset: no security event
    /// tokens (SET receivers cannot be registered, the JWKS is empty).
    #[arg(long, env = "SCIMBUS_SET_KEY_SECRET", value_name = "SECRET", hide_env_values = true,
          value_parser = secret::<32>)]
    pub set_key_secret: Option<SecretString>,
    /// After a rotation, the replaced signing key stays in the JWKS this many hours, so that
    /// receivers verify tokens signed just before it.
    #[arg(long, env = "SCIMBUS_SET_KEY_OVERLAP_HOURS", value_name = "HOURS",
          default_value = "168", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub set_key_overlap_hours: u64,
    /// Events a SET receiver has not acknowledged are kept past the event retention for
    /// at most this many hours; after that they are pruned and the receiver must resync
    /// (its poll answers 410).
    #[arg(long, env = "SCIMBUS_SET_RETENTION_CAP_HOURS", value_name = "HOURS",
          default_value = "720", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub set_retention_cap_hours: u64,
    /// `on`: SET push endpoints may be loopback, private, link-local or shared addresses
    /// (and `http` to a loopback host); `off`: only public addresses, checked when
    /// connecting, so that a registered endpoint cannot reach internal services.
    #[arg(long, env = "SCIMBUS_SET_PUSH_ALLOW_PRIVATE", value_name = "on|off",
          default_value = "off", value_parser = switch, action = clap::ArgAction::Set)]
    pub set_push_allow_private: bool,
    /// A push receiver whose deliveries have failed for this many seconds is marked
    /// `failing` (admin state, log, `scimbus_set_receivers_failing`); it is still retried.
    #[arg(long, env = "SCIMBUS_SET_PUSH_FAILING_AFTER_SECONDS", value_name = "SECONDS",
          default_value = "900", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub set_push_failing_after_seconds: u64,
    /// Threads that sign security event tokens (RS256: about a thousand SETs a second each
    /// on this project's bench machine). Pushes and polls of every receiver share them.
    #[arg(long, env = "SCIMBUS_SET_SIGNING_THREADS", value_name = "N", default_value = "1",
          value_parser = clap::value_parser!(u64).range(1..=256))]
    pub set_signing_threads: u64,
    /// The nice value (0–19) of the signing threads: above 0 they yield the cores to the
    /// relay and the SCIM requests when the machine is busy, and sign at full speed when
    /// it is not. 0: the process's own priority.
    #[arg(long, env = "SCIMBUS_SET_SIGNING_NICE", value_name = "NICE", default_value = "10",
          value_parser = clap::value_parser!(u8).range(0..=19))]
    pub set_signing_nice: u8,
    /// A TOML file with these settings for what flags and the environment leave unset:
    /// keys are the variables' names without `SCIMBUS_`, in lower case (`rate_limit =
    /// "50/s"`); a key that names no setting stops the process.
    #[arg(long, env = CONFIG_VARIABLE, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

/// Values are never printed by `Debug` (the database URL may hold a password):
/// [`Settings::effective`] shows them, masked.
impl std::fmt::Debug for Declared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Declared").finish_non_exhaustive()
    }
}

/// `SCIMBUS_TRUSTED_PROXIES`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

/// `SCIMBUS_JOURNAL_TENANTS_OFF`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slugs(pub Vec<String>);

/// A request budget setting: `None` is `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget(pub Option<RateLimit>);

/// `SCIMBUS_RATE_LIMIT_TENANTS`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantBudgets(pub HashMap<String, Option<RateLimit>>);

/// `SCIMBUS_RETENTION_UNPUBLISHED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpublished {
    Keep,
    Prune,
}

fn database_url(value: &str) -> Result<String, String> {
    if ["postgres://", "postgresql://", "sqlite:"]
        .iter()
        .any(|p| value.starts_with(p))
    {
        Ok(value.to_owned())
    } else {
        Err("must start with postgres://, postgresql:// or sqlite:".to_owned())
    }
}

fn public_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim_end_matches('/')).map_err(|e| e.to_string())?;
    if matches!(url.scheme(), "http" | "https") {
        Ok(url)
    } else {
        Err("must be http or https".to_owned())
    }
}

/// A secret of at least `MIN` characters; the message never repeats the value.
fn secret<const MIN: usize>(value: &str) -> Result<SecretString, String> {
    if value.len() < MIN {
        Err(format!("must be at least {MIN} characters"))
    } else {
        Ok(SecretString::from(value.to_owned()))
    }
}

fn switch(value: &str) -> Result<bool, String> {
    match value.trim() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(format!("`{other}` is not on or off")),
    }
}

fn log_filter(value: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| value.to_owned())
        .map_err(|e| format!("`{value}` is not a tracing filter: {e}"))
}

fn amqp_url(value: &str) -> Result<SecretString, String> {
    if value.starts_with("amqp://") || value.starts_with("amqps://") {
        Ok(SecretString::from(value.to_owned()))
    } else {
        Err("must start with amqp:// or amqps://".to_owned())
    }
}

fn amqp_name(value: &str) -> Result<String, String> {
    if value.is_empty() || value.len() > 255 || value.chars().any(char::is_whitespace) {
        Err("must be 1 to 255 characters without spaces".to_owned())
    } else {
        Ok(value.to_owned())
    }
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn trusted_proxies(value: &str) -> Result<TrustedProxies, String> {
    list(value)
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("`{p}` is not an IP address or CIDR range"))
        })
        .collect::<Result<_, _>>()
        .map(TrustedProxies)
}

fn budget(value: &str) -> Result<Budget, String> {
    RateLimit::parse(value).map(Budget)
}

fn tenant_budgets(value: &str) -> Result<TenantBudgets, String> {
    list(value)
        .map(|pair| {
            let (tenant, limit) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not <tenant>=<limit>"))?;
            Ok((tenant.trim().to_owned(), RateLimit::parse(limit)?))
        })
        .collect::<Result<_, String>>()
        .map(TenantBudgets)
}

fn unpublished(value: &str) -> Result<Unpublished, String> {
    match value.trim() {
        "keep" => Ok(Unpublished::Keep),
        "prune" => Ok(Unpublished::Prune),
        other => Err(format!("`{other}` is not keep or prune")),
    }
}

fn slugs(value: &str) -> Result<Slugs, String> {
    Ok(Slugs(list(value).map(str::to_owned).collect()))
}

/// The typed settings the service reads, made from [`Declared`]. `Debug` shows the
/// effective values, secrets masked, as `scimbus config` does.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub listen: SocketAddr,
    /// `None`: the admin API and `/metrics` are served on `listen`.
    pub admin_listen: Option<SocketAddr>,
    /// `None`: `http://<listen address>`.
    pub public_url: Option<Url>,
    pub admin_token: Option<SecretString>,
    pub migrate: bool,
    pub max_body_bytes: usize,
    pub log: String,
    pub log_format: LogFormat,
    /// `None`: no traces exported.
    pub otlp_endpoint: Option<Url>,
    /// `None`: a random key per process.
    pub cursor_key: Option<SecretString>,
    pub cursor_timeout_secs: u32,
    /// The relay's broker and topology; `None` without `SCIMBUS_AMQP_URL`.
    pub relay: Option<RelaySettings>,
    pub event_retention: Duration,
    /// `None`: no budget.
    pub rate_limit: Option<RateLimit>,
    pub rate_limit_tenants: HashMap<String, Option<RateLimit>>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub request_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub maintenance_interval: Duration,
    pub metrics_token: Option<SecretString>,
    /// `Some(true)`: prune; `None`: the backend's default.
    pub retention_unpublished: Option<bool>,
    pub maintenance: bool,
    /// `SCIMBUS_CONSOLE`: the operator console is served.
    pub console: bool,
    pub journal: JournalSettings,
    pub sets: SetSettings,
    /// Every setting's effective value and where it came from, secrets masked.
    pub effective: Vec<Effective>,
}

/// Security event tokens (RFC 9967): their signing keys.
#[derive(Clone, Default)]
pub struct SetSettings {
    /// `SCIMBUS_SET_KEY_SECRET`: seals the signing keys; `None`: no SETs.
    pub key_secret: Option<SecretString>,
    /// `SCIMBUS_SET_KEY_OVERLAP_HOURS`: how long a replaced key stays published.
    pub key_overlap: Duration,
    /// `SCIMBUS_SET_RETENTION_CAP_HOURS`: how long events wait for a receiver at most.
    pub retention_cap: Duration,
    /// `SCIMBUS_SET_PUSH_ALLOW_PRIVATE`: push endpoints may be internal addresses.
    pub push_allow_private: bool,
    /// `SCIMBUS_SET_PUSH_FAILING_AFTER_SECONDS`: failures this long mark a receiver failing.
    pub push_failing_after: Duration,
    /// `SCIMBUS_SET_SIGNING_THREADS`: the threads that sign SETs.
    pub signing_threads: usize,
    /// `SCIMBUS_SET_SIGNING_NICE`: their nice value.
    pub signing_nice: u8,
}

impl std::fmt::Debug for SetSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetSettings")
            .field("key_secret", &self.key_secret.as_ref().map(|_| "****"))
            .field("key_overlap", &self.key_overlap)
            .field("retention_cap", &self.retention_cap)
            .field("push_allow_private", &self.push_allow_private)
            .field("push_failing_after", &self.push_failing_after)
            .field("signing_threads", &self.signing_threads)
            .field("signing_nice", &self.signing_nice)
            .finish()
    }
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

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("Settings");
        for e in &self.effective {
            out.field(&e.name, &e.value.as_deref().unwrap_or("(unset)"));
        }
        out.finish()
    }
}

/// Where a setting's effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Flag,
    Environment,
    File,
    Default,
    Unset,
}

/// One setting as `scimbus config` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Effective {
    /// The environment variable.
    pub name: String,
    /// The flag, `--listen`.
    pub flag: String,
    /// The value, masked when secret; `None` when unset.
    pub value: Option<String>,
    pub source: Source,
    pub secret: bool,
}

/// Why settings could not be read.
#[derive(Debug)]
pub enum LoadError {
    /// A bad setting: the process stops with exit code 2 and this message.
    Setting(ConfigError),
    /// Anything else clap reports (usage errors, `--help`, `--version`): `exit()` it.
    Usage(clap::Error),
}

impl From<ConfigError> for LoadError {
    fn from(e: ConfigError) -> Self {
        Self::Setting(e)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub reason: String,
}

/// A declared setting: an argument with a `SCIMBUS_*` variable.
#[derive(Clone)]
struct Setting {
    id: clap::Id,
    name: String,
    flag: String,
    secret: bool,
    is_url: bool,
}

fn settings_of(command: &Command) -> Vec<Setting> {
    command
        .get_arguments()
        .filter_map(|arg| {
            Some(Setting {
                id: arg.get_id().clone(),
                name: arg.get_env()?.to_str()?.to_owned(),
                flag: format!("--{}", arg.get_long()?),
                secret: arg.is_hide_env_values_set(),
                is_url: arg
                    .get_value_names()
                    .is_some_and(|n| n.iter().any(|n| n.as_str() == "URL")),
            })
        })
        .collect()
}

/// Parses `argv` with `command` (which holds [`Declared`]'s arguments). Each setting comes
/// from its flag, else `env(variable)` (an empty value counts as unset), else the
/// `SCIMBUS_CONFIG` file, else its default. Only `env` is read: the process environment
/// is consulted by clap only when `env` is the process environment (`env_is_process`),
/// which keeps `--help` showing each variable.
pub fn parse_with(
    command: Command,
    argv: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<String>,
    env_is_process: bool,
) -> Result<(ArgMatches, Vec<Effective>), LoadError> {
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let given = |flag: &str| {
        argv.iter().skip(1).any(|a| {
            a.to_str()
                .is_some_and(|a| a == flag || a.starts_with(&format!("{flag}=")))
        })
    };
    let config_path = flag_value(&argv, "--config").or_else(|| env(CONFIG_VARIABLE));
    // A file that cannot be read is reported after clap has had its say, so `--help`
    // and `--version` work whatever the file.
    let (file, file_error) = match config_path.map(|path| read_file(&path)) {
        None => (HashMap::new(), None),
        Some(Ok(file)) => (file, None),
        Some(Err(e)) => (HashMap::new(), Some(e)),
    };
    let mut injected: Vec<OsString> = Vec::new();
    let mut sources: HashMap<String, Source> = HashMap::new();
    let mut reset: Vec<clap::Id> = Vec::new();
    let declared = settings_of(&command);
    for Setting { id, name, flag, .. } in &declared {
        let from = if given(flag) {
            Some((Source::Flag, None))
        } else if let Some(value) = env(name) {
            Some((Source::Environment, Some(value)))
        } else {
            file.get(name)
                .map(|value| (Source::File, Some(value.clone())))
        };
        if let Some((source, value)) = from {
            sources.insert(name.clone(), source);
            if let Some(value) = value {
                injected.push(format!("{flag}={value}").into());
            }
        }
        let blank_in_process =
            std::env::var_os(name).is_some_and(|v| v.to_str().is_some_and(|v| v.trim().is_empty()));
        if !env_is_process || blank_in_process {
            reset.push(id.clone());
        }
    }
    let known: std::collections::HashSet<&String> = declared.iter().map(|s| &s.name).collect();
    let mut unknown: Vec<&String> = file.keys().filter(|k| !known.contains(*k)).collect();
    unknown.sort();
    if let Some(key) = unknown.first() {
        return Err(ConfigError {
            name: CONFIG_VARIABLE.to_owned(),
            reason: format!(
                "`{}` is not a setting",
                key.trim_start_matches("SCIMBUS_").to_lowercase()
            ),
        }
        .into());
    }
    let mut command = command.args_override_self(true);
    for id in reset {
        command = command.mut_arg(id, |a| a.env(None));
    }
    let mut full = argv.clone();
    let at = usize::from(!full.is_empty());
    full.splice(at..at, injected);
    let matches = match command.clone().try_get_matches_from(full) {
        Ok(matches) => matches,
        Err(e) => return Err(naming_the_setting(&declared, &sources, e)),
    };
    if let Some(e) = file_error {
        return Err(e.into());
    }
    let effective = declared
        .into_iter()
        .map(|setting| {
            let Setting {
                id,
                name,
                flag,
                secret,
                is_url,
            } = setting;
            let value = matches.get_raw(id.as_str()).map(|values| {
                let raw = values
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(",");
                mask(&raw, secret, is_url)
            });
            let source = match (sources.get(&name), &value) {
                (Some(source), _) => *source,
                (None, Some(_)) => Source::Default,
                (None, None) => Source::Unset,
            };
            Effective {
                name,
                flag,
                value,
                source,
                secret,
            }
        })
        .collect();
    Ok((matches, effective))
}

/// The value of `--flag value` or `--flag=value` in `argv`.
fn flag_value(argv: &[OsString], flag: &str) -> Option<String> {
    let args: Vec<&str> = argv.iter().skip(1).filter_map(|a| a.to_str()).collect();
    args.iter().enumerate().find_map(|(i, a)| {
        if *a == flag {
            args.get(i + 1).map(|v| (*v).to_owned())
        } else {
            a.strip_prefix(flag)
                .and_then(|rest| rest.strip_prefix('='))
                .map(str::to_owned)
        }
    })
}

/// A secret is shown as `(set, hidden)`, except a URL, shown with its password masked,
/// in the user information or in a query parameter (`?password=…`).
fn mask(raw: &str, secret: bool, is_url: bool) -> String {
    match Url::parse(raw) {
        Ok(mut url) if is_url => {
            if url.password().is_some() {
                let _ = url.set_password(Some("****"));
            }
            if url.query().is_some() {
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| {
                        let hidden = k.to_ascii_lowercase().contains("password");
                        let v = if hidden {
                            "****".to_owned()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
            url.to_string()
        }
        _ if secret => "(set, hidden)".to_owned(),
        _ => raw.to_owned(),
    }
}

/// A clap error about a setting's value becomes one naming its variable and where the
/// value came from (never repeating a secret value).
fn naming_the_setting(
    declared: &[Setting],
    sources: &HashMap<String, Source>,
    e: clap::Error,
) -> LoadError {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return LoadError::Usage(e);
    }
    let Some(ContextValue::String(invalid)) = e.get(ContextKind::InvalidArg) else {
        return LoadError::Usage(e);
    };
    let flag = invalid.split([' ', '=']).next().unwrap_or_default();
    let Some(setting) = declared.iter().find(|s| s.flag == flag) else {
        return LoadError::Usage(e);
    };
    let cause =
        std::error::Error::source(&e).map_or_else(|| e.kind().to_string(), ToString::to_string);
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) if !setting.secret && !cause.contains(v.as_str()) => {
            format!("`{v}`: ")
        }
        _ => String::new(),
    };
    let name = setting.name.clone();
    let from = match sources.get(&name) {
        Some(Source::File) => " (from the SCIMBUS_CONFIG file)",
        Some(Source::Flag) => " (from the command line)",
        _ => "",
    };
    LoadError::Setting(ConfigError {
        name,
        reason: format!("{value}{cause}{from}"),
    })
}

/// Reads a TOML settings file into `SCIMBUS_<KEY>` → value.
fn read_file(path: &str) -> Result<HashMap<String, String>, ConfigError> {
    let err = |reason: String| ConfigError {
        name: CONFIG_VARIABLE.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("{path}: {e}")))?;
    // The parser's own message quotes the offending line, which may hold a secret: only
    // the reason and the line number are reported.
    let table: toml::Table = toml::from_str(&text).map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        match line {
            Some(line) => err(format!("{path}, line {line}: {}", e.message())),
            None => err(format!("{path}: {}", e.message())),
        }
    })?;
    table
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => if b { "on" } else { "off" }.to_owned(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
                other => {
                    return Err(err(format!(
                        "{path}: `{key}` must be a string, number, boolean or list, not {}",
                        other.type_str()
                    )));
                }
            };
            Ok((format!("SCIMBUS_{}", key.to_uppercase()), value))
        })
        .collect()
}

impl Settings {
    /// Reads the settings from `env` and the file it names (tests and benches pass a map).
    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let command = <Declared as clap::Args>::augment_args(Command::new("scimbus"));
        let (matches, effective) = parse_with(command, vec!["scimbus".into()], &env, false)
            .map_err(|e| match e {
                LoadError::Setting(e) => e,
                LoadError::Usage(e) => ConfigError {
                    name: "settings".to_owned(),
                    reason: e.to_string(),
                },
            })?;
        let declared = Declared::from_arg_matches(&matches).map_err(|e| ConfigError {
            name: "settings".to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self::from_declared(declared, effective))
    }

    /// The typed view of validated settings.
    pub fn from_declared(d: Declared, effective: Vec<Effective>) -> Self {
        let hours = |h: u64| Duration::from_secs(h.saturating_mul(3600));
        let relay = d.amqp_url.map(|amqp_url| RelaySettings {
            amqp_url,
            exchange: d.amqp_exchange,
            unrouted_exchange: d.amqp_unrouted_exchange,
            unrouted_queue: d.amqp_unrouted_queue,
            unrouted_max_length: d.amqp_unrouted_max_length,
            batch_size: d.relay_batch_size,
            poll_interval: Duration::from_millis(d.relay_poll_ms),
            max_message_bytes: usize::try_from(d.relay_max_message_bytes).unwrap_or(usize::MAX),
        });
        Self {
            database_url: d.database_url,
            listen: d.listen,
            admin_listen: d.admin_listen,
            public_url: d.public_url,
            admin_token: d.admin_token,
            migrate: d.migrate,
            max_body_bytes: usize::try_from(d.max_body_bytes).unwrap_or(usize::MAX),
            log: d.log,
            log_format: d.log_format,
            otlp_endpoint: d.otlp_endpoint,
            cursor_key: d.cursor_key,
            cursor_timeout_secs: d.cursor_timeout_secs,
            relay,
            event_retention: hours(d.event_retention_hours),
            rate_limit: d.rate_limit.0,
            rate_limit_tenants: d.rate_limit_tenants.map(|t| t.0).unwrap_or_default(),
            trusted_proxies: d.trusted_proxies.map(|p| p.0).unwrap_or_default(),
            request_timeout: Duration::from_secs(d.request_timeout_secs),
            shutdown_timeout: Duration::from_secs(d.shutdown_timeout_secs),
            maintenance_interval: Duration::from_secs(d.maintenance_interval_secs),
            metrics_token: d.metrics_token,
            retention_unpublished: d.retention_unpublished.map(|u| u == Unpublished::Prune),
            maintenance: d.maintenance,
            console: d.console,
            journal: JournalSettings {
                entries: d.journal_entries,
                max_age: hours(d.journal_max_age_hours),
                body_bytes: usize::try_from(d.journal_body_bytes).unwrap_or(usize::MAX),
                mask: d.journal_mask,
                tenants_off: d.journal_tenants_off.map(|s| s.0).unwrap_or_default(),
            },
            sets: SetSettings {
                key_secret: d.set_key_secret,
                key_overlap: hours(d.set_key_overlap_hours),
                retention_cap: hours(d.set_retention_cap_hours),
                push_allow_private: d.set_push_allow_private,
                push_failing_after: Duration::from_secs(d.set_push_failing_after_seconds),
                signing_threads: usize::try_from(d.set_signing_threads).unwrap_or(1),
                signing_nice: d.set_signing_nice,
            },
            effective,
        }
    }

    /// Every setting with its effective value, secrets masked (`scimbus config`).
    pub fn effective(&self) -> &[Effective] {
        &self.effective
    }
}

/// The README's settings table, made from the declaration: variable, flag, default and
/// the setting's whole help text.
pub fn markdown_table(command: &Command) -> String {
    let mut out = String::from("| variable | flag | default | meaning |\n|---|---|---|---|\n");
    for Setting { id, name, flag, .. } in settings_of(command) {
        let Some(arg) = command.get_arguments().find(|a| *a.get_id() == id) else {
            continue;
        };
        let default = arg
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(", ");
        let default = if default.is_empty() {
            "unset".to_owned()
        } else {
            default
        };
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace('|', "\\|");
        out.push_str(&format!("| `{name}` | `{flag}` | {default} | {help} |\n"));
    }
    out
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
        let s = Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9999");
        assert!(!s.maintenance);
        assert_eq!(s.event_retention, Duration::from_secs(24 * 3600));
        assert_eq!(
            s.database_url, "sqlite://from-env.db?mode=rwc",
            "the environment wins"
        );

        std::fs::write(&path, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let e = Settings::from_lookup(|k| env.get(k).cloned()).unwrap_err();
        assert_eq!(e.name, "SCIMBUS_CONFIG");
        assert!(e.reason.contains("lisen"), "{e}");
        std::fs::write(&path, "listen = \"nowhere\"\n").unwrap();
        let e = Settings::from_lookup(|k| env.get(k).cloned()).unwrap_err();
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
            (
                "SCIMBUS_SET_KEY_SECRET",
                "set-key-secret-0123456789-0123456789",
            ),
        ])
        .unwrap();
        let printed: String = s
            .effective()
            .iter()
            .filter_map(|e| e.value.clone())
            .collect::<Vec<_>>()
            .join("\n");
        for secret in [
            "super-secret",
            "db-password-1",
            "amqp-password-2",
            "cursor-key",
            "metrics-token",
            "set-key-secret",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("postgres://scimbus:****@db:5432/scimbus"));
        let names: Vec<&str> = s.effective().iter().map(|e| e.name.as_str()).collect();
        assert!(
            names.contains(&"SCIMBUS_RATE_LIMIT") && names.contains(&"SCIMBUS_RELAY_BATCH_SIZE")
        );
    }

    #[test]
    fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
        let dir = tempfile_dir();
        let path = dir.join("scimbus.toml");
        std::fs::write(
            &path,
            "rate_limit = \"9/s\"\nlisten = \"127.0.0.1:1\"\nlog = \"debug\"\n",
        )
        .unwrap();
        let env: HashMap<String, String> = [
            ("SCIMBUS_CONFIG", path.display().to_string()),
            ("SCIMBUS_LISTEN", "127.0.0.1:2".to_owned()),
            ("SCIMBUS_RATE_LIMIT", "7/s".to_owned()),
            // Empty counts as unset: the file's value is used.
            ("SCIMBUS_LOG", " ".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let command = <Declared as clap::Args>::augment_args(Command::new("scimbus"));
        let argv = ["scimbus", "--rate-limit", "5/s"]
            .map(OsString::from)
            .to_vec();
        let (matches, effective) =
            parse_with(command, argv, &|k| env.get(k).cloned(), false).unwrap();
        let d = Declared::from_arg_matches(&matches).unwrap();
        assert_eq!(d.rate_limit.0.unwrap().requests, 5);
        assert_eq!(d.listen.to_string(), "127.0.0.1:2");
        assert_eq!(d.log, "debug");
        assert_eq!(d.cursor_timeout_secs, 3600);
        let source = |name: &str| effective.iter().find(|e| e.name == name).unwrap().source;
        assert_eq!(source("SCIMBUS_RATE_LIMIT"), Source::Flag);
        assert_eq!(source("SCIMBUS_LISTEN"), Source::Environment);
        assert_eq!(source("SCIMBUS_LOG"), Source::File);
        assert_eq!(source("SCIMBUS_CURSOR_TIMEOUT_SECS"), Source::Default);
        assert_eq!(source("SCIMBUS_CURSOR_KEY"), Source::Unset);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn every_setting_has_a_variable_a_flag_and_help_and_secrets_hide_their_values() {
        let command = <Declared as clap::Args>::augment_args(Command::new("scimbus"));
        let settings = settings_of(&command);
        assert_eq!(settings.len(), command.get_arguments().count());
        for s in &settings {
            assert_eq!(
                s.flag
                    .trim_start_matches("--")
                    .replace('-', "_")
                    .to_uppercase(),
                s.name.trim_start_matches("SCIMBUS_"),
                "the flag and the variable name one setting"
            );
        }
        let secret: Vec<&str> = settings
            .iter()
            .filter(|s| s.secret)
            .map(|s| s.name.as_str())
            .collect();
        for name in [
            "SCIMBUS_ADMIN_TOKEN",
            "SCIMBUS_CURSOR_KEY",
            "SCIMBUS_METRICS_TOKEN",
            "SCIMBUS_SET_KEY_SECRET",
            "SCIMBUS_AMQP_URL",
            "SCIMBUS_DATABASE_URL",
        ] {
            assert!(secret.contains(&name), "{name} must be secret");
        }
        let table = markdown_table(&command);
        assert_eq!(table.lines().count(), settings.len() + 2);
        assert!(!table.contains("|  |"), "a setting without help:\n{table}");
    }

    #[test]
    fn the_kubernetes_config_map_holds_valid_settings() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/kubernetes/configmap.yaml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let map: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let data: HashMap<String, String> = map["data"]
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().unwrap().to_owned(),
                    v.as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let command = <Declared as clap::Args>::augment_args(Command::new("scimbus"));
        let declared: Vec<String> = settings_of(&command).into_iter().map(|s| s.name).collect();
        for key in data.keys() {
            assert!(declared.contains(key), "{key} is not a setting");
        }
        let s = Settings::from_lookup(|k| data.get(k).cloned()).unwrap();
        assert!(s.admin_listen.is_some());
    }

    #[test]
    fn secrets_are_not_printed_by_debug_nor_repeated_by_errors() {
        let s = settings(&[
            ("SCIMBUS_ADMIN_TOKEN", "super-secret-admin-token"),
            ("SCIMBUS_DATABASE_URL", "postgres://u:db-password-1@db/x"),
        ])
        .unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("super-secret") && !debug.contains("db-password-1"));
        assert!(debug.contains("postgres://u:****@db/x"), "{debug}");
        // A rejected secret is not quoted back.
        let e = settings(&[("SCIMBUS_ADMIN_TOKEN", "tooshort")]).unwrap_err();
        assert!(!e.to_string().contains("tooshort"), "{e}");
        // A password in the query string is masked too.
        let s = settings(&[(
            "SCIMBUS_DATABASE_URL",
            "postgres://u@db/x?sslmode=require&password=query-pw-2",
        )])
        .unwrap();
        let shown = s.effective()[0].value.clone().unwrap();
        assert!(
            !shown.contains("query-pw-2") && shown.contains("sslmode=require"),
            "{shown}"
        );
    }

    #[test]
    fn a_malformed_settings_file_is_reported_without_quoting_its_lines() {
        let dir = tempfile_dir();
        let path = dir.join("scimbus.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\nadmin_token = \"file-secret-0123456789\n",
        )
        .unwrap();
        let env: HashMap<String, String> =
            HashMap::from([("SCIMBUS_CONFIG".to_owned(), path.display().to_string())]);
        let e = Settings::from_lookup(|k| env.get(k).cloned()).unwrap_err();
        assert_eq!(e.name, "SCIMBUS_CONFIG");
        assert!(e.reason.contains("line 2"), "{e}");
        assert!(!e.to_string().contains("file-secret"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
