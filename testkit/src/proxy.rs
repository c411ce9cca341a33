//! A recording HTTP proxy on 127.0.0.1 between a client and a real S3 server: it forwards
//! every request unchanged (Host included, so SigV4 signatures stay valid) and keeps each
//! request's method, path and headers for the test to inspect.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

pub struct RecordingProxy {
    endpoint: String,
    recorded: Arc<Mutex<Vec<RecordedRequest>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RecordingProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> std::io::Result<Self> {
        let upstream: hyper::Uri = upstream.parse().map_err(std::io::Error::other)?;
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let seen = recorded.clone();
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name(format!("proxy:{}", local.port())).spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime for the proxy");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).build(connector);
                let http = ConnBuilder::new(TokioExecutor::new());
                loop {
                    let socket = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((socket, _)) => socket,
                            Err(_) => continue,
                        },
                        _ = &mut stop => break,
                    };
                    let _ = socket.set_nodelay(true);
                    let client = client.clone();
                    let seen = seen.clone();
                    let upstream = upstream.clone();
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let client = client.clone();
                        let seen = seen.clone();
                        let upstream = upstream.clone();
                        async move { forward(request, &client, &upstream, &seen).await }
                    });
                    let connection = http.serve_connection(TokioIo::new(socket), service).into_owned();
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                }
            });
        })?;
        Ok(RecordingProxy {
            endpoint: format!("http://{local}"),
            recorded,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`: point the client here.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.recorded.lock().expect("recorded requests").clone()
    }
}

async fn forward(
    mut request: Request<Incoming>,
    client: &Client<HttpConnector, Incoming>,
    upstream: &hyper::Uri,
    seen: &Mutex<Vec<RecordedRequest>>,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let path = request.uri().path_and_query().map_or("/".to_string(), |p| p.as_str().to_string());
    seen.lock().expect("recorded requests").push(RecordedRequest {
        method: request.method().to_string(),
        uri: path.clone(),
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
    });
    let target =
        format!("{}://{}{path}", upstream.scheme_str().unwrap_or("http"), upstream.authority().expect("upstream host"));
    *request.uri_mut() = target.parse().expect("a valid upstream URI");
    client.request(request).await
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
