//! HTTPS endpoints with a certificate from a private CA (a TLS front with a test CA before
//! s3s-fs): trusted through each place a CA bundle can be named, and refused at once, with
//! the reason and the fix, when it is not.

use crate::common::{BUCKET, Fixture, bytes, haul, haul_with, write};

#[test]
fn an_untrusted_certificate_fails_at_once_with_its_reason_and_a_trusted_one_works() {
    let h = HttpsFixture::new();
    h.manifest("m", "");
    // Not trusted: one attempt (the SDK and haul retry failed connections, not this).
    let out = haul_with(
        h.f.dir.path(),
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
    assert!(hint.contains("for a private CA, set `ca_bundle:` (this transfer, or `defaults`) to its"), "{hint}");
    assert!(h.front.connections() <= 2, "{} connections: the certificate error was retried", h.front.connections());
    // The account commands say it the same way.
    let endpoint = h.endpoint();
    let whoami = haul_with(
        h.f.dir.path(),
        &[("SSL_CERT_FILE", "/nonexistent")],
        &["whoami", "--endpoint", &endpoint, "--path-style", "--output", "json"],
    );
    let identity: serde_json::Value = serde_json::from_str(&whoami.stdout).unwrap();
    let problems = identity["problems"].to_string();
    assert!(problems.contains("the server's TLS certificate was refused: it is signed by an authority"), "{problems}");
    let ls = haul_with(
        h.f.dir.path(),
        &[("SSL_CERT_FILE", "/nonexistent")],
        &["ls", "--endpoint", &endpoint, "--path-style"],
    );
    ls.expect_code(1);
    assert!(
        ls.stderr.contains("TLS certificate was refused") && ls.stderr.contains("add `--ca-bundle`"),
        "{}",
        ls.stderr
    );

    // Trusted through SSL_CERT_FILE (the system's store replaced, as OpenSSL does).
    let ca_file = h.ca_file.to_str().unwrap();
    haul_with(h.f.dir.path(), &[("SSL_CERT_FILE", ca_file)], &["apply", "m.yaml", "--quiet"]).expect_code(0);
    assert_eq!(std::fs::read(h.f.path("m/a.csv")).unwrap(), b"over https");
}

/// A TLS front with a test CA before s3s-fs, holding `data/a.csv`, and a download manifest
/// of it with `extra` under `defaults` (the CA's PEM is `ca.pem` in the fixture's folder).
struct HttpsFixture {
    f: Fixture,
    front: haul_testkit::TlsFront,
    ca_file: std::path::PathBuf,
}

impl HttpsFixture {
    fn new() -> HttpsFixture {
        let f = Fixture::s3s_fs();
        f.put("data/a.csv", b"over https");
        let ca = haul_testkit::TestCa::new().unwrap();
        let upstream: std::net::SocketAddr = f.endpoint.trim_start_matches("http://").parse().unwrap();
        let front = haul_testkit::TlsFront::start(upstream, &ca).unwrap();
        let ca_file = write(f.dir.path(), "ca.pem", &ca.ca_pem);
        // Another CA's certificate: a bundle that can be read but does not trust the front.
        write(f.dir.path(), "other-ca.pem", &haul_testkit::TestCa::new().unwrap().ca_pem);
        HttpsFixture { f, front, ca_file }
    }

    fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.front.address().port())
    }

    fn manifest(&self, name: &str, extra: &str) {
        let text = format!(
            "version: 1\ndefaults:\n  endpoint: {}\n  path_style: true\n  region: us-east-1\n{extra}transfers:\n  - name: t\n    direction: download\n    bucket: {BUCKET}\n    prefix: data/\n    local: ./{name}\n",
            self.endpoint()
        );
        write(self.f.dir.path(), &format!("{name}.yaml"), &text);
    }

    /// `haul apply NAME.yaml` with `env` (and no system store that could trust the front),
    /// into a folder of its own: exit 0 only if every request went over trusted HTTPS.
    fn apply(&self, name: &str, env: &[(&str, &str)]) -> crate::common::Outcome {
        let mut all = vec![("SSL_CERT_FILE", "/nonexistent")];
        all.extend_from_slice(env);
        haul_with(self.f.dir.path(), &all, &["apply", &format!("{name}.yaml"), "--quiet"])
    }
}

