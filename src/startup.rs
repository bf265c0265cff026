//! `Application::build` opens the store, migrates, stores the bootstrap admin token and binds the
//! listener (port 0 in tests); `run_until_stopped` serves until the server is stopped (the
//! CLI stops it on SIGTERM/SIGINT), then lets the relay finish its batch.

use std::net::TcpListener;
use std::sync::Arc;

use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing_actix_web::TracingLogger;
use url::Url;
use utoipa_actix_web::AppExt;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::events::{Relay, RelayMetrics};
use crate::http::body::BodyLimit;
use crate::http::error::ApiError;
use crate::scim::error::ScimError;
use crate::service::{Context, tenants};
use crate::store::Store;

/// Opens the store and applies migrations (unless `SCIMBUS_MIGRATE=off`): everything but
/// HTTP, shared by `serve` and the CLI commands. The bootstrap admin token is `serve`'s
/// alone ([`Application::build`]): other commands never touch it.
pub async fn open_context(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    public_url: Url,
) -> anyhow::Result<Context> {
    crate::telemetry::install_tls_provider();
    let store = Store::connect(&settings.database_url).await?;
    if settings.migrate {
        store.migrate().await.context("migrations failed")?;
    }
    let relay_metrics = Arc::new(RelayMetrics::default());
    let metrics = Arc::new(crate::metrics::Metrics::new(&relay_metrics));
    let keep_unpublished = !settings
        .retention_unpublished
        .unwrap_or(store.backend() == crate::store::Backend::Sqlite && settings.relay.is_none());
    let context = Context {
        store,
        clock,
        registries: crate::service::schemas::Registries::default(),
        public_url,
        events_written: Arc::new(tokio::sync::Notify::new()),
        events_announce: Arc::default(),
        event_waiters: crate::events::waiters::EventWaiters::default(),
        relay_metrics,
        cursors: crate::service::cursor::Cursors::new(
            settings
                .cursor_key
                .as_ref()
                .map(|k| secrecy::ExposeSecret::expose_secret(k).as_bytes()),
            settings.cursor_timeout_secs,
        ),
        event_retention: settings.event_retention,
        keep_unpublished,
        journal: crate::service::journal::Journal::new(
            settings.journal.clone(),
            metrics.journal_dropped.clone(),
        ),
        sets: crate::service::sets::Sets::new(settings.sets.clone()),
        maintenance_wake: Arc::new(tokio::sync::Notify::new()),
        jobs_wake: Arc::new(tokio::sync::Notify::new()),
        metrics,
        backlog_cache: crate::service::readiness::BacklogCache::default(),
    };
    let filled = crate::service::backfill_search_documents(&context).await?;
    if filled > 0 {
        tracing::info!(
            filled,
            "search documents computed for rows written before they existed"
        );
    }
    Ok(context)
}

pub struct Application {
    port: u16,
    admin_port: Option<u16>,
    server: Server,
    context: Context,
    /// Turns true once the HTTP server has stopped: the relay and maintenance finish the
    /// step in hand and return.
    stop: watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
}

