//! The command line: `serve`, `migrate`, `tenant …` and `token …`.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use chrono::{TimeDelta, Utc};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use url::Url;

use crate::clock::SystemClock;
use crate::config::Settings;
use crate::domain::Scope;
use crate::events::Relay;
use crate::service::{Context, tenants};
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
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; its SCIM base URL is /scim/v2/<slug>.
    Create { slug: String },
    /// List tenants.
    List,
    /// Disable a tenant at once and revoke its tokens.
    Delete { slug: String },
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
    },
    /// Revoke a token; the next request with it gets 401.
    Revoke {
        #[arg(long)]
        tenant: String,
        id: String,
    },
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
    if demo {
        let (tenant, secret) = tenants::demo(&ctx).await?;
        let scim = ctx.scim_base(&tenant.slug);
        println!("scimbus is serving on {base}");
        println!("SCIM base URL: {scim}");
        println!("Bearer token (shown once): {}", secret.expose_secret());
        println!("Try:");
        println!(
            "  curl -H 'Authorization: Bearer {}' {scim}/Users",
            secret.expose_secret()
        );
    } else {
        println!("scimbus is serving on {base} (health: {base}/healthz)");
    }
    app.run_until_stopped().await?;
    Ok(())
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
    tokio::select! {
        () = relay.run(ctx.events_written.clone()) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

async fn tenant(ctx: &Context, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create { slug } => {
            let t = tenants::create_tenant(ctx, &slug).await?;
            println!("tenant {} created: {}", t.slug, ctx.scim_base(&t.slug));
        }
        TenantCommand::List => {
            for t in tenants::list_tenants(ctx).await? {
                let state = t
                    .deleted_at
                    .as_deref()
                    .map_or("live".to_owned(), |d| format!("deleted {d}"));
                println!("{}\t{}\t{state}", t.slug, t.created_at);
            }
        }
        TenantCommand::Delete { slug } => {
            tenants::delete_tenant(ctx, &slug).await?;
            println!("tenant {slug} deleted; its tokens are revoked");
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
            let expires_at = expires_in_days.map(|d| Utc::now() + TimeDelta::days(i64::from(d)));
            let request = tenants::TokenRequest {
                name,
                scopes,
                expires_at,
            };
            let (info, secret) = tenants::issue_token(ctx, &tenant, request).await?;
            println!("token {} issued; its secret is shown once:", info.id);
            println!("{}", secret.expose_secret());
        }
        TokenCommand::List { tenant } => {
            for t in tenants::list_tokens(ctx, &tenant).await? {
                let state = match (&t.revoked_at, &t.expires_at) {
                    (Some(r), _) => format!("revoked {r}"),
                    (None, Some(e)) => format!("expires {e}"),
                    (None, None) => "live".to_owned(),
                };
                println!("{}\t{}\t{}\t{state}", t.id, t.name, Scope::join(&t.scopes));
            }
        }
        TokenCommand::Revoke { tenant, id } => {
            tenants::revoke_token(ctx, &tenant, &id).await?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}