#[test]
fn a_ca_bundle_is_trusted_from_each_place_the_aws_cli_reads_it_in_its_order() {
    let h = HttpsFixture::new();
    let ca = h.ca_file.to_str().unwrap();
    let config = |name: &str, bundle: &str| {
        write(h.f.dir.path(), name, &format!("[default]\nca_bundle = {bundle}\n")).to_str().unwrap().to_string()
    };
    let (good_config, other_config) = (config("good.config", ca), config("other.config", "other-ca.pem"));

    // The manifest's own `ca_bundle` (relative to the manifest), over AWS_CA_BUNDLE.
    h.manifest("manifest", "  ca_bundle: ca.pem\n");
    h.apply("manifest", &[("AWS_CA_BUNDLE", "other-ca.pem")]).expect_code(0);
    assert_eq!(std::fs::read(h.f.path("manifest/a.csv")).unwrap(), b"over https");
    let check = haul_with(
        h.f.dir.path(),
        &[("SSL_CERT_FILE", "/nonexistent")],
        &["check", "manifest.yaml", "--output", "json"],
    );
    let rows: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let tls = rows.iter().find(|row| row["check"] == "tls").expect("a tls row");
    let bundle = h.f.path("ca.pem");
    let expected = format!("certificates checked against the CA bundle {} (from `ca_bundle`", bundle.display());
    assert!(tls["detail"].as_str().unwrap().starts_with(&expected), "{tls:#}");
    let bucket = rows.iter().find(|row| row["check"] == "bucket").expect("a bucket row");
    assert_eq!(bucket["status"], "ok", "{bucket:#}");

    h.manifest("plain", "");
    // AWS_CA_BUNDLE, over the profile's.
    h.apply("plain", &[("AWS_CA_BUNDLE", ca), ("AWS_CONFIG_FILE", &other_config)]).expect_code(0);
    // The profile's `ca_bundle` in the AWS config file.
    std::fs::remove_dir_all(h.f.path("plain")).unwrap();
    h.apply("plain", &[("AWS_CONFIG_FILE", &good_config)]).expect_code(0);
    assert_eq!(std::fs::read(h.f.path("plain/a.csv")).unwrap(), b"over https");

    // Each one wins over the next: the wrong CA first is refused (a bundle replaces the
    // system's store, and the later places are not consulted).
    h.manifest("wrong", "  ca_bundle: other-ca.pem\n");
    let refused = h.apply("wrong", &[("AWS_CA_BUNDLE", ca)]);
    refused.expect_code(1);
    assert!(refused.stdout.contains("TLS certificate was refused"), "{}", refused.stdout);
    h.apply("plain", &[("AWS_CA_BUNDLE", "other-ca.pem"), ("AWS_CONFIG_FILE", &good_config)]).expect_code(1);

    // The commands without a manifest: `--ca-bundle`, and `whoami` saying what is trusted.
    let endpoint = h.endpoint();
    let ls = haul_with(
        h.f.dir.path(),
        &[("SSL_CERT_FILE", "/nonexistent")],
        &["ls", &format!("s3://{BUCKET}/data/"), "--endpoint", &endpoint, "--path-style", "--ca-bundle", "ca.pem"],
    );
    ls.expect_code(0);
    assert!(ls.stdout.contains("a.csv"), "{}", ls.stdout);
    let source = format!("s3://{BUCKET}/data/");
    let sync = ["sync", &source, "synced", "--endpoint", &endpoint, "--path-style", "--ca-bundle", "ca.pem", "--quiet"];
    haul_with(h.f.dir.path(), &[("SSL_CERT_FILE", "/nonexistent")], &sync).expect_code(0);
    assert_eq!(std::fs::read(h.f.path("synced/a.csv")).unwrap(), b"over https");
    let whoami = haul_with(
        h.f.dir.path(),
        &[("AWS_CA_BUNDLE", ca)],
        &["whoami", "--endpoint", &endpoint, "--path-style", "--output", "json"],
    );
    let identity: serde_json::Value = serde_json::from_str(&whoami.stdout).unwrap();
    assert_eq!(identity["trust"], format!("the CA bundle {ca} (from AWS_CA_BUNDLE)"), "{identity:#}");
    assert_eq!(identity["s3_answered"], true, "{identity:#}");
}

