//! A TCP delay line in front of a server, for benchmarks at real round-trip times.
//!
//! Usage: haul-delay --upstream HOST:PORT --rtt-ms N [--port PORT] [--rate-mib N] [--tls-ca FILE]
//! Prints `endpoint http://127.0.0.1:PORT` once listening; stops on Ctrl-C or SIGTERM.
//! Each new connection waits one round trip, each byte arrives half a round trip later in
//! each direction, and `--rate-mib` caps each direction at N MiB/s (shared by all connections).
//! With `--tls-ca FILE` the endpoint is `https://`: a TLS front with a test CA made on the
//! spot (its certificate written to FILE, for clients to trust) sits behind the delay line, so
//! the handshake's round trips are delayed as the requests are.

use std::net::SocketAddr;
use std::time::Duration;

use haul_testkit::{DelayProxy, DelaySettings, TestCa, TlsFront};

fn main() {
    let (mut upstream, mut rtt_ms, mut port, mut rate, mut tls_ca) = (None, None, 0u16, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--upstream" => upstream = Some(value()),
            "--rtt-ms" => rtt_ms = Some(value().parse::<u64>().unwrap_or_else(|_| usage("--rtt-ms needs a number"))),
            "--tls-ca" => tls_ca = Some(std::path::PathBuf::from(value())),
            "--port" => port = value().parse().unwrap_or_else(|_| usage("--port needs a number")),
            "--rate-mib" => {
                rate = Some(value().parse::<u64>().unwrap_or_else(|_| usage("--rate-mib needs a number")) << 20)
            }
            _ => usage(&format!("unknown argument `{arg}`")),
        }
    }
    let upstream = upstream.unwrap_or_else(|| usage("--upstream HOST:PORT is required"));
    let upstream: SocketAddr = match std::net::ToSocketAddrs::to_socket_addrs(&upstream).ok().and_then(|mut a| a.next())
    {
        Some(address) => address,
        None => usage(&format!("cannot resolve `{upstream}`")),
    };
    let settings = DelaySettings {
        round_trip: Duration::from_millis(rtt_ms.unwrap_or_else(|| usage("--rtt-ms N is required"))),
        rate,
    };
    let front = tls_ca.map(|path| {
        let ca = TestCa::new().unwrap_or_else(|err| fail(&format!("cannot make a test CA: {err}")));
        std::fs::write(&path, &ca.ca_pem)
            .unwrap_or_else(|err| fail(&format!("cannot write {}: {err}", path.display())));
        TlsFront::start(upstream, &ca).unwrap_or_else(|err| fail(&format!("cannot start the TLS front: {err}")))
    });
    let behind = front.as_ref().map_or(upstream, TlsFront::address);
    let proxy = DelayProxy::start(SocketAddr::from(([127, 0, 0, 1], port)), behind, settings)
        .unwrap_or_else(|err| fail(&format!("cannot start: {err}")));
    match front {
        Some(_) => println!("endpoint https://{}", proxy.address()),
        None => println!("endpoint {}", proxy.endpoint()),
    }
    haul_testkit::wait_for_stop();
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "haul-delay: {problem}\nusage: haul-delay --upstream HOST:PORT --rtt-ms N [--port PORT] [--rate-mib N] [--tls-ca FILE]"
    );
    std::process::exit(2);
}

fn fail(problem: &str) -> ! {
    eprintln!("haul-delay: {problem}");
    std::process::exit(1);
}
