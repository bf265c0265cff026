//! SCIM benchmark: `cargo bench --bench scim -- [options]` (see `docs/benchmarks.md`).
//!
//! A full `Application` (HTTP on 127.0.0.1:0) over a fresh database, filled straight
//! through the store (users, groups and membership rows, as the service writes them), then
//! measured over real HTTP, one request at a time:
//!
//! 1. Groups: PATCH adding one member to (and removing it from) a group of 100 and a group
//!    of 100 000, alternating; the ratio of the medians. Then PUTs whose member list keeps
//!    99 000 of the 100 000 members and replaces 1 000 (Okta's full-list PUT), alternating
//!    between the two lists, while a probe PATCHes another group on new connections.
//! 2. Queries, in a tenant of 100 000 users beside another of the same size: `GET
//!    /Users/{id}` against `filter=userName eq`, sorted pages (`sortBy=userName`) and cursor
//!    pages (RFC 9865) at the start and in the middle, and `filter=emails co "@x"` (1 % of
//!    the users). Each is set beside the same SQL run in-process through the same pool and,
//!    on PostgreSQL, by `pgbench`. Then the per-user `groups` lookup alone, and `GET` by id
//!    and a page in the group tenant, where every user is in one or two groups.
//!
//! Options (or `SCIMBUS_BENCH_*` variables): `--backend postgres|sqlite`, `--users N`
//! (100000 per tenant), `--small N` (100 members), `--replace N` (1000), `--patches N`
//! (200), `--puts N` (3), `--reads N` (300), `--pages N` (20), `--scans N` (10),
//! `--skip-groups`, `--skip-queries`, `--no-pgbench`, `--no-plans`. PostgreSQL:
//! `SCIMBUS_BENCH_DATABASE_URL` (an existing database to connect to, default
//! `postgres://postgres@127.0.0.1:5432/test`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use scimbus::service::audit::Actor;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use rand::Rng;
use scimbus::config::Settings;
use scimbus::domain::{
    ExternalId, GroupHot, NewGroup, NewUser, ResourceId, ResourceKind, Scope, Tenant, TenantId,
    UserHot, UserName,
};
use scimbus::scim::query::{Sort, parse_filter, parse_sort, search_document};
use scimbus::scim::schema::Registry;
use scimbus::scim::validate::validate_resource;
use scimbus::service::Context;
use scimbus::service::cursor::CursorScope;
use scimbus::service::tenants::{self, TokenRequest};
use scimbus::startup::Application;
use scimbus::store::query::{count_statement, users_page_statement};
use scimbus::store::{Backend, groups, members, users};
use scimbus_support::database::Scratch;
use scimbus_support::stats::{max, median, percentile};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

mod api;
mod data;
mod group_writes;
mod options;
mod queries;
mod report;
mod stats;

use api::*;
use data::*;
use group_writes::*;
use options::*;
use queries::*;
use report::*;
use stats::*;

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const FILL_TRANSACTION: usize = 1000;
const MEMBER_CHUNK: usize = 5000;
const PAGE: u64 = 100;
/// Tenant of the group benchmark (users + spares); tenant of the query benchmark.
const ALPHA: &str = "alpha";
const BETA: &str = "beta";
/// Okta's SCIM client gives up after 60 s.
const OKTA_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// A database of the bench's own

async fn bench_db(opts: &Options) -> anyhow::Result<Scratch> {
    match opts.backend {
        Backend::Postgres => Scratch::postgres(&opts.database_url, "scimbus_bench_").await,
        Backend::Sqlite => Scratch::sqlite("bench.db"),
    }
}