#[test]
fn a_ca_bundle_that_cannot_be_used_is_refused_before_any_request_naming_where_it_was_set() {
    let h = HttpsFixture::new();
    write(h.f.dir.path(), "empty.pem", "no certificates here\n");
    h.manifest("missing", "  ca_bundle: missing.pem\n");
    let out = haul(h.f.dir.path(), &["validate", "missing.yaml"]);
    out.expect_code(2);
    assert!(out.stderr.contains("missing.yaml:6:14"), "{}", out.stderr);
    assert!(out.stderr.contains("missing.pem` cannot be used: cannot read it"), "{}", out.stderr);

    h.manifest("plain", "");
    let out = h.apply("plain", &[("AWS_CA_BUNDLE", "empty.pem")]);
    out.expect_code(2);
    assert!(out.stderr.contains("the CA bundle `empty.pem` (from AWS_CA_BUNDLE) cannot be used"), "{}", out.stderr);
    assert!(out.stderr.contains("point AWS_CA_BUNDLE at a readable PEM file"), "{}", out.stderr);
    assert_eq!(h.front.connections(), 0, "a request went out before the bundle was checked");

    let out = haul(h.f.dir.path(), &["ls", "--ca-bundle", "empty.pem"]);
    out.expect_code(2);
    assert!(out.stderr.contains("holds no usable PEM certificate"), "{}", out.stderr);
}

