//! A recording, fault-injecting HTTP proxy on 127.0.0.1 between a client and a real S3
//! server: it forwards every request unchanged (Host included, so SigV4 signatures stay
//! valid), keeps each request's method, path and headers for the test to inspect, and, when
//! told to, injects faults into a bounded number of requests: 500 InternalError, 503
//! SlowDown, a dropped connection, a delay, and for object GETs a body cut short or a
//! flipped byte. It can also refuse every request with a checksum header, as some
//! S3-compatible services do.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
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

/// A fault the proxy can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `500 InternalError` instead of forwarding.
    InternalError,
    /// `503 SlowDown` instead of forwarding.
    SlowDown,
    /// `501 NotImplemented` instead of forwarding (a server without that feature).
    NotImplemented,
    /// The connection is closed without an answer.
    Reset,
    /// Forwarded after a pause.
    Delay(Duration),
    /// Object GETs only: the body stops halfway (the headers promise all of it).
    TruncateBody,
    /// Whole-object GETs only (no Range): one byte in the middle of the body is flipped.
    FlipByte,
    /// Ranged GETs only: one byte in the middle of the range's body is flipped.
    FlipByteInRange,
    /// Object listings only: the page's objects in reverse key order (a server that does
    /// not list in key order).
    ReverseListing,
    /// Object listings only: the page's objects in folder-walk order, as SeaweedFS lists: a
    /// folder's contents where its name sorts (`a/b.csv` before `a-b.csv`).
    FolderWalkListing,
    /// Object listings only: the page's objects shuffled (the seed fixes the order).
    ShuffleListing(u64),
}

impl Fault {
    fn object_get_only(self) -> bool {
        matches!(self, Fault::TruncateBody | Fault::FlipByte | Fault::FlipByteInRange)
    }
}

/// Inject `fault` into every `every`-th request it applies to, at most `max` times.
#[derive(Debug, Clone, Copy)]
pub struct FaultRule {
    pub fault: Fault,
    pub every: u64,
    pub max: u64,
    /// Only object GETs (never listings, PUTs or multipart calls).
    pub object_gets_only: bool,
    /// Only object listings (ListObjectsV2).
    pub listings_only: bool,
}

impl FaultRule {
    pub fn new(fault: Fault, every: u64, max: u64) -> Self {
        FaultRule { fault, every, max, object_gets_only: fault.object_get_only(), listings_only: false }
    }

    /// The same rule, for object listings alone.
    pub fn on_listings(self) -> Self {
        FaultRule { listings_only: true, ..self }
    }
}

#[derive(Debug, Default)]
struct FaultState {
    rules: Vec<FaultRule>,
    /// Per rule: requests it applied to, and faults injected.
    seen: Vec<u64>,
    injected: Vec<u64>,
}

impl FaultState {
    /// The fault for this request, if any rule fires.
    fn pick(&mut self, object_get: bool, listing: bool, ranged: bool) -> Option<Fault> {
        for (index, rule) in self.rules.iter().enumerate() {
            if ((rule.object_gets_only || rule.fault.object_get_only()) && !object_get)
                || (rule.listings_only && !listing)
            {
                continue;
            }
            if (rule.fault == Fault::FlipByte && ranged) || (rule.fault == Fault::FlipByteInRange && !ranged) {
                continue;
            }
            self.seen[index] += 1;
            if self.seen[index].is_multiple_of(rule.every) && self.injected[index] < rule.max {
                self.injected[index] += 1;
                return Some(rule.fault);
            }
        }
        None
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// Requests let through in the last second, for a rate limit (`RecordingProxy::limit_rate`).
#[derive(Debug, Default)]
struct RateLimit {
    per_second: Option<usize>,
    admitted: std::collections::VecDeque<std::time::Instant>,
    refused: u64,
}

impl RateLimit {
    /// Whether a request arriving now is over the limit (and is refused).
    fn refuses(&mut self) -> bool {
        let Some(per_second) = self.per_second else { return false };
        let now = std::time::Instant::now();
        while self.admitted.front().is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1)) {
            self.admitted.pop_front();
        }
        if self.admitted.len() >= per_second {
            self.refused += 1;
            return true;
        }
        self.admitted.push_back(now);
        false
    }
}

pub struct RecordingProxy {
    endpoint: String,
    recorded: Arc<Mutex<Vec<RecordedRequest>>>,
    faults: Arc<Mutex<FaultState>>,
    rate: Arc<Mutex<RateLimit>>,
    checksum_headers: Arc<ChecksumHeaders>,
    _server: crate::BackgroundServer,
}

/// Whether requests with checksum headers are refused, and how many were.
#[derive(Debug, Default)]
struct ChecksumHeaders {
    refuse: std::sync::atomic::AtomicBool,
    refused: std::sync::atomic::AtomicU64,
}

