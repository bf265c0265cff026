//! A TCP proxy in front of RabbitMQ or PostgreSQL that a test cuts, partitions and
//! restores: the outage is the proxy's, never the shared server's (tests/api and
//! tests/faults).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::amqp;

/// A TCP proxy in front of a server that a test cuts, partitions and restores.
pub struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    kill: watch::Sender<u64>,
    partition: watch::Sender<bool>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `target` (`host:port`).
    pub async fn start(target: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let cut = Arc::new(AtomicBool::new(false));
        let (kill, _) = watch::channel(0u64);
        let (partition, _) = watch::channel(false);
        let target = target.to_owned();
        let (cut2, kill2, partition2) = (cut.clone(), kill.clone(), partition.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut killed = kill2.subscribe();
                let mut parted = partition2.subscribe();
                if *parted.borrow() {
                    // Accepted, never answered.
                    tokio::spawn(async move {
                        let _silent = inbound;
                        let _ = killed.changed().await;
                    });
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let parted_now = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
                        _ = killed.changed() => false,
                        _ = parted.wait_for(|p| *p) => true,
                    };
                    if parted_now {
                        // The server's side closes (as when its keepalives find the peer
                        // gone); the client's stays open and silent, as in a partition.
                        drop(outbound);
                        let _ = killed.changed().await;
                    }
                });
            }
        });
        Ok(Self {
            port,
            cut,
            kill,
            partition,
        })
    }

    /// A network partition: nothing more reaches either side and nothing is closed on
    /// the client's side (no FIN, no RST), so only the client's own timeouts notice;
    /// the server's side is closed, as its keepalives would after a while.
    pub fn partition(&self) {
        self.partition.send_replace(true);
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.kill.send_modify(|n| *n += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    /// The test broker's URL ([`amqp::test_url`]) with this proxy as its host.
    pub fn url(&self) -> String {
        let real = amqp::test_url();
        let (scheme_auth, rest) = real
            .split_once('@')
            .unwrap_or(("amqp://guest:guest", rest_of(&real)));
        let path = rest.split_once('/').map_or("%2f", |(_, p)| p);
        format!("{scheme_auth}@127.0.0.1:{}/{path}", self.port)
    }
}

/// An AMQP URL without credentials: what follows the scheme.
fn rest_of(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, r)| r)
}
