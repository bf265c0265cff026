//! The HTTP surface (actix-web): one module per resource, each with its own `configure`.
//! Authentication runs as middleware on the tenant scope, before any route inside it.

pub mod admin;
pub mod auth;
pub mod body;
pub mod bulk;
pub mod console;
pub mod context;
pub mod discovery;
pub mod error;
pub mod events;
pub mod groups;
pub mod health;
pub mod journal;
pub mod metrics;
pub mod openapi;
pub mod precondition;
pub mod ratelimit;
pub mod response;
pub mod search;
pub mod sets;
pub mod setup;
pub mod shaped;
pub mod target;
pub mod users;

use actix_web::middleware::from_fn;
use actix_web::web;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use error::ApiError;

/// SCIM media type (RFC 7644 §3.1).
pub const SCIM_JSON: &str = "application/scim+json";

/// Mounts every route, collecting each handler's OpenAPI operation as it goes (so the
/// document and the server cannot disagree). `admin_enabled` is false when no admin token
/// exists: the admin API is then not mounted at all.
pub fn configure(cfg: &mut ServiceConfig, admin_enabled: bool) {
    cfg.configure(health::configure);
    cfg.service(
        scope("/scim/v2/{tenant}")
            .wrap(from_fn(auth::require_scim_token))
            // Outside authentication: it reads the tenant authentication found.
            .wrap(from_fn(journal::capture))
            .configure(search::configure)
            .configure(discovery::configure)
            .configure(users::configure)
            .configure(groups::configure)
            .configure(bulk::configure)
            .default_service(web::to(unknown_route)),
    );
    cfg.service(
        scope("/events/v1/{tenant}")
            .wrap(from_fn(auth::require_events_token))
            .configure(events::configure)
            .default_service(web::to(unknown_route)),
    );
    // After the tenant scope, which takes every path with a tenant segment.
    cfg.service(
        scope("/events/v1")
            .wrap(from_fn(auth::require_reader))
            .configure(events::configure_listing)
            .default_service(web::to(unknown_route)),
    );
    cfg.service(
        scope("/sets/v1")
            .configure(sets::configure)
            .default_service(web::to(unknown_route)),
    );
    // Customer setup links: the link's secret in the path is the credential.
    cfg.service(
        scope("/setup")
            .configure(setup::configure)
            .default_service(web::to(unknown_route)),
    );
    if admin_enabled {
        cfg.service(
            scope("/admin/v1")
                .wrap(from_fn(auth::require_admin_token))
                .configure(admin::configure)
                .configure(sets::configure_admin)
                .configure(setup::configure_admin)
                .default_service(web::to(unknown_route)),
        );
    }
    cfg.default_service(web::to(unknown_route));
}

/// Answers 405 on `path` for every method its handlers do not take (registered after them).
pub fn other_methods(cfg: &mut ServiceConfig, paths: &[&str]) {
    for path in paths {
        cfg.route(path, web::route().to(method_not_allowed));
    }
}

async fn unknown_route() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found("no such endpoint".to_owned()))
}

/// An integer query parameter (`startIndex`, `count`), 400 `invalidValue` otherwise.
pub fn integer(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                ApiError::Scim(crate::scim::error::ScimError::invalid_value(format!(
                    "`{name}` must be an integer"
                )))
            })
        })
        .transpose()
}

/// The answer to a method a resource does not support, with the `Allow` header its
/// route's operations in the OpenAPI document name (the document is generated from the
/// handlers, so it lists exactly what the server routes).
pub async fn method_not_allowed(
    req: actix_web::HttpRequest,
) -> Result<actix_web::HttpResponse, ApiError> {
    let allow = req
        .match_pattern()
        .and_then(|pattern| allowed_methods().get(&pattern).cloned());
    Err(ApiError::MethodNotAllowed(allow))
}

/// The keys of an OpenAPI path item that are operations.
const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Per path template of the OpenAPI document, its methods as an `Allow` value.
fn allowed_methods() -> &'static std::collections::HashMap<String, String> {
    static ALLOWED: std::sync::OnceLock<std::collections::HashMap<String, String>> =
        std::sync::OnceLock::new();
    ALLOWED.get_or_init(|| {
        let doc = openapi::document().unwrap_or_default();
        doc["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, item)| {
                        let mut methods: Vec<String> = item
                            .as_object()
                            .map(|ops| {
                                ops.keys()
                                    .filter(|m| HTTP_METHODS.contains(&m.as_str()))
                                    .map(|m| m.to_uppercase())
                                    .collect()
                            })
                            .unwrap_or_default();
                        methods.sort();
                        (path.clone(), methods.join(", "))
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod layering {
    /// `http` reaches storage and the relay only through `service` (and `tenancy` for
    /// authentication): no path into `store` or `events`, whatever the spelling.
    #[test]
    fn http_names_neither_the_store_nor_the_relay() {
        fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    files(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let mut found = Vec::new();
        files(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http")),
            &mut found,
        );
        assert!(found.len() > 10);
        let mut leaks = Vec::new();
        for path in found {
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                let code: String = code.split_whitespace().collect();
                // `crate::{service, store::x}`: each item of a grouped import.
                let grouped = code.split("crate::{").skip(1).any(|rest| {
                    rest.split('}')
                        .next()
                        .unwrap_or_default()
                        .split(',')
                        .any(|item| item.starts_with("store") || item.starts_with("events"))
                });
                // Spelled in pieces, so that this file does not find itself.
                let paths = ["store", "events"].map(|m| format!("crate::{m}"));
                let up = format!("super::super::{}", "store");
                if grouped || paths.iter().any(|p| code.contains(p.as_str())) || code.contains(&up)
                {
                    leaks.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(
            leaks.is_empty(),
            "http must go through service:\n{}",
            leaks.join("\n")
        );
    }
}
