//! The command line: `serve`, `relay`, `migrate`, `tenant …`, `token …`, `app …`,
//! `schema …`, `events …`, `config`, `openapi` and `audit`.

use crate::service::audit::{self, Actor};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use chrono::{TimeDelta, Utc};
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::clock::SystemClock;
use crate::config::{LoadError, Settings};
use crate::domain::Scope;
use crate::events::Relay;
use crate::service::{Context, apps, brake, events, journal, operators, tenants};
use crate::startup::{Application, open_context};
use crate::store::{Backend, Store};

#[derive(Debug, Parser)]
#[command(
    name = "scimbus",
    version,
    about = "Multi-tenant SCIM 2.0 provisioning service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub settings: crate::config::Declared,
}

/// The command line: every setting is a global flag, so `scimbus serve --listen …` works
/// and each command's `--help` lists the settings with their variables.
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    Cli::command().mut_args(|a| {
        if a.get_env().is_some() {
            a.global(true)
        } else {
            a
        }
    })
}

/// Parses the command line and the settings (flags, `SCIMBUS_*` variables, the
/// `SCIMBUS_CONFIG` file, defaults) of this process.
pub fn parse(argv: Vec<std::ffi::OsString>) -> Result<(Cli, Settings), LoadError> {
    use clap::FromArgMatches as _;
    let (matches, effective) =
        crate::config::parse_with(command(), argv, &|name| std::env::var(name).ok(), true)?;
    let cli = Cli::from_arg_matches(&matches).map_err(LoadError::Usage)?;
    let settings = Settings::from_declared(cli.settings.clone(), effective);
    Ok((cli, settings))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the SCIM and admin APIs.
    Serve {
        /// Create the `demo` tenant if absent, issue a fresh demo token (revoking the last
        /// one) and print how to reach it. Loopback addresses only.
        #[arg(long)]
        demo: bool,
    },
    /// Run only the relay (PostgreSQL only; on SQLite `serve` runs it in process).
    Relay,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage a tenant's bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage application credentials: one secret that reads the events of many tenants.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Security event tokens (RFC 9967): a tenant's receivers (RFC 8936 poll) and the
    /// signing keys.
    Sets {
        #[command(subcommand)]
        command: SetsCommand,
    },
    /// Manage the operators' admin tokens; the audit log names the operator of each admin
    /// action.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// The mass-deprovisioning brake: show, configure, release, discard.
    Brake {
        #[command(subcommand)]
        command: BrakeCommand,
    },
    /// Register and list a tenant's schema extensions (custom attributes).
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
    /// Act on retained events.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Print the effective configuration (flags, then the environment, then
    /// `SCIMBUS_CONFIG`'s file, then defaults) and where each value came from, secrets
    /// masked.
    Config {
        #[command(flatten)]
        output: Output,
    },
    /// Print the OpenAPI document of every route (the committed `openapi/openapi.json`).
    Openapi {
        /// The operator console's document instead (`openapi/console.json`).
        #[arg(long)]
        console: bool,
    },
    /// Read the audit log of admin actions.
    Audit {
        /// Only this tenant's entries.
        #[arg(long)]
        tenant: Option<String>,
        /// Entries after this entry id.
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u64,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Register an extension from a JSON file (RFC 7643 §7 schema format, plus
    /// `resourceType`), then re-index the tenant's resources with a progress bar.
    Register {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        file: std::path::PathBuf,
        #[command(flatten)]
        run: SchemaRun,
    },
    /// Update a registered extension from a JSON file (its `id` names it): add attributes,
    /// widen types; then re-index.
    Update {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        file: std::path::PathBuf,
        #[command(flatten)]
        run: SchemaRun,
    },
    /// Remove a registered extension (stored values are kept, untyped); then re-index.
    Remove {
        #[arg(long)]
        tenant: String,
        /// The extension's URN.
        urn: String,
        #[command(flatten)]
        run: SchemaRun,
    },
    /// List the tenant's extensions (each as the admin API shows it).
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        output: Output,
    },
    /// List the tenant's re-index jobs, newest first.
    Jobs {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        output: Output,
    },
    /// Follow a re-index job to its end with a progress bar (running it here if no server
    /// holds it), then print its report.
    Job {
        #[arg(long)]
        tenant: String,
        id: String,
    },
}

/// How a listing command prints.
#[derive(Debug, clap::Args)]
pub struct Output {
    /// Print one JSON array (the admin API's representation) instead of lines of text.
    #[arg(long)]
    json: bool,
}

impl Output {
    /// Prints `items` as one JSON array and returns true under `--json`; false otherwise
    /// (the caller prints its lines).
    fn json<T: serde::Serialize>(&self, items: &[T]) -> anyhow::Result<bool> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(items)?);
        }
        Ok(self.json)
    }
}