/// The checksum header of a request a service that refuses them would name, if any:
/// `x-amz-checksum-*` (values and `-mode`) and `x-amz-sdk-checksum-algorithm`.
fn checksum_header(request: &Request<Incoming>) -> Option<String> {
    request
        .headers()
        .keys()
        .map(|name| name.as_str())
        .find(|name| name.starts_with("x-amz-checksum-") || *name == "x-amz-sdk-checksum-algorithm")
        .map(str::to_string)
}

impl RecordingProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> std::io::Result<Self> {
        let upstream: hyper::Uri = upstream.parse().map_err(std::io::Error::other)?;
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let local = listener.local_addr()?;
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let faults = Arc::new(Mutex::new(FaultState::default()));
        let rate = Arc::new(Mutex::new(RateLimit::default()));
        let checksum_headers = Arc::new(ChecksumHeaders::default());
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).build(connector);
        let http = ConnBuilder::new(TokioExecutor::new());
        let (seen, fault_state, rate_limit, checksums) =
            (recorded.clone(), faults.clone(), rate.clone(), checksum_headers.clone());
        let server = crate::BackgroundServer::start(listener, format!("proxy:{}", local.port()), move |socket| {
            let (client, seen, upstream, fault_state, rate_limit, checksums) = (
                client.clone(),
                seen.clone(),
                upstream.clone(),
                fault_state.clone(),
                rate_limit.clone(),
                checksums.clone(),
            );
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                use std::sync::atomic::Ordering;
                let refused = if rate_limit.lock().expect("rate limit").refuses() {
                    Some(error_response(503, "SlowDown", "injected by the test proxy"))
                } else if checksums.refuse.load(Ordering::Relaxed)
                    && let Some(header) = checksum_header(&request)
                {
                    checksums.refused.fetch_add(1, Ordering::Relaxed);
                    let message = format!("Unsupported header '{header}' received for this API call.");
                    Some(error_response(400, "InvalidArgument", &message))
                } else {
                    None
                };
                forward(request, client.clone(), upstream.clone(), seen.clone(), fault_state.clone(), refused)
            });
            let connection = http.serve_connection(TokioIo::new(socket), service).into_owned();
            async move {
                let _ = connection.await;
            }
        })?;
        Ok(RecordingProxy {
            endpoint: format!("http://{local}"),
            recorded,
            faults,
            rate,
            checksum_headers,
            _server: server,
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

    /// Replaces the fault rules (and their counts).
    pub fn set_faults(&self, rules: &[FaultRule]) {
        let mut state = self.faults.lock().expect("fault state");
        *state = FaultState { rules: rules.to_vec(), seen: vec![0; rules.len()], injected: vec![0; rules.len()] };
    }

    /// Answers `503 SlowDown` to every request beyond `per_second` in any one second, as S3
    /// does above a prefix's request rate (`None`: no limit).
    pub fn limit_rate(&self, per_second: Option<usize>) {
        let mut rate = self.rate.lock().expect("rate limit");
        *rate = RateLimit { per_second, ..RateLimit::default() };
    }

    /// Refuses every request with a checksum header (`400 InvalidArgument: Unsupported header
    /// 'x-amz-checksum-crc32c' ...`, as Backblaze B2 answers), or stops refusing them.
    pub fn refuse_checksum_headers(&self, refuse: bool) {
        self.checksum_headers.refuse.store(refuse, std::sync::atomic::Ordering::Relaxed);
    }

    /// Requests refused for a checksum header so far.
    pub fn refused_for_checksums(&self) -> u64 {
        self.checksum_headers.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Requests refused by the rate limit so far.
    pub fn refused(&self) -> u64 {
        self.rate.lock().expect("rate limit").refused
    }

    /// How many faults each rule injected so far, in rule order.
    pub fn injected(&self) -> Vec<u64> {
        self.faults.lock().expect("fault state").injected.clone()
    }
}

fn error_response(status: u16, code: &str, message: &str) -> Response<ProxyBody> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed())
        .expect("a valid response")
}

