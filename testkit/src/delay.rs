//! A TCP delay line: a server on 127.0.0.1 as a client sees it across a network. Every new
//! connection costs one round trip before its first byte goes through (the TCP handshake),
//! each byte then arrives half a round trip after it was sent, in each direction, and an
//! optional cap limits the bytes per second in each direction (shared by all connections, as
//! a link is). The proxy reads eagerly (it does not model TCP's window), so a large transfer
//! is limited by the cap, not by the window a real path would allow.
//!
//! Used by `bench/latency` (through the `haul-delay` binary) to measure haul and its peers at
//! real round-trip times; it is not in the tests' path.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The delay line's settings.
#[derive(Debug, Clone, Copy)]
pub struct DelaySettings {
    /// The round trip the path adds: half of it each way, and a whole one per new connection.
    pub round_trip: Duration,
    /// Bytes per second in each direction, shared by all connections (`None`: no cap).
    pub rate: Option<u64>,
}

/// A running delay line in front of `upstream`; stops when dropped.
pub struct DelayProxy {
    endpoint: String,
    address: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl DelayProxy {
    /// Listens on `listen` (port 0: a free one) and forwards to `upstream`.
    pub fn start(listen: SocketAddr, upstream: SocketAddr, settings: DelaySettings) -> std::io::Result<DelayProxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let listener = runtime.block_on(TcpListener::bind(listen))?;
        let address = listener.local_addr()?;
        let links = (Link::new(settings.rate), Link::new(settings.rate));
        runtime.spawn(async move {
            let (up, down) = links;
            while let Ok((client, _)) = listener.accept().await {
                let (up, down) = (up.clone(), down.clone());
                tokio::spawn(async move {
                    let _ = connection(client, upstream, settings.round_trip, up, down).await;
                });
            }
        });
        Ok(DelayProxy { endpoint: format!("http://{address}"), address, _runtime: runtime })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// One direction of the path: when the link is next free, for the cap.
#[derive(Clone)]
struct Link {
    rate: Option<u64>,
    free_at: Arc<Mutex<Instant>>,
}

impl Link {
    fn new(rate: Option<u64>) -> Link {
        Link { rate, free_at: Arc::new(Mutex::new(Instant::now())) }
    }

    /// When `bytes` that arrive at `at` have passed the cap.
    fn passed(&self, at: Instant, bytes: usize) -> Instant {
        let Some(rate) = self.rate else { return at };
        let mut free_at = self.free_at.lock().expect("link lock");
        let start = (*free_at).max(at);
        *free_at = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
        *free_at
    }
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    round_trip: Duration,
    up: Link,
    down: Link,
) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    // The handshake: nothing passes before a round trip.
    tokio::time::sleep(round_trip).await;
    let server = TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    let one_way = round_trip / 2;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let to_server = pump(client_read, server_write, one_way, up);
    let to_client = pump(server_read, client_write, one_way, down);
    let _ = tokio::join!(to_server, to_client);
    Ok(())
}

/// Carries what `from` sends to `to`, each chunk `one_way` later (and within the link's cap),
/// in order; the end of `from` is passed on as the end of `to`.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    one_way: Duration,
    link: Link,
) {
    // Bounded: a slow reader on the far side holds the sender back, as TCP would.
    let (line, mut arriving) = tokio::sync::mpsc::channel::<(Instant, Vec<u8>)>(256);
    let reader = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    let due = link.passed(Instant::now(), read) + one_way;
                    if line.send((due, buffer[..read].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    while let Some((due, chunk)) = arriving.recv().await {
        tokio::time::sleep_until(due).await;
        if to.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
    reader.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_pass_whole_and_in_order_both_ways() {
        // An echo server behind the delay line.
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let upstream = crate::echo_server(&runtime);
        let settings = DelaySettings { round_trip: Duration::from_millis(10), rate: Some(50 << 20) };
        let proxy = DelayProxy::start("127.0.0.1:0".parse().unwrap(), upstream, settings).unwrap();
        let sent: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let got = runtime.block_on(async {
            let stream = TcpStream::connect(proxy.address()).await.unwrap();
            let (mut read, mut write) = stream.into_split();
            let body = sent.clone();
            let writer = tokio::spawn(async move {
                write.write_all(&body).await.unwrap();
                write.shutdown().await.unwrap();
            });
            let mut got = Vec::new();
            read.read_to_end(&mut got).await.unwrap();
            writer.await.unwrap();
            got
        });
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "the bytes came back changed or out of order");
    }
}