/// How `schema register|update|remove` runs.
#[derive(Debug, clap::Args)]
pub struct SchemaRun {
    /// Check the change against the stored resources and report; store nothing.
    #[arg(long)]
    dry_run: bool,
    /// Queue the re-index and return: a running `serve` takes it up.
    #[arg(long, conflicts_with = "dry_run")]
    no_wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Erasure: redact the payloads of every retained event about a subject.
    Purge {
        #[arg(long)]
        tenant: String,
        /// `Users/{id}` or `Groups/{id}`.
        #[arg(long)]
        subject: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; its SCIM base URL is /scim/v2/<slug>.
    Create { slug: String },
    /// List tenants.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Disable a tenant and revoke its tokens at once; its data is purged in the background
    /// by `serve`, then `scimbus.tenant.deleted` is emitted.
    Delete { slug: String },
    /// The tenant's request journal, newest first, one JSON entry per line: what its IdP
    /// sent and was answered, bodies redacted.
    Journal {
        slug: String,
        /// Entries at or after this RFC 3339 instant.
        #[arg(long)]
        since: Option<String>,
        /// A status (`409`) or a class (`4xx`).
        #[arg(long)]
        status: Option<String>,
        /// Only this method (GET, POST, PUT, PATCH, DELETE).
        #[arg(long)]
        method: Option<String>,
        /// At most this many entries (default 100).
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Create a customer setup link: an expiring, single-use page (its address is printed
    /// once) from which the tenant's IdP admin takes the SCIM base URL, a token and the Okta
    /// or Entra steps, and watches the first requests arrive.
    SetupLink {
        slug: String,
        /// Hours until the link expires (1 to 720; default 72).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=720))]
        expires_in_hours: Option<i64>,
    },
    /// List the tenant's setup links, newest first (never their addresses).
    SetupLinks {
        slug: String,
        #[command(flatten)]
        output: Output,
    },
    /// Revoke a setup link: its page answers 410 from now on (the token it revealed stays;
    /// revoke that with `token revoke`).
    RevokeSetupLink { slug: String, id: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token; its secret is printed once.
    Issue {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// `scim` (default) and/or `events:read`; repeat the flag for several.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Days until the token expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List a tenant's tokens (never their secrets).
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        output: Output,
    },
    /// Revoke a token; the next request with it gets 401.
    Revoke {
        #[arg(long)]
        tenant: String,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BrakeCommand {
    /// What the tenant's brake holds (JSON): settings, window counts, held events.
    Show {
        #[arg(long)]
        tenant: String,
    },
    /// Set the tenant's brake settings from a JSON file (the `settings` of `show`).
    Set {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Release the hold: every held event flows, in order.
    Release {
        #[arg(long)]
        tenant: String,
    },
    /// Discard the held deprovisioning events (once the IdP has corrected every one of
    /// their resources) and release the rest.
    Discard {
        #[arg(long)]
        tenant: String,
    },
}

/// What every receiver registration takes.
#[derive(Debug, clap::Args)]
pub struct ReceiverArgs {
    #[arg(long)]
    name: String,
    /// `full`: SETs carry the resource; `notice`: attribute names only.
    #[arg(long, default_value = "full", value_parser = ["full", "notice"])]
    form: String,
    /// An event URI to receive (repeated); none: every URI of the form.
    #[arg(long = "event")]
    events: Vec<String>,
    /// Also CAEP `session-revoked` and RISC `account-disabled`/`account-purged`.
    #[arg(long)]
    signals: bool,
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256"])]
    alg: String,
    /// The SETs' `aud` (default `urn:scimbus:set-receiver:<id>`).
    #[arg(long)]
    audience: Option<String>,
}

impl ReceiverArgs {
    /// The request, pushed to `endpoint` (with the `Authorization` value in the variable
    /// `authorization_env`) when one is given.
    fn request(
        self,
        after: Option<i64>,
        endpoint: Option<String>,
        authorization_env: Option<String>,
    ) -> anyhow::Result<crate::service::sets::ReceiverRequest> {
        use crate::service::sets::{Alg, Form, PushTarget, ReceiverRequest};
        let authorization = match authorization_env {
            Some(variable) => Some(SecretString::from(
                std::env::var(&variable)
                    .map_err(|_| anyhow::anyhow!("the variable {variable} is not set"))?,
            )),
            None => None,
        };
        Ok(ReceiverRequest {
            name: self.name,
            form: Form::parse(&self.form).unwrap_or_default(),
            events: self.events,
            signals: self.signals,
            alg: Some(Alg::parse(&self.alg).ok_or_else(|| anyhow::anyhow!("unknown alg"))?),
            audience: self.audience,
            after,
            push: endpoint.map(|endpoint| PushTarget {
                endpoint,
                authorization,
            }),
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum SetsCommand {
    /// Register a receiver of the tenant's SETs: polled at `/sets/v1/poll` (RFC 8936), its
    /// credential printed once; or, with `--endpoint`, pushed to (RFC 8935).
    Register {
        slug: String,
        #[command(flatten)]
        receiver: ReceiverArgs,
        /// Start after this sequence (default: the tenant's latest).
        #[arg(long)]
        after: Option<i64>,
        /// Push the SETs to this URL (https; http only to a loopback host).
        #[arg(long)]
        endpoint: Option<String>,
        /// The name of an environment variable holding the `Authorization` header value
        /// sent with every pushed SET (kept out of the command line and its history).
        #[arg(long, value_name = "VARIABLE", requires = "endpoint")]
        authorization_env: Option<String>,
    },
    /// Register a push receiver of every tenant an application credential reads (one
    /// lane per tenant; tenants it gains later follow).
    RegisterApp {
        /// The application credential's id.
        app: String,
        #[command(flatten)]
        receiver: ReceiverArgs,
        /// Push the SETs to this URL (https; http only to a loopback host); omitted: the
        /// receiver polls every tenant's SETs with the credential printed once.
        #[arg(long)]
        endpoint: Option<String>,
        /// The name of an environment variable holding the `Authorization` header value.
        #[arg(long, value_name = "VARIABLE")]
        authorization_env: Option<String>,
    },
    /// List an application credential's receivers with their lanes.
    AppReceivers {
        app: String,
        #[command(flatten)]
        output: Output,
    },
    /// Remove an application credential's receiver (every lane of it).
    RemoveApp { app: String, id: String },
    /// List a tenant's receivers (never their credentials).
    Receivers {
        slug: String,
        #[command(flatten)]
        output: Output,
    },
    /// Remove a receiver: its credential stops working.
    Remove { slug: String, id: String },
    /// Deliver again the SETs of the events after a sequence.
    Replay {
        slug: String,
        id: String,
        #[arg(long)]
        after: i64,
    },
    /// List the signing keys (never their private parts).
    Keys {
        #[command(flatten)]
        output: Output,
    },
    /// Make a new signing key of an algorithm; the one it replaces stays in the JWKS for
    /// `SCIMBUS_SET_KEY_OVERLAP_HOURS`.
    Rotate {
        #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256"])]
        alg: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Issue a credential that reads the events of the tenants named (`--tenant`, repeated)
    /// or of every tenant (`--all-tenants`, those created later included); its secret is
    /// printed once.
    Issue {
        #[arg(long)]
        name: String,
        #[arg(
            long = "tenant",
            conflicts_with = "all_tenants",
            required_unless_present = "all_tenants"
        )]
        tenants: Vec<String>,
        #[arg(long)]
        all_tenants: bool,
        /// Days until the credential expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List the credentials (never their secrets).
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Revoke a credential; its next request gets 401.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Issue an admin token for the operator `name`; its secret is printed once.
    Issue {
        name: String,
        /// Days until the token expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List the admin tokens (never their secrets), the bootstrap one included.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Revoke an admin token (the bootstrap one included: it stays revoked when `serve`
    /// starts again with the same SCIMBUS_ADMIN_TOKEN).
    Revoke { id: String },
}

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { demo } => serve(settings, demo).await,
        Command::Relay => relay(settings).await,
        Command::Migrate => {
            let store = Store::connect(&settings.database_url).await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Tenant { command } => tenant(&offline_context(&settings).await?, command).await,
        Command::Token { command } => token(&offline_context(&settings).await?, command).await,
        Command::App { command } => app(&offline_context(&settings).await?, command).await,
        Command::Sets { command } => {
            sets_command(&offline_context(&settings).await?, command).await
        }
        Command::Operator { command } => {
            operator(&offline_context(&settings).await?, command).await
        }
        Command::Brake { command } => {
            brake_command(&offline_context(&settings).await?, command).await
        }
        Command::Schema { command } => {
            schema_command(&offline_context(&settings).await?, command).await
        }
        Command::Events {
            command: EventsCommand::Purge { tenant, subject },
        } => {
            let ctx = offline_context(&settings).await?;
            let n = events::purge_subject(&ctx, &Actor::os_user(), &tenant, &subject).await?;
            println!("{n} events of {subject} in tenant {tenant} redacted");
            Ok(())
        }
        Command::Config { output } => {
            if output.json {
                println!("{}", serde_json::to_string_pretty(settings.effective())?);
                return Ok(());
            }
            for e in settings.effective() {
                let value = e.value.as_deref().unwrap_or("(unset)");
                let source = serde_json::to_value(e.source)?;
                println!(
                    "{}={value}\t# {}",
                    e.name,
                    source.as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Openapi { console } => {
            let document = if console {
                crate::http::console::document_json()?
            } else {
                crate::http::openapi::document_json()?
            };
            print!("{document}");
            Ok(())
        }
        Command::Audit {
            tenant,
            after,
            limit,
            output,
        } => {
            let ctx = offline_context(&settings).await?;
            let entries = audit::list(&ctx, tenant.as_deref(), after.as_deref(), limit).await?;
            if output.json(&entries)? {
                return Ok(());
            }
            for e in entries {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    e.id,
                    e.at,
                    e.actor,
                    e.action,
                    e.tenant.as_deref().unwrap_or("-"),
                    e.target.as_deref().unwrap_or("-"),
                    e.detail
                );
            }
            Ok(())
        }
    }
}

async fn offline_context(settings: &Settings) -> anyhow::Result<Context> {
    let public_url = match &settings.public_url {
        Some(url) => url.clone(),
        None => Url::parse(&format!("http://{}", settings.listen))?,
    };
    open_context(settings, Arc::new(SystemClock), public_url)
        .await
        .context("cannot open the database (on SQLite, use the admin API while `serve` runs)")
}

/// The user the demo's create command sends.
const DEMO_USER: &str = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen@example.com"}"#;

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    if demo && !settings.listen.ip().is_loopback() {
        bail!(
            "--demo prints a live token: it serves on a loopback address only, not {}",
            settings.listen
        );
    }
    let app = Application::build(settings).await?;
    let ctx = app.context().clone();
    let base = ctx.public_url.as_str().trim_end_matches('/').to_owned();
    // What `serve` prints is for whoever started it; a closed stdout (`| head`, a parent
    // that stopped reading) must not stop the server, so write errors are ignored.
    let text = if demo {
        let (tenant, secret) = tenants::demo(&ctx, &Actor::os_user()).await?;
        let scim = ctx.scim_base(&tenant.slug);
        let token = secret.expose_secret();
        let events = format!("{base}/events/v1/{}", tenant.slug);
        format!(
            "scimbus is serving on {base}\n\
             SCIM base URL: {scim}\n\
             Bearer token (shown once): {token}\n\
             Try:\n\
             \x20 # the users (none yet)\n\
             \x20 curl -H 'Authorization: Bearer {token}' {scim}/Users\n\
             \x20 # create one\n\
             \x20 curl -H 'Authorization: Bearer {token}' -H 'Content-Type: application/scim+json' \\\n\
             \x20   -d '{DEMO_USER}' {scim}/Users\n\
             \x20 # the event it published (the pull API; RabbitMQ consumers get the same)\n\
             \x20 curl -H 'Authorization: Bearer {token}' {events}\n"
        )
    } else {
        format!("scimbus is serving on {base} (health: {base}/healthz)\n")
    };
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
    let handle = app.server_handle();
    let waiters = ctx.event_waiters.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: no new connections; finishing the requests in flight");
        // Long-polls answer now instead of holding the shutdown for their wait.
        waiters.close();
        handle.stop(true).await;
    });
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn brake_command(ctx: &Context, command: BrakeCommand) -> anyhow::Result<()> {
    let actor = Actor::os_user();
    match command {
        BrakeCommand::Show { tenant } => {
            let view = brake::show(ctx, &tenant).await?;
            println!("{}", serde_json::to_string_pretty(&view)?);
        }
        BrakeCommand::Set { tenant, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let settings = serde_json::from_str(&text)
                .with_context(|| format!("{} is not brake settings", file.display()))?;
            let view = brake::configure(ctx, &actor, &tenant, Some(settings)).await?;
            println!("{}", serde_json::to_string_pretty(&view)?);
        }
        BrakeCommand::Release { tenant } => {
            let done = brake::release(ctx, &actor, &tenant).await?;
            println!("{} held events of {tenant} released", done.released);
        }
        BrakeCommand::Discard { tenant } => {
            let done = brake::discard(ctx, &actor, &tenant).await?;
            println!(
                "{} held deprovisioning events of {tenant} discarded, {} released",
                done.discarded, done.released
            );
        }
    }
    Ok(())
}

async fn app(ctx: &Context, command: AppCommand) -> anyhow::Result<()> {
    match command {
        AppCommand::Issue {
            name,
            tenants,
            all_tenants,
            expires_in_days,
        } => {
            let request = apps::AppRequest {
                name,
                tenants: if all_tenants {
                    apps::TenantScope::All
                } else {
                    apps::TenantScope::Only(tenants)
                },
                expires_at: expiry_in(expires_in_days)?,
            };
            let (info, secret) = apps::issue(ctx, &Actor::os_user(), request).await?;
            println!(
                "application credential {} issued; its secret is shown once:",
                info.id
            );
            println!("{}", secret.expose_secret());
        }
        AppCommand::List { output } => {
            let list = apps::list(ctx).await?;
            if output.json(&list)? {
                return Ok(());
            }
            for a in list {
                let state = match (&a.revoked_at, &a.expires_at) {
                    (Some(r), _) => format!("revoked {r}"),
                    (None, Some(e)) => format!("expires {e}"),
                    (None, None) => "live".to_owned(),
                };
                let tenants = if a.all_tenants {
                    "all tenants".to_owned()
                } else {
                    a.tenants
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                println!("{}\t{}\t{tenants}\t{state}", a.id, a.name);
            }
        }
        AppCommand::Revoke { id } => {
            apps::revoke(ctx, &Actor::os_user(), &id).await?;
            println!("application credential {id} revoked");
        }
    }
    Ok(())
}

async fn sets_command(ctx: &Context, command: SetsCommand) -> anyhow::Result<()> {
    use crate::service::sets::{self, Alg};
    let alg_of = |alg: &str| Alg::parse(alg).ok_or_else(|| anyhow::anyhow!("unknown alg {alg}"));
    match command {
        SetsCommand::Register {
            slug,
            receiver,
            after,
            endpoint,
            authorization_env,
        } => {
            let request = receiver.request(after, endpoint, authorization_env)?;
            let (info, secret) = sets::register(ctx, &Actor::os_user(), &slug, request).await?;
            match secret {
                Some(secret) => {
                    println!(
                        "receiver {} registered; poll POST {}/sets/v1/poll with this credential, shown once:",
                        info.id,
                        ctx.public_url.as_str().trim_end_matches('/')
                    );
                    println!("{}", secret.expose_secret());
                }
                None => println!(
                    "receiver {} registered; its SETs are pushed to {} from position {}",
                    info.id,
                    info.endpoint.as_deref().unwrap_or_default(),
                    info.position
                ),
            }
        }
        SetsCommand::RegisterApp {
            app,
            receiver,
            endpoint,
            authorization_env,
        } => {
            let request = receiver.request(None, endpoint, authorization_env)?;
            let (group, secret) =
                crate::service::set_groups::register(ctx, &Actor::os_user(), &app, request).await?;
            match secret {
                Some(secret) => {
                    println!(
                        "receiver {} registered for {} tenants; poll POST {}/sets/v1/poll with \
                         this credential, shown once:",
                        group.id,
                        group.lanes.len(),
                        ctx.public_url.as_str().trim_end_matches('/')
                    );
                    println!("{}", secret.expose_secret());
                }
                None => println!(
                    "receiver {} registered; the SETs of {} tenants are pushed to {}",
                    group.id,
                    group.lanes.len(),
                    group.endpoint.as_deref().unwrap_or_default()
                ),
            }
        }
        SetsCommand::AppReceivers { app, output } => {
            let groups = crate::service::set_groups::list(ctx, &app).await?;
            if output.json(&groups)? {
                return Ok(());
            }
            for group in groups {
                for lane in group.lanes {
                    println!(
                        "{}\t{}\t{}\tposition {} of {}\t{}",
                        group.id, group.name, lane.tenant, lane.position, lane.latest, lane.state
                    );
                }
            }
        }
        SetsCommand::RemoveApp { app, id } => {
            crate::service::set_groups::remove(ctx, &Actor::os_user(), &app, &id).await?;
            println!("receiver {id} removed");
        }
        SetsCommand::Receivers { slug, output } => {
            let list = sets::list(ctx, &slug).await?;
            if output.json(&list)? {
                return Ok(());
            }
            for r in list {
                println!(
                    "{}\t{}\t{}\t{}\t{}\tposition {} of {}\t{}{}",
                    r.id,
                    r.name,
                    r.delivery,
                    r.form.as_str(),
                    r.alg,
                    r.position,
                    r.latest,
                    r.state,
                    r.last_error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
            }
        }
        SetsCommand::Remove { slug, id } => {
            sets::remove(ctx, &Actor::os_user(), &slug, &id).await?;
            println!("receiver {id} removed");
        }
        SetsCommand::Replay { slug, id, after } => {
            let info = sets::replay(ctx, &Actor::os_user(), &slug, &id, after).await?;
            println!("receiver {id} now at position {}", info.position);
        }
        SetsCommand::Keys { output } => {
            let keys = sets::keys(ctx).await?;
            if output.json(&keys)? {
                return Ok(());
            }
            for k in keys {
                let state = match (&k.replaced_at, &k.unpublish_at) {
                    (None, _) => "signing".to_owned(),
                    (Some(_), Some(until)) => format!("published until {until}"),
                    (Some(r), None) => format!("replaced {r}"),
                };
                println!("{}\t{}\t{}\t{state}", k.kid, k.alg, k.created_at);
            }
        }
        SetsCommand::Rotate { alg } => {
            let key = sets::rotate(ctx, &Actor::os_user(), alg_of(&alg)?).await?;
            println!(
                "signing key {} ({}) made; it signs from now on",
                key.kid, key.alg
            );
        }
    }
    Ok(())
}

async fn operator(ctx: &Context, command: OperatorCommand) -> anyhow::Result<()> {
    match command {
        OperatorCommand::Issue {
            name,
            expires_in_days,
        } => {
            let expires_at = expiry_in(expires_in_days)?;
            let (info, secret) =
                operators::issue(ctx, &Actor::os_user(), &name, expires_at).await?;
            println!(
                "admin token {} issued for operator {}; its secret is shown once:",
                info.id, info.name
            );
            println!("{}", secret.expose_secret());
        }
        OperatorCommand::List { output } => {
            let list = operators::list(ctx).await?;
            if output.json(&list)? {
                return Ok(());
            }
            for t in list {
                let state = match (&t.revoked_at, &t.expires_at) {
                    (Some(r), _) => format!("revoked {r}"),
                    (None, Some(e)) => format!("expires {e}"),
                    (None, None) => "live".to_owned(),
                };
                println!("{}\t{}\t{state}", t.id, t.name);
            }
        }
        OperatorCommand::Revoke { id } => {
            operators::revoke(ctx, &Actor::os_user(), &id).await?;
            println!("admin token {id} revoked");
        }
    }
    Ok(())
}

/// `--expires-in-days` as an instant (refused when past what a date can hold).
fn expiry_in(days: Option<u32>) -> anyhow::Result<Option<chrono::DateTime<Utc>>> {
    days.map(|d| {
        Utc::now()
            .checked_add_signed(TimeDelta::days(i64::from(d)))
            .ok_or_else(|| anyhow::anyhow!("--expires-in-days {d} is too far"))
    })
    .transpose()
}

/// SIGTERM (what orchestrators send) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn relay(settings: Settings) -> anyhow::Result<()> {
    let Some(relay_settings) = settings.relay.clone() else {
        bail!("set SCIMBUS_AMQP_URL: the relay publishes to RabbitMQ");
    };
    let ctx = offline_context(&settings).await?;
    if ctx.store.backend() != Backend::Postgres {
        bail!("`scimbus relay` needs PostgreSQL; on SQLite `scimbus serve` runs the relay");
    }
    let relay = Relay::new(
        ctx.store.clone(),
        ctx.clock.clone(),
        relay_settings,
        ctx.relay_metrics.clone(),
    );
    println!("relay running; waiting for leadership and events");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(relay.run_until(ctx.events_written.clone(), stopped));
    shutdown_signal().await;
    // The batch in hand is finished and marked; leadership goes to a standby at once.
    let _ = stop.send(true);
    let _ = running.await;
    Ok(())
}

async fn tenant(ctx: &Context, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create { slug } => {
            let t = tenants::create_tenant(ctx, &Actor::os_user(), &slug).await?;
            println!("tenant {} created: {}", t.slug, ctx.scim_base(&t.slug));
        }
        TenantCommand::List { output } => {
            let list = tenants::list_tenants(ctx).await?;
            if output.json(&list)? {
                return Ok(());
            }
            for t in list {
                let state = t
                    .deleted_at
                    .as_deref()
                    .map_or("live".to_owned(), |d| format!("deleted {d}"));
                println!("{}\t{}\t{state}", t.slug, t.created_at);
            }
        }
        TenantCommand::Journal {
            slug,
            since,
            status,
            method,
            limit,
        } => {
            let since = since
                .as_deref()
                .map(|s| {
                    crate::scim::time::parse(s)
                        .map(crate::scim::time::format)
                        .ok_or_else(|| anyhow::anyhow!("--since {s} is not an RFC 3339 instant"))
                })
                .transpose()?;
            let status = status
                .as_deref()
                .map(|s| {
                    journal::status_range(s).ok_or_else(|| {
                        anyhow::anyhow!("--status {s} is not a status or a class such as 4xx")
                    })
                })
                .transpose()?;
            let method = method.map(|m| m.to_uppercase());
            let query = crate::domain::JournalQuery {
                id: None,
                before: None,
                since: since.as_deref(),
                status,
                method: method.as_deref(),
                limit: limit.clamp(1, 10_000),
            };
            for entry in journal::list(ctx, &slug, &query).await? {
                println!("{}", serde_json::to_string(&entry)?);
            }
        }
        TenantCommand::SetupLink {
            slug,
            expires_in_hours,
        } => {
            let lifetime = expires_in_hours.map(chrono::Duration::hours);
            let (info, url) =
                crate::service::setup::create(ctx, &Actor::os_user(), &slug, lifetime).await?;
            println!(
                "setup link {} for {slug}, expires {}",
                info.id, info.expires_at
            );
            println!("send this address to the tenant's IT admin (it is not shown again):");
            println!("{}", url.expose_secret());
        }
        TenantCommand::SetupLinks { slug, output } => {
            let links = crate::service::setup::list(ctx, &slug).await?;
            if output.json(&links)? {
                return Ok(());
            }
            for l in links {
                println!(
                    "{}\t{}\texpires {}\tby {}",
                    l.id, l.state, l.expires_at, l.created_by
                );
            }
        }
        TenantCommand::RevokeSetupLink { slug, id } => {
            crate::service::setup::revoke(ctx, &Actor::os_user(), &slug, &id).await?;
            println!("setup link {id} revoked");
        }
        TenantCommand::Delete { slug } => {
            tenants::delete_tenant(ctx, &Actor::os_user(), &slug).await?;
            println!(
                "tenant {slug} deleted; its tokens are revoked; `scimbus serve` purges its data"
            );
        }
    }
    Ok(())
}

async fn token(ctx: &Context, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Issue {
            tenant,
            name,
            scopes,
            expires_in_days,
        } => {
            let scopes = scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let expires_at = expiry_in(expires_in_days)?;
            let request = tenants::TokenRequest {
                name,
                scopes,
                expires_at,
            };
            let (info, secret) =
                tenants::issue_token(ctx, &Actor::os_user(), &tenant, request).await?;
            println!("token {} issued; its secret is shown once:", info.id);
            println!("{}", secret.expose_secret());
        }
        TokenCommand::List { tenant, output } => {
            let list = tenants::list_tokens(ctx, &tenant).await?;
            if output.json(&list)? {
                return Ok(());
            }
            for t in list {
                let state = match (&t.revoked_at, &t.expires_at) {
                    (Some(r), _) => format!("revoked {r}"),
                    (None, Some(e)) => format!("expires {e}"),
                    (None, None) => "live".to_owned(),
                };
                println!("{}\t{}\t{}\t{state}", t.id, t.name, Scope::join(&t.scopes));
            }
        }
        TokenCommand::Revoke { tenant, id } => {
            tenants::revoke_token(ctx, &Actor::os_user(), &tenant, &id).await?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}

fn definition_file(file: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

async fn schema_command(ctx: &Context, command: SchemaCommand) -> anyhow::Result<()> {
    use crate::service::schemas::Change;
    let (tenant, change, run) = match command {
        SchemaCommand::Register { tenant, file, run } => {
            (tenant, Change::Register(definition_file(&file)?), run)
        }
        SchemaCommand::Update { tenant, file, run } => {
            let definition = definition_file(&file)?;
            let urn = definition["id"]
                .as_str()
                .with_context(|| format!("{} has no `id` (the extension's URN)", file.display()))?
                .to_owned();
            (tenant, Change::Update(urn, definition), run)
        }
        SchemaCommand::Remove { tenant, urn, run } => (tenant, Change::Remove(urn), run),
        SchemaCommand::List { tenant, output } => {
            let list = crate::service::schemas::list(ctx, &tenant).await?;
            if output.json(&list)? {
                return Ok(());
            }
            for schema in list {
                println!("{}", serde_json::to_string_pretty(&schema)?);
            }
            return Ok(());
        }
        SchemaCommand::Jobs { tenant, output } => {
            let list = crate::service::jobs::list(ctx, &tenant).await?;
            if output.json(&list)? {
                return Ok(());
            }
            for job in list {
                println!(
                    "{}\t{}\t{} {}\t{}/{}\t{} not fitting\t{}",
                    job.id,
                    job.state,
                    job.action,
                    job.schema,
                    job.processed,
                    job.total,
                    job.non_conforming_count,
                    job.created_at
                );
            }
            return Ok(());
        }
        SchemaCommand::Job { tenant, id } => return follow_job(ctx, &tenant, &id).await,
    };
    if run.dry_run {
        let report = crate::service::schemas::preview(ctx, &tenant, &change).await?;
        println!(
            "dry run of {} for {tenant}, nothing stored: {} {} resources checked, {} hold values under the URN, {} would not fit",
            report.action,
            report.checked,
            report.resource_type,
            report.with_values,
            report.non_conforming_count
        );
        for bad in report.non_conforming {
            println!("  {}\t{}", bad.id, bad.detail);
        }
        return Ok(());
    }
    let applied = crate::service::schemas::apply(ctx, &Actor::os_user(), &tenant, &change).await?;
    println!(
        "schema {} {}ed for {tenant}; re-index job {}",
        applied.job.schema,
        applied.job.action.trim_end_matches('e'),
        applied.job.id
    );
    if run.no_wait {
        println!(
            "follow it with: scimbus schema job --tenant {tenant} {}",
            applied.job.id
        );
        return Ok(());
    }
    follow_job(ctx, &tenant, &applied.job.id).await
}

/// Follows a job with a progress bar on a terminal (nothing drawn otherwise), then prints
/// its report.
async fn follow_job(ctx: &Context, tenant: &str, id: &str) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "re-indexing {bar:40} {pos}/{len} resources ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let job = crate::service::jobs::follow(ctx, tenant, id, &mut |job| {
        bar.set_length(u64::try_from(job.total).unwrap_or(0));
        bar.set_position(u64::try_from(job.processed).unwrap_or(0));
    })
    .await?;
    bar.finish_and_clear();
    println!(
        "job {}: {}; {} resources re-indexed, {} with values that do not fit",
        job.id, job.state, job.processed, job.non_conforming_count
    );
    for bad in &job.non_conforming {
        println!("  {}\t{}", bad.id, bad.detail);
    }
    if let Some(error) = &job.error {
        anyhow::bail!("job {} failed: {error}", job.id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    const BEGIN: &str = "<!-- settings table: made from src/config.rs; after changing a setting run \
                         `SCIMBUS_BLESS=1 cargo test --lib settings_table` -->\n";
    const END: &str = "<!-- end of the settings table -->";

    #[test]
    fn the_readme_settings_table_is_the_declaration() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let table = crate::config::markdown_table(&super::command());
        let (before, rest) = readme.split_once(BEGIN).expect("the README's table start");
        let (current, after) = rest.split_once(END).expect("the README's table end");
        if current != table {
            if std::env::var_os("SCIMBUS_BLESS").is_some() {
                std::fs::write(path, format!("{before}{BEGIN}{table}{END}{after}")).unwrap();
            } else {
                panic!(
                    "README.md's settings table differs from the declaration; \
                     run `SCIMBUS_BLESS=1 cargo test --lib settings_table`"
                );
            }
        }
    }
}