/// How long the relay may take to finish its batch once the server has stopped.
const BACKGROUND_STOP_TIMEOUT: Duration = Duration::from_secs(10);

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Builds with an injected clock (tests move it to expire tokens).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let local = listener.local_addr()?;
        let admin_listener = settings
            .admin_listen
            .map(|address| {
                TcpListener::bind(address)
                    .with_context(|| format!("cannot listen on {address} (SCIMBUS_ADMIN_LISTEN)"))
            })
            .transpose()?;
        let admin_local = admin_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let public_url = match &settings.public_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{local}"))?,
        };
        let context = open_context(&settings, clock, public_url).await?;
        if let Some(secret) = &settings.admin_token {
            tenants::bootstrap_admin(&context, secret).await?;
        }
        let admin_enabled = tenants::admin_enabled(&context).await?;
        let console = settings.console && admin_enabled;
        // The background tasks get a pool of their own on PostgreSQL: the HTTP workers run
        // on runtimes of their own, which end before the background tasks finish their
        // last writes at a stop, and a pooled connection a worker opened dies with its
        // runtime (the journal's last batch and the relay's last marks were lost).
        let tasks = if context.store.backend() == crate::store::Backend::Postgres {
            let mut tasks = context.clone();
            tasks.store = crate::store::Store::connect(context.store.url()).await?;
            tasks
        } else {
            context.clone()
        };
        let (stop, stopped) = watch::channel(false);
        let mut background = Vec::new();
        if let Some(relay_settings) = &settings.relay {
            let relay = Relay::new(
                tasks.store.clone(),
                tasks.clock.clone(),
                relay_settings.clone(),
                tasks.relay_metrics.clone(),
            );
            background.push(tokio::spawn(
                relay.run_until(tasks.events_written.clone(), stopped.clone()),
            ));
        } else if tasks.store.backend() == crate::store::Backend::Postgres {
            // No relay here to number the events writes commit: the pull API's readers
            // still see them at once (they also number on demand).
            background.push(tokio::spawn(crate::events::sequencer::run(
                tasks.store.clone(),
                tasks.events_written.clone(),
                stopped.clone(),
            )));
        }

        if tasks.store.backend() == crate::store::Backend::Postgres {
            background.push(tokio::spawn(crate::events::announce::run(
                tasks.store.url().to_owned(),
                tasks.events_announce.clone(),
                stopped.clone(),
            )));
            background.push(tokio::spawn(crate::events::waiters::listen(
                tasks.store.url().to_owned(),
                tasks.event_waiters.clone(),
                stopped.clone(),
            )));
        }

        background.push(tokio::spawn(crate::service::journal::run(
            tasks.clone(),
            stopped.clone(),
        )));
        background.push(tokio::spawn(crate::service::jobs::run(
            tasks.clone(),
            stopped.clone(),
        )));
        if tasks.sets.enabled() {
            background.push(tokio::spawn(crate::service::set_push::run(
                tasks.clone(),
                stopped.clone(),
            )));
        }
        if settings.maintenance {
            background.push(tokio::spawn(crate::service::maintenance::run(
                tasks.clone(),
                settings.maintenance_interval,
                stopped,
            )));
        }

        let data = web::Data::new(context.clone());
        let limit = web::Data::new(BodyLimit(settings.max_body_bytes));
        let proxies = web::Data::new(crate::http::context::TrustedProxies(
            settings.trusted_proxies.clone(),
        ));
        let rate_limits = web::Data::new(crate::http::ratelimit::RateLimits::new(
            settings.rate_limit,
            &settings.rate_limit_tenants,
        ));
        let timeout = web::Data::new(crate::http::context::RequestTimeout(
            settings.request_timeout,
        ));
        let metrics_token = web::Data::new(crate::http::metrics::MetricsToken(
            settings.metrics_token.clone(),
        ));
        let listeners = web::Data::new(crate::http::context::Listeners { admin: admin_local });
        let openapi = web::Data::new(crate::http::openapi::Served(
            serde_json::to_vec(&crate::http::openapi::document()?)?.into(),
        ));
        let server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    crate::http::context::listener_surface,
                ))
                .wrap(actix_web::middleware::from_fn(crate::http::metrics::record))
                .wrap(actix_web::middleware::from_fn(
                    crate::http::context::security_headers,
                ))
                .wrap(actix_web::middleware::from_fn(
                    crate::http::context::request_context,
                ))
                .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
                .wrap(actix_web::middleware::from_fn(
                    crate::http::context::forwarding_headers,
                ))
                .app_data(data.clone())
                .app_data(limit.clone())
                .app_data(timeout.clone())
                .app_data(rate_limits.clone())
                .app_data(proxies.clone())
                .app_data(metrics_token.clone())
                .app_data(listeners.clone())
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    ApiError::Scim(ScimError::invalid_value(err.to_string())).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|err, _| {
                    ApiError::Scim(ScimError::invalid_value(err.to_string())).into()
                }))
                .into_utoipa_app()
                .configure(|cfg| crate::http::configure(cfg, admin_enabled))
                .into_app()
                .configure(|cfg| {
                    if console {
                        crate::http::console::configure(cfg);
                    }
                })
                // The document of every route (admin included), and Swagger UI served from
                // the binary (vendored: it works offline).
                .app_data(openapi.clone())
                .route("/openapi.json", web::get().to(crate::http::openapi::serve))
                .service(
                    utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                        .config(utoipa_swagger_ui::Config::from("/openapi.json")),
                )
        })
        .listen(listener)?;
        let server = match admin_listener {
            Some(admin) => server.listen(admin)?,
            None => server,
        }
        // Signals are the caller's (`serve` stops gracefully on SIGTERM and SIGINT alike).
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .run();
        Ok(Self {
            port: local.port(),
            admin_port: admin_local.map(|a| a.port()),
            server,
            context,
            stop,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `SCIMBUS_ADMIN_LISTEN`'s listener, when there is one.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin_port
    }

    /// The service context (store, clock, registry), for the CLI and tests.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// A handle that stops the server: `stop(true)` stops accepting connections and lets
    /// the requests in flight finish (within `SCIMBUS_SHUTDOWN_TIMEOUT_SECS`).
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped, then lets the relay finish its batch and the
    /// maintenance loop its step, within a bounded time.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        let _ = self.stop.send(true);
        for task in self.background {
            if tokio::time::timeout(BACKGROUND_STOP_TIMEOUT, task)
                .await
                .is_err()
            {
                tracing::warn!("a background task did not stop in time");
            }
        }
        served
    }
}
