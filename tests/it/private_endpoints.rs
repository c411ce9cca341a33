//! HTTPS endpoints with a certificate from a private CA (a TLS front with a test CA before
//! s3s-fs): trusted through SSL_CERT_FILE, and refused at once, with the reason and the fix,
//! when it is not.

use crate::common::{BUCKET, Fixture, haul_with, write};

#[test]
fn an_untrusted_certificate_fails_at_once_with_its_reason_and_a_trusted_one_works() {
    let f = Fixture::s3s_fs();
    f.put("data/a.csv", b"over https");
    let ca = haul_testkit::TestCa::new().unwrap();
    let upstream: std::net::SocketAddr = f.endpoint.trim_start_matches("http://").parse().unwrap();
    let front = haul_testkit::TlsFront::start(upstream, &ca).unwrap();
    write(f.dir.path(), "ca.pem", &ca.ca_pem);
    let text = format!(
        "version: 1\ndefaults:\n  endpoint: https://127.0.0.1:{}\n  path_style: true\n  region: us-east-1\ntransfers:\n  - name: t\n    direction: download\n    bucket: {BUCKET}\n    prefix: data/\n    local: ./local\n",
        front.address().port()
    );
    write(f.dir.path(), "m.yaml", &text);

    // Not trusted: one attempt (the SDK and haul retry failed connections, not this).
    let out = haul_with(
        f.dir.path(),
        &[("SSL_CERT_FILE", "/nonexistent")],
        &["apply", "m.yaml", "--output", "json", "--quiet"],
    );
    out.expect_code(1);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let transfer = &report["transfers"][0];
    let error = transfer["error"].as_str().unwrap();
    assert!(
        error.contains("TLS certificate was refused: it is signed by an authority this machine does not trust"),
        "{transfer:#}"
    );
    let hint = transfer["hint"].as_str().unwrap();
    assert!(hint.contains("for a private CA, point SSL_CERT_FILE at its certificate bundle"), "{hint}");
    assert!(front.connections() <= 2, "{} connections: the certificate error was retried", front.connections());

    // Trusted through SSL_CERT_FILE.
    let ca_file = f.path("ca.pem");
    haul_with(f.dir.path(), &[("SSL_CERT_FILE", ca_file.to_str().unwrap())], &["apply", "m.yaml", "--quiet"])
        .expect_code(0);
    assert_eq!(std::fs::read(f.path("local/a.csv")).unwrap(), b"over https");
}
