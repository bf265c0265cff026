//! The load generator: HTTP/1.1 keep-alive connections (hyper), closed loop, one request
//! at a time per connection, latency recorded in HDR histograms (µs) per request tag.
//! A run has a warm-up phase (not recorded) and a measurement phase of fixed lengths.

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use scimbus_support::stats::{Latency, histogram};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

use crate::procs::{CpuSplit, Groups};

#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub token: String,
}

/// One request of a unit of work.
#[derive(Clone, Debug)]
pub struct Req {
    pub tag: &'static str,
    pub method: &'static str,
    pub path: String,
    pub body: Option<Bytes>,
    pub expect: u16,
    /// The bearer token when it is not the target's (requests spread over tenants).
    pub token: Option<Arc<str>>,
}

impl Req {
    pub fn get(tag: &'static str, path: String) -> Self {
        Self {
            tag,
            method: "GET",
            path,
            body: None,
            expect: 200,
            token: None,
        }
    }

    /// The same request under another tenant's token.
    pub fn with_token(mut self, token: &Arc<str>) -> Self {
        self.token = Some(token.clone());
        self
    }

    pub fn with_body(
        tag: &'static str,
        method: &'static str,
        path: String,
        body: &serde_json::Value,
        expect: u16,
    ) -> Self {
        Self {
            tag,
            method,
            path,
            body: Some(Bytes::from(body.to_string())),
            expect,
            token: None,
        }
    }
}

pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender, addr })
    }

    /// Sends a request; returns the status and the whole body.
    pub async fn send(&mut self, target: &Target, req: &Req) -> anyhow::Result<(u16, Bytes)> {
        if self.sender.ready().await.is_err() {
            *self = Self::open(self.addr).await?;
        }
        let mut builder = Request::builder()
            .method(req.method)
            .uri(&req.path)
            .header("host", target.addr.to_string())
            .header(
                "authorization",
                format!("Bearer {}", req.token.as_deref().unwrap_or(&target.token)),
            )
            .header("accept", "application/scim+json");
        if req.body.is_some() {
            builder = builder.header("content-type", "application/scim+json");
        }
        let request = builder.body(Full::new(req.body.clone().unwrap_or_default()))?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Sends a request and fails unless it gets the expected status.
    pub async fn expect(&mut self, target: &Target, req: &Req) -> anyhow::Result<Bytes> {
        let (status, body) = self.send(target, req).await?;
        if status != req.expect {
            bail!(
                "{} {} answered {status} (expected {}): {}",
                req.method,
                req.path,
                req.expect,
                snippet(&body)
            );
        }
        Ok(body)
    }
}

/// The start of a response body, for error messages.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(300).collect()
}

#[derive(Debug, Default)]
pub struct LoadResult {
    /// Requests completed inside the measurement phase.
    pub requests: u64,
    /// Requests completed in both phases.
    pub completed: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub secs: f64,
    pub latency: Latency,
    pub per_tag: BTreeMap<&'static str, Latency>,
    pub cpu: CpuSplit,
}

impl LoadResult {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.secs.max(1e-9)
    }
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

struct WorkerOut {
    all: Histogram<u64>,
    tags: BTreeMap<&'static str, Histogram<u64>>,
    requests: u64,
    completed: u64,
    errors: u64,
    first_error: Option<String>,
}

/// Closed loop: `connections` workers, each sending the units `make(worker, n)` returns,
/// request after request, for `warmup` then `measure`.
pub async fn closed_loop<F>(
    target: &Target,
    connections: usize,
    warmup: Duration,
    measure: Duration,
    groups: &Groups,
    make: F,
) -> anyhow::Result<LoadResult>
where
    F: Fn(usize, u64) -> Vec<Req> + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let mut workers = Vec::new();
    for w in 0..connections {
        let mut conn = Conn::open(target.addr).await?;
        let target = target.clone();
        let make = make.clone();
        let phase = phase.clone();
        workers.push(tokio::spawn(async move {
            let mut out = WorkerOut {
                all: histogram(),
                tags: BTreeMap::new(),
                requests: 0,
                completed: 0,
                errors: 0,
                first_error: None,
            };
            let mut n = 0u64;
            // A unit (an add and its remove, say) always runs to its end, so the data is
            // as it was when the run stops.
            while phase.load(Ordering::Relaxed) != STOP {
                let unit = make(w, n);
                n += 1;
                for req in unit {
                    let started_in = phase.load(Ordering::Relaxed);
                    let start = Instant::now();
                    let result = conn.send(&target, &req).await;
                    let micros = start.elapsed().as_micros() as u64;
                    let counted = started_in == MEASURE && phase.load(Ordering::Relaxed) == MEASURE;
                    let failure = match result {
                        Ok((status, _)) if status == req.expect => None,
                        Ok((status, body)) => Some(format!(
                            "{} {} → {status}: {}",
                            req.method,
                            req.path,
                            snippet(&body)
                        )),
                        Err(e) => {
                            // The connection broke: open a new one and go on.
                            if let Ok(c) = Conn::open(target.addr).await {
                                conn = c;
                            }
                            Some(format!("{} {}: {e}", req.method, req.path))
                        }
                    };
                    out.completed += 1;
                    if !counted {
                        continue;
                    }
                    if let Some(f) = failure {
                        out.errors += 1;
                        out.first_error.get_or_insert(f);
                        continue;
                    }
                    out.requests += 1;
                    let _ = out.all.record(micros.max(1));
                    let _ = out
                        .tags
                        .entry(req.tag)
                        .or_insert_with(histogram)
                        .record(micros.max(1));
                }
            }
            out
        }));
    }
    tokio::time::sleep(warmup).await;
    let before = groups.snapshot();
    phase.store(MEASURE, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(measure).await;
    phase.store(STOP, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    let after = groups.snapshot();
    let mut all = histogram();
    let mut tags: BTreeMap<&'static str, Histogram<u64>> = BTreeMap::new();
    let mut result = LoadResult {
        secs,
        cpu: CpuSplit::between(&before, &after),
        ..Default::default()
    };
    for w in workers {
        let out = w.await.context("load worker")?;
        all.add(&out.all).ok();
        for (tag, h) in out.tags {
            tags.entry(tag).or_insert_with(histogram).add(&h).ok();
        }
        result.requests += out.requests;
        result.completed += out.completed;
        result.errors += out.errors;
        if result.first_error.is_none() {
            result.first_error = out.first_error;
        }
    }
    result.latency = Latency::of(&all);
    result.per_tag = tags.iter().map(|(t, h)| (*t, Latency::of(h))).collect();
    Ok(result)
}
