//! The HTTP client for plain `http://` endpoints: hyper's pooled client, as the SDK's default
//! one is, whose sockets acknowledge what they receive at once (Linux `TCP_QUICKACK`).
//!
//! Why: a server that leaves Nagle's algorithm on (Garage 2.5, the published s3s-fs binary)
//! writes a small GET's response head and body as two segments and holds the second until the
//! first is acknowledged, and Linux delays that acknowledgement by 40 ms or more when the
//! receiver has nothing to send back. Measured on Garage (bench/ack-delay): one 8 KiB
//! GET after another took 45-60 ms (botocore the same), 2 ms with quick ACKs; W1's 5,000
//! downloads with 64 in flight were held to 64 / 45 ms, about 1,400 objects a second, with both
//! cores 40% idle. Every client on such a server pays it; a quick ACK costs one `setsockopt`
//! per read.
//!
//! Only plain-HTTP endpoints get this client (self-hosted servers on a local network, where
//! the stall shows). HTTPS endpoints, AWS among them, keep the SDK's client with its TLS
//! settings and certificates, which this module does not repeat.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_sdk_s3::config::RuntimeComponents;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector as TcpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::find_source;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether `endpoint` is one this client serves: plain HTTP.
pub fn serves(endpoint: &str) -> bool {
    crate::manifest::plain_http(endpoint)
}

/// A client for one SDK client's requests; its connection pools live as long as it does.
pub fn client() -> SharedHttpClient {
    SharedHttpClient::new(QuickAckClient::default())
}

/// One pool per timeout setting, as the SDK's client keeps them: the SDK asks for a connector
/// on every request attempt.
#[derive(Debug, Default)]
struct QuickAckClient {
    pools: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

type Timeouts = (Option<Duration>, Option<Duration>);

/// The most a connection reads ahead of the body's consumer (each range or object written as
/// it arrives). W7's download at a 100 ms round trip, 512 objects in flight: 394 MiB peak RSS
/// with it against 612 MiB without (bench/results/latency-w7-memory-20261203.md).
const READ_BUFFER: usize = 64 * 1024;

impl HttpClient for QuickAckClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut pools = self.pools.lock().expect("connector pools");
        if let Some((_, pool)) = pools.iter().find(|(key, _)| *key == timeouts) {
            return pool.clone();
        }
        let mut tcp = TcpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(timeouts.0);
        let mut builder = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
        // hyper needs a timer for its pool's idle timeout (90 s, as in the SDK's client).
        builder.pool_timer(TokioTimer::new());
        // hyper grows a connection's read buffer up to 400 KiB while a large body streams in;
        // with hundreds of objects in flight (a long round trip) that was most of the memory.
        builder.http1_max_buf_size(READ_BUFFER);
        let pool =
            SharedHttpConnector::new(Pool { client: builder.build(QuickAckConnector(tcp)), read_timeout: timeouts.1 });
        pools.push((timeouts, pool.clone()));
        pool
    }
}

#[derive(Debug)]
struct Pool {
    client: hyper_util::client::legacy::Client<QuickAckConnector, SdkBody>,
    /// Until the response head arrives, as the SDK's read timeout.
    read_timeout: Option<Duration>,
}

impl HttpConnector for Pool {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(err) => return HttpConnectorFuture::ready(Err(ConnectorError::user(err.into()))),
        };
        let sent = self.client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let answered = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, sent)
                    .await
                    .map_err(|elapsed| ConnectorError::timeout(elapsed.into()))?,
                None => sent.await,
            };
            let response = answered.map_err(classify)?.map(SdkBody::from_body_1_x);
            aws_smithy_runtime_api::http::Response::try_from(response)
                .map_err(|err| ConnectorError::other(err.into(), None))
        })
    }
}

/// What the SDK's retry policy needs to know about a failed request, as its own client
/// classifies hyper's errors: a dropped or refused connection is I/O (retried), a timeout is
/// a timeout (retried), a connection closed mid-answer is transient.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    if err.is_connect() {
        return ConnectorError::io(err.into());
    }
    let hyper = find_source::<hyper::Error>(&err);
    let io = find_source::<std::io::Error>(&err).is_some();
    match hyper {
        Some(hyper) if hyper.is_timeout() => ConnectorError::timeout(err.into()),
        Some(hyper) if hyper.is_user() => ConnectorError::user(err.into()),
        Some(hyper) if hyper.is_closed() || hyper.is_canceled() => ConnectorError::io(err.into()),
        _ if io => ConnectorError::io(err.into()),
        Some(hyper) if hyper.is_incomplete_message() => {
            ConnectorError::other(err.into(), Some(ErrorKind::TransientError))
        }
        _ => ConnectorError::other(err.into(), None),
    }
}

