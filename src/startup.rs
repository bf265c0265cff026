//! `Application::build` opens the store, migrates, bootstraps the admin token and binds the
//! listener (port 0 in tests); `run_until_stopped` serves until SIGINT/SIGTERM, then drains.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use tracing_actix_web::TracingLogger;
use url::Url;
use utoipa_actix_web::AppExt;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::events::{Relay, RelayMetrics};
use crate::http::body::BodyLimit;
use crate::http::error::ApiError;
use crate::scim::error::ScimError;
use crate::scim::schema::Registry;
use crate::service::{Context, tenants};
use crate::store::Store;

/// Opens the store, applies migrations (unless `SCIMBUS_MIGRATE=off`) and stores the
/// bootstrap admin token: everything but HTTP, shared by `serve` and the CLI commands.
pub async fn open_context(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    public_url: Url,
) -> anyhow::Result<Context> {
    let store = Store::connect(&settings.database_url).await?;
    if settings.migrate {
        store.migrate().await.context("migrations failed")?;
    }
    let keep_unpublished = !settings
        .retention_unpublished
        .unwrap_or(store.backend() == crate::store::Backend::Sqlite && settings.relay.is_none());
    let context = Context {
        store,
        clock,
        registry: Registry::core(),
        public_url,
        events_written: Arc::new(tokio::sync::Notify::new()),
        relay_metrics: Arc::new(RelayMetrics::default()),
        cursors: crate::service::cursor::Cursors::new(
            settings
                .cursor_key
                .as_ref()
                .map(|k| secrecy::ExposeSecret::expose_secret(k).as_bytes()),
            settings.cursor_timeout_secs,
        ),
        event_retention: settings.event_retention,
        keep_unpublished,
        maintenance_wake: Arc::new(tokio::sync::Notify::new()),
        metrics: Arc::new(crate::metrics::Metrics::new()),
    };
    if let Some(secret) = &settings.admin_token {
        tenants::bootstrap_admin(&context, secret).await?;
    }
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
    server: Server,
    context: Context,
}

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
        let public_url = match &settings.public_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{local}"))?,
        };
        let context = open_context(&settings, clock, public_url).await?;
        let admin_enabled = tenants::admin_enabled(&context).await?;
        if let Some(relay_settings) = &settings.relay {
            let relay = Relay::new(
                context.store.clone(),
                context.clock.clone(),
                relay_settings.clone(),
                context.relay_metrics.clone(),
            );
            tokio::spawn(relay.run(context.events_written.clone()));
        }

        if settings.maintenance {
            tokio::spawn(crate::service::maintenance::run(
                context.clone(),
                settings.maintenance_interval,
            ));
        }

        let data = web::Data::new(context.clone());
        let limit = web::Data::new(BodyLimit(settings.max_body_bytes));
        let metrics_token = web::Data::new(crate::http::metrics::MetricsToken(
            settings.metrics_token.clone(),
        ));
        let openapi = crate::http::openapi::document();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(crate::http::metrics::record))
                .wrap(actix_web::middleware::from_fn(
                    crate::http::context::request_context,
                ))
                .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
                .app_data(data.clone())
                .app_data(limit.clone())
                .app_data(metrics_token.clone())
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    ApiError::Scim(ScimError::invalid_value(err.to_string())).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|err, _| {
                    ApiError::Scim(ScimError::invalid_value(err.to_string())).into()
                }))
                .into_utoipa_app()
                .configure(|cfg| crate::http::configure(cfg, admin_enabled))
                .into_app()
                // The document of every route (admin included), and Swagger UI served from
                // the binary (vendored: it works offline).
                .service(
                    utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                        .url("/openapi.json", openapi.clone()),
                )
        })
        .listen(listener)?
        .run();
        Ok(Self {
            port: local.port(),
            server,
            context,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service context (store, clock, registry), for the CLI and tests.
    pub fn context(&self) -> &Context {
        &self.context
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
