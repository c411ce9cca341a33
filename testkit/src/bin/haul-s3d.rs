//! A local S3 server for the demo and benchmarks: s3s-fs over a folder, TCP_NODELAY on.
//!
//! Usage: haul-s3d --root DIR [--port PORT]
//! Prints `endpoint http://127.0.0.1:PORT` once listening; stops on Ctrl-C or SIGTERM.
//! Credentials: haul_testkit::ACCESS_KEY / SECRET_KEY (printed, they are test values).

use std::net::SocketAddr;
use std::path::PathBuf;

fn main() {
    let mut root = None;
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => root = args.next().map(PathBuf::from),
            "--port" => {
                port = args.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| usage("--port needs a number"))
            }
            _ => usage(&format!("unknown argument `{arg}`")),
        }
    }
    let root = root.unwrap_or_else(|| usage("--root DIR is required"));
    let server = match haul_testkit::S3sFs::start_on(&root, SocketAddr::from(([127, 0, 0, 1], port))) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("haul-s3d: cannot start: {err}");
            std::process::exit(1);
        }
    };
    println!("endpoint {}", server.endpoint());
    println!("access_key {}", haul_testkit::ACCESS_KEY);
    println!("secret_key {}", haul_testkit::SECRET_KEY);
    haul_testkit::wait_for_stop();
    drop(server);
}

fn usage(problem: &str) -> ! {
    eprintln!("haul-s3d: {problem}\nusage: haul-s3d --root DIR [--port PORT]");
    std::process::exit(2);
}
