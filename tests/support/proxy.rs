//! A TCP proxy in front of RabbitMQ that a test cuts and restores: the outage is the
//! proxy's, never the shared broker's. Shared by the test binaries (`#[path]` module).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The real broker's URL (`SCIMBUS_TEST_AMQP_URL` or the local default).
pub fn real_amqp_url() -> String {
    std::env::var("SCIMBUS_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// `host:port` of the real broker.
pub fn broker_address() -> String {
    let real = real_amqp_url();
    let rest = real.split_once('@').map_or("127.0.0.1:5672", |(_, r)| r);
    rest.split('/')
        .next()
        .unwrap_or("127.0.0.1:5672")
        .to_owned()
}

/// A TCP proxy in front of the broker that a test cuts and restores.
pub struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    kill: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let (kill, _) = watch::channel(0u64);
        let target = target.to_owned();
        let (cut2, kill2) = (cut.clone(), kill.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut killed = kill2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = killed.changed() => {}
                    }
                });
            }
        });
        Self { port, cut, kill }
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.kill.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    pub fn url(&self) -> String {
        let real = real_amqp_url();
        let (scheme_auth, rest) = real.split_once('@').unwrap();
        let path = rest.split_once('/').map_or("%2f", |(_, p)| p);
        format!("{scheme_auth}@127.0.0.1:{}/{path}", self.port)
    }
}