/// hyper's TCP connector, handing out [`QuickAckStream`]s.
#[derive(Clone, Debug)]
struct QuickAckConnector(TcpConnector);

impl tower_service::Service<http::Uri> for QuickAckConnector {
    type Response = QuickAckStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<QuickAckStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move { Ok(QuickAckStream(connecting.await?)) })
    }
}

/// A TCP connection that acknowledges at once whatever each read took in.
#[derive(Debug)]
struct QuickAckStream(TokioIo<tokio::net::TcpStream>);

impl QuickAckStream {
    /// Sends the acknowledgement the kernel is holding back, and asks for the next ones at
    /// once. Linux falls back to delaying them as the connection goes back and forth, so
    /// this is asked after every read. Best effort: a failure only means the default delay.
    fn quick_ack(&self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd as _;
            let on: libc::c_int = 1;
            // SAFETY: the descriptor is this open socket; `on` outlives the call, whose length
            // argument is its size.
            unsafe {
                libc::setsockopt(
                    self.0.inner().as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_QUICKACK,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
}

impl hyper::rt::Read for QuickAckStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.0).poll_read(cx, buf);
        if polled.is_ready() {
            this.quick_ack();
        }
        polled
    }
}

impl hyper::rt::Write for QuickAckStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }
}

impl Connection for QuickAckStream {
    fn connected(&self) -> Connected {
        self.0.connected()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::time::{Duration, Instant};

    use super::{QuickAckStream, serves};

    #[test]
    fn only_plain_http_endpoints_get_the_quick_ack_client() {
        assert!(serves("http://127.0.0.1:3900"));
        assert!(serves("HTTP://garage.lan"));
        assert!(!serves("https://s3.amazonaws.com"));
        assert!(!serves("http"));
        assert!(!serves(""));
    }

    /// Bytes the peer has not acknowledged yet, in `socket`'s send queue.
    #[cfg(target_os = "linux")]
    fn unacknowledged(socket: &std::net::TcpStream) -> libc::c_int {
        use std::os::fd::AsRawFd as _;
        let mut queued: libc::c_int = 0;
        // SAFETY: TIOCOUTQ writes one int into `queued`, which outlives the call.
        assert_eq!(unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut queued) }, 0);
        queued
    }

    /// The server's side of a request and answer in which the server writes first (a
    /// response head): how long until the client acknowledged it. Linux holds a receiver's
    /// acknowledgement 40 ms or more once the connection goes back and forth, unless asked
    /// for a quick one; a server with Nagle on waits that long to send the body.
    #[cfg(target_os = "linux")]
    #[test]
    fn every_read_is_acknowledged_at_once_not_after_the_delayed_ack_timer() {
        use hyper::rt::Read as _;

        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let client = runtime.block_on(tokio::net::TcpStream::connect(address)).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let mut client = QuickAckStream(hyper_util::rt::TokioIo::new(client));
        let mut slowest = Duration::ZERO;
        for round in 0..8 {
            // The client asks (as a keep-alive connection does, which puts Linux in its
            // delayed-ACK mode), the server answers, the client reads the answer.
            runtime
                .block_on(async {
                    let mut request = std::pin::pin!(&mut client);
                    std::future::poll_fn(|cx| hyper::rt::Write::poll_write(request.as_mut(), cx, b"GET")).await
                })
                .unwrap();
            let mut asked = [0u8; 3];
            server.read_exact(&mut asked).unwrap();
            server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
            let mut answer = [std::mem::MaybeUninit::<u8>::uninit(); 64];
            runtime
                .block_on(async {
                    let mut reading = std::pin::pin!(&mut client);
                    let mut buf = hyper::rt::ReadBuf::uninit(&mut answer);
                    std::future::poll_fn(|cx| reading.as_mut().poll_read(cx, buf.unfilled())).await
                })
                .unwrap();
            let read = Instant::now();
            while unacknowledged(&server) > 0 && read.elapsed() < Duration::from_millis(200) {
                std::thread::sleep(Duration::from_micros(200));
            }
            if round >= 2 {
                slowest = slowest.max(read.elapsed());
            }
        }
        // An acknowledgement sent by the read arrives at once on loopback; a delayed one after
        // 40 ms at the earliest. 20 ms leaves room for a busy machine.
        assert!(slowest < Duration::from_millis(20), "an answer waited {slowest:?} for its acknowledgement");
    }
}