async fn forward(
    mut request: Request<Incoming>,
    client: Client<HttpConnector, Incoming>,
    upstream: hyper::Uri,
    seen: Arc<Mutex<Vec<RecordedRequest>>>,
    faults: Arc<Mutex<FaultState>>,
    refused: Option<Response<ProxyBody>>,
) -> Result<Response<ProxyBody>, BoxError> {
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
    // An object GET: a key in the path (path style: /bucket/key) and no listing query.
    let object_get = request.method() == hyper::Method::GET
        && path.trim_start_matches('/').contains('/')
        && !path.contains("list-type")
        && !path.contains("uploads");
    let ranged = request.headers().contains_key("range");
    let listing = request.method() == hyper::Method::GET && path.contains("list-type=2");
    if let Some(refusal) = refused {
        // Read first, as a server does, so the connection stays usable.
        let _ = request.body_mut().collect().await;
        return Ok(refusal);
    }
    let fault = faults.lock().expect("fault state").pick(object_get, listing, ranged);
    match fault {
        Some(Fault::InternalError) => return Ok(error_response(500, "InternalError", "injected by the test proxy")),
        Some(Fault::SlowDown) => return Ok(error_response(503, "SlowDown", "injected by the test proxy")),
        Some(Fault::NotImplemented) => {
            return Ok(error_response(501, "NotImplemented", "injected by the test proxy"));
        }
        Some(Fault::Reset) => return Err(BoxError::from("injected connection reset")),
        Some(Fault::Delay(pause)) => tokio::time::sleep(pause).await,
        _ => {}
    }
    let target =
        format!("{}://{}{path}", upstream.scheme_str().unwrap_or("http"), upstream.authority().expect("upstream host"));
    *request.uri_mut() = target.parse().expect("a valid upstream URI");
    let response = client.request(request).await.map_err(|err| Box::new(err) as BoxError)?;
    match fault {
        Some(Fault::TruncateBody | Fault::FlipByte | Fault::FlipByteInRange) if response.status().is_success() => {
            let (parts, body) = response.into_parts();
            let mut bytes = body.collect().await.map_err(|err| Box::new(err) as BoxError)?.to_bytes().to_vec();
            if fault != Some(Fault::TruncateBody) {
                let middle = bytes.len() / 2;
                if let Some(byte) = bytes.get_mut(middle) {
                    *byte ^= 0x01;
                }
                return Ok(Response::from_parts(
                    parts,
                    Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed(),
                ));
            }
            // Half the body, then the connection breaks: Content-Length still promises it all.
            bytes.truncate(bytes.len() / 2);
            let frames: Vec<Result<Frame<Bytes>, BoxError>> =
                vec![Ok(Frame::data(Bytes::from(bytes))), Err(BoxError::from("injected truncation"))];
            let body = StreamBody::new(futures_util::stream::iter(frames));
            Ok(Response::from_parts(parts, BodyExt::boxed(body)))
        }
        Some(order @ (Fault::ReverseListing | Fault::FolderWalkListing | Fault::ShuffleListing(_)))
            if response.status().is_success() =>
        {
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.map_err(|err| Box::new(err) as BoxError)?.to_bytes();
            let reversed = reorder_contents(&String::from_utf8_lossy(&bytes), order);
            Ok(Response::from_parts(parts, Full::new(Bytes::from(reversed)).map_err(|never| match never {}).boxed()))
        }
        _ => Ok(response.map(|body| body.map_err(|err| Box::new(err) as BoxError).boxed())),
    }
}

/// A ListObjectsV2 page with its `<Contents>` elements reordered as `order` says (same
/// length, so the Content-Length still holds). The elements must stand together, as servers
/// write them.
fn reorder_contents(page: &str, order: Fault) -> String {
    let (Some(first), Some(last)) = (page.find("<Contents>"), page.rfind("</Contents>")) else {
        return page.to_string();
    };
    let end = last + "</Contents>".len();
    let mut objects: Vec<&str> = Vec::new();
    let mut rest = &page[first..end];
    while let Some(close) = rest.find("</Contents>") {
        let (object, after) = rest.split_at(close + "</Contents>".len());
        objects.push(object);
        rest = after;
    }
    assert!(rest.is_empty() && objects.iter().all(|o| o.starts_with("<Contents>")), "Contents not together: {page}");
    match order {
        Fault::ReverseListing => objects.reverse(),
        // A walk: compared segment by segment, so a folder comes where its name sorts.
        Fault::FolderWalkListing => objects.sort_by_cached_key(|object| {
            let key = element(object, "Key");
            key.split('/').map(str::to_string).collect::<Vec<_>>()
        }),
        Fault::ShuffleListing(seed) => {
            // xorshift: a fixed order per seed, no dependency.
            let mut state = seed | 1;
            for index in (1..objects.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                objects.swap(index, (state % (index as u64 + 1)) as usize);
            }
        }
        _ => {}
    }
    format!("{}{}{}", &page[..first], objects.concat(), &page[end..])
}

/// The text of `<name>` in an XML element (as written: a key may be URL-encoded).
fn element<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let Some(start) = xml.find(&open).map(|start| start + open.len()) else { return "" };
    xml[start..].find(&format!("</{name}>")).map_or("", |end| &xml[start..start + end])
}
