//! The command line: the scenarios (`--list` shows them, in the order a full run takes) and
//! the flags that size and shape a run.

use clap::Parser;
use std::path::PathBuf;

pub(crate) const SCENARIOS: &[(&str, &str)] = &[
    (
        "create-user",
        "POST /Users (Okta-style body, new userName each)",
    ),
    (
        "create-user-8t",
        "POST /Users spread evenly over 8 tenants (round robin per connection)",
    ),
    (
        "get-user",
        "GET /Users/{id} of a random probed user (in ≥ 4 groups, 2 through nesting)",
    ),
    (
        "filter-username",
        "GET /Users?filter=userName eq \"…\" of a random probed user",
    ),
    ("list-index", "GET /Users?startIndex=<random>&count=100"),
    (
        "list-cursor",
        "GET /Users?cursor=&count=100 (first cursor page)",
    ),
    (
        "patch-put",
        "PATCH active=false then PUT the whole user (Okta AIW), random probed user",
    ),
    (
        "add-member-100",
        "PATCH add one member to a group of 100, then remove it",
    ),
    (
        "add-member-10k",
        "PATCH add one member to a group of 10 000, then remove it",
    ),
    (
        "add-member-100k",
        "PATCH add one member to a group of 100 000, then remove it",
    ),
    (
        "group-put",
        "PUT a group of 100 000 replacing 1 000 members (1 connection)",
    ),
    (
        "mixed",
        "40% get-user, 40% filter-username, 20% create-user",
    ),
    (
        "scaling",
        "p50 of GET, filter, list, add/remove member at 1 000 vs --scaling-rows memberships (PostgreSQL and SQLite)",
    ),
    (
        "many-tenants",
        "relay cost per event, idle cost and /metrics size: 2 tenants vs 2 + --idle-tenants",
    ),
    (
        "adversarial",
        "scimbus CPU per adversarial body at the 8 MiB limit, one per entry point (target ≤ 200 ms)",
    ),
    (
        "relay-drain",
        "scimbus relay draining 100 000 events vs a plain lapin publisher",
    ),
    (
        "relay-drain-8t",
        "the same drain with the events spread over 8 tenants",
    ),
    (
        "write-latency",
        "POST /Users at a steady rate: 2xx → event at a consumer",
    ),
    (
        "journal-paired",
        "create, PATCH and PUT alternating between a journaled tenant and one whose journal is off, in one run: the request path's cost of the journal",
    ),
];

#[derive(Parser, Debug)]
#[command(about = "scimbus side by side with its own SQL (pgbench) and a plain publisher")]
pub(crate) struct Args {
    /// Scenarios to run, by name (default: all). `--list` shows them.
    pub(crate) scenarios: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    pub(crate) list: bool,
    /// Concurrent connections (HTTP) and clients (pgbench).
    #[arg(long, default_value_t = 16)]
    pub(crate) connections: usize,
    /// Warm-up seconds per side and scenario.
    #[arg(long, default_value_t = 5)]
    pub(crate) warmup: u64,
    /// Measured seconds per side and scenario.
    #[arg(long, default_value_t = 15)]
    pub(crate) measure: u64,
    /// Seeded users (the largest group has this many members).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) users: u64,
    /// Events in the relay drain.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) events: u64,
    /// Alternating runs of each side in the relay drain.
    #[arg(long, default_value_t = 3)]
    pub(crate) drain_runs: usize,
    /// Membership rows of the scaling probe's grown tenant.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) scaling_rows: u64,
    /// Requests of each kind per round of the scaling probe (sequential, one connection).
    #[arg(long, default_value_t = 300)]
    pub(crate) probe_requests: u64,
    /// Idle tenants added beside the 2 active ones in many-tenants.
    #[arg(long, default_value_t = 9_998)]
    pub(crate) idle_tenants: u64,
    /// Writes/s for write-latency (default: 40% of create-user's throughput, else 100).
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    /// SET push receivers of the written tenant during write-latency, each pushed to a
    /// loopback receiver that answers 202 (the relay's latency with SETs pushed beside it).
    /// Needs `SCIMBUS_SET_KEY_SECRET` and `SCIMBUS_SET_PUSH_ALLOW_PRIVATE=on` in the
    /// environment, which scimbus inherits.
    #[arg(long, default_value_t = 0)]
    pub(crate) set_receivers: u32,
    /// The JWS algorithm of those receivers' SETs: `RS256` (what the Shared Signals
    /// interoperability profile requires) or `ES256` (a P-256 key, cheaper to sign with).
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256"])]
    pub(crate) set_alg: String,
    /// After write-latency, print the N statements that took PostgreSQL the most time during
    /// it (`pg_stat_statements`: calls and milliseconds, warm-up included): where the
    /// database's work goes, e.g. with SET receivers beside the relay. 0: none.
    #[arg(long, default_value_t = 0)]
    pub(crate) top_statements: u32,
    /// Rounds of journal-paired (each a warm-up and a measurement; odd rounds journal the
    /// first tenant, even ones the second: keep it even).
    #[arg(long, default_value_t = 4)]
    pub(crate) journal_rounds: u32,
    #[arg(
        long,
        env = "SCIMBUS_BENCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub(crate) amqp_url: String,
    /// Keep the work directory (captured scripts, pgbench files) and print its path.
    #[arg(long)]
    pub(crate) keep: bool,
    /// The scimbus binary (default: next to this one, i.e. target/release/scimbus).
    #[arg(long, env = "SCIMBUS_BIN")]
    pub(crate) scimbus: Option<PathBuf>,
}
