//! An RFC 8935 security event token receiver on a loopback port, for the tests of SET push:
//! it answers each SET as it is told (202 until then), keeps the SETs it accepted (a 2xx
//! answer) in order with their headers and claims, and counts every attempt.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// How the receiver answers a SET (its claims): status, JSON body, headers.
pub type Respond =
    dyn Fn(&Value) -> (u16, Option<Value>, Vec<(&'static str, String)>) + Send + Sync;

/// A SET the receiver accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub jws: String,
    pub claims: Value,
}

type State = (
    Arc<Mutex<Vec<Received>>>,
    Arc<AtomicUsize>,
    Arc<Mutex<Arc<Respond>>>,
);

pub struct PushReceiver {
    /// Where to push: `http://127.0.0.1:{port}/events`.
    pub url: String,
    accepted: Arc<Mutex<Vec<Received>>>,
    attempts: Arc<AtomicUsize>,
    respond: Arc<Mutex<Arc<Respond>>>,
}

/// The claims of a compact JWS, unverified (`Null` when it is none).
pub fn claims_of(jws: &str) -> Value {
    let payload = jws.split('.').nth(1).unwrap_or_default();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap_or_default())
        .unwrap_or(Value::Null)
}

impl PushReceiver {
    /// Listens on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let accepted: Arc<Mutex<Vec<Received>>> = Arc::default();
        let attempts = Arc::new(AtomicUsize::new(0));
        let accept: Arc<Respond> = Arc::new(|_| (202, None, vec![]));
        let respond = Arc::new(Mutex::new(accept));
        let state = web::Data::new((accepted.clone(), attempts.clone(), respond.clone()));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))?;
        let port = server
            .addrs()
            .first()
            .map(std::net::SocketAddr::port)
            .ok_or_else(|| anyhow::anyhow!("the receiver has no address"))?;
        tokio::spawn(server.run());
        Ok(Self {
            url: format!("http://127.0.0.1:{port}/events"),
            accepted,
            attempts,
            respond,
        })
    }

    /// Answers every SET from now on with `respond`.
    pub fn answer(&self, respond: Arc<Respond>) {
        *self.respond.lock().unwrap_or_else(PoisonError::into_inner) = respond;
    }

    /// The SETs accepted so far, in order.
    pub fn accepted(&self) -> Vec<Received> {
        self.accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every SET pushed to it, accepted or not.
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

async fn receive(state: web::Data<State>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (accepted, attempts, respond) = state.get_ref();
    attempts.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let jws = String::from_utf8_lossy(&body).into_owned();
    let claims = claims_of(&jws);
    let respond = respond
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let (status, json, headers) = respond(&claims);
    if (200..300).contains(&status) {
        accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Received {
                authorization: header("authorization"),
                content_type: header("content-type"),
                jws,
                claims,
            });
    }
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in headers {
        response.insert_header((name, value));
    }
    match json {
        Some(body) => response.json(body),
        None => response.finish(),
    }
}
