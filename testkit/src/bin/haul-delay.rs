//! A TCP delay line in front of a server, for benchmarks at real round-trip times.
//!
//! Usage: haul-delay --upstream HOST:PORT --rtt-ms N [--port PORT] [--rate-mib N]
//! Prints `endpoint http://127.0.0.1:PORT` once listening; stops on Ctrl-C or SIGTERM.
//! Each new connection waits one round trip, each byte arrives half a round trip later in
//! each direction, and `--rate-mib` caps each direction at N MiB/s (shared by all connections).

use std::net::SocketAddr;
use std::time::Duration;

use haul_testkit::{DelayProxy, DelaySettings};

fn main() {
    let (mut upstream, mut rtt_ms, mut port, mut rate) = (None, None, 0u16, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--upstream" => upstream = Some(value()),
            "--rtt-ms" => rtt_ms = Some(value().parse::<u64>().unwrap_or_else(|_| usage("--rtt-ms needs a number"))),
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
    let proxy = match DelayProxy::start(SocketAddr::from(([127, 0, 0, 1], port)), upstream, settings) {
        Ok(proxy) => proxy,
        Err(err) => {
            eprintln!("haul-delay: cannot start: {err}");
            std::process::exit(1);
        }
    };
    println!("endpoint {}", proxy.endpoint());
    haul_testkit::wait_for_stop();
}

fn usage(problem: &str) -> ! {
    eprintln!("haul-delay: {problem}\nusage: haul-delay --upstream HOST:PORT --rtt-ms N [--port PORT] [--rate-mib N]");
    std::process::exit(2);
}