/// Services that refuse checksum headers (B2 and others since the SDKs began sending them),
/// stood for by a proxy that answers `400 InvalidArgument: Unsupported header ...` to any
/// request carrying one: by default every write fails with the fix, `check` names it, and
/// with `checksum: off` uploads (single and multipart), deletes and downloads all work, the
/// bodies sent with Content-MD5 and the downloads still checked against the ETag's MD5.
#[test]
fn a_service_that_refuses_checksum_headers_works_with_checksum_off_and_downloads_stay_verified() {
    const MIB: usize = 1024 * 1024;
    for (server, f) in [("s3s-fs", Fixture::s3s_fs()), ("moto", Fixture::moto())] {
        let big = bytes(12 * MIB, 7);
        f.file("a.csv", b"small");
        f.file("big.bin", &big);
        f.put("data/stale.csv", b"only on the server");
        let proxy = haul_testkit::RecordingProxy::start(&f.endpoint).unwrap();
        proxy.refuse_checksum_headers(true);
        let deletes = "  delete: true\n  max_delete: 5\n  retries: 0\n";

        // Default (CRC32C): refused, each write said once with the fix, nothing retried.
        let m = f.two_way_manifest(proxy.endpoint(), deletes);
        let out = haul(f.dir.path(), &["apply", &m, "--only", "up", "--output", "json", "--quiet"]);
        out.expect_code(1);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let failures = &report["transfers"][0]["failure_groups"];
        let group = failures.as_array().unwrap().iter().find(|g| g["code"] == "ChecksumHeaderRefused");
        let group = group.unwrap_or_else(|| panic!("{server}: {failures:#}"));
        assert!(group["hint"].as_str().unwrap().contains("set `checksum: off` for this transfer"), "{group:#}");
        let check = haul(f.dir.path(), &["check", &m, "--only", "up", "--output", "json"]);
        let rows: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
        let write = rows.as_array().unwrap().iter().find(|row| row["status"] == "fail").expect("a failed check");
        assert!(write["detail"].as_str().unwrap().contains("set `checksum: off`"), "{server}: {write:#}");

        // `checksum: off`: everything moves, and no request carried a checksum header.
        let (refused, earlier) = (proxy.refused_for_checksums(), proxy.requests().len());
        let m = f.two_way_manifest(proxy.endpoint(), &format!("  checksum: off\n{deletes}"));
        f.apply(&[&m, "--quiet"]).expect_code(0);
        assert_eq!(proxy.refused_for_checksums(), refused, "{server}: a checksum header was sent");
        assert_eq!(f.get("data/big.bin"), big, "{server}");
        assert_eq!(f.keys(), ["data/a.csv", "data/big.bin"], "{server}: the stale object is deleted");
        assert_eq!(std::fs::read(f.path("back/big.bin")).unwrap(), big, "{server}");
        let puts: Vec<_> = proxy.requests().into_iter().skip(earlier).filter(|r| r.method == "PUT").collect();
        let unchecked: Vec<_> = puts.iter().filter(|r| r.header("content-md5").is_none()).collect();
        assert!(!puts.is_empty() && unchecked.is_empty(), "{server}: bodies without Content-MD5: {unchecked:#?}");

        // The download of an object with no checksum but its ETag is still checked.
        std::fs::remove_file(f.path("back/a.csv")).unwrap();
        proxy.set_faults(&[haul_testkit::FaultRule::new(haul_testkit::Fault::FlipByte, 1, 100)]);
        let out = haul(f.dir.path(), &["apply", &m, "--only", "down", "--output", "json", "--quiet"]);
        out.expect_code(1);
        assert!(out.stdout.contains("\"ChecksumMismatch\""), "{server}: {}", out.stdout);
        assert!(!f.path("back/a.csv").exists(), "{server}: a damaged body was kept");
    }
}

/// `checksum: crc64nvme`: single-part and multipart uploads stored with a full-object
/// CRC64NVME (a multipart upload's too, not a composite), downloaded and compared by it.
#[test]
fn crc64nvme_uploads_carry_a_full_object_checksum_that_downloads_and_compare_use() {
    const MIB: usize = 1024 * 1024;
    for (server, f) in [("s3s-fs", Fixture::s3s_fs()), ("moto", Fixture::moto())] {
        let big = bytes(12 * MIB, 9);
        f.file("a.csv", b"small");
        f.file("big.bin", &big);
        let m = f.two_way_manifest(&f.endpoint, "  checksum: crc64nvme\n");
        f.apply(&[&m, "--quiet"]).expect_code(0);
        // What each server keeps: s3s-fs no checksum of a multipart object at all (CRC32C or
        // other); moto none of a PutObject without `x-amz-sdk-checksum-algorithm`.
        let keys: &[(&str, &[u8])] =
            if server == "moto" { &[("data/big.bin", &big)] } else { &[("data/a.csv", b"small")] };
        for &(key, body) in keys {
            let head =
                f.client.head_object().bucket(BUCKET).key(key).checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled);
            let head = f.runtime.block_on(head.send()).unwrap();
            let expected = haul::checksum::checksum_of_bytes(body, haul::checksum::Algorithm::Crc64Nvme);
            assert_eq!(head.checksum_crc64_nvme(), Some(expected.as_str()), "{server}: {key}: {head:?}");
        }
        assert_eq!(std::fs::read(f.path("back/big.bin")).unwrap(), big, "{server}");
        // The full-object checksum is what `compare: checksum` reads: nothing to do (s3s-fs
        // keeps none for the multipart object, which is then copied to be sure).
        if server == "moto" {
            let m = f.two_way_manifest(&f.endpoint, "  checksum: crc64nvme\n  compare: checksum\n");
            f.plan(&[&m, "--only", "up", "--detailed-exitcode"]).expect_code(0);
        }
    }
}
