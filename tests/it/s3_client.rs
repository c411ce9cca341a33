//! The S3 client haul builds from a job's settings, against real servers on 127.0.0.1:
//! s3s-fs (in-process) and moto_server. Single PUT and multipart, each with a CRC32C checksum
//! computed up front and verified on GET: the harness itself is checked to carry what
//! haul's executor will rely on.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use haul::manifest::S3Target;

/// The SDK reads credentials from the environment, exactly as it does for users. Every test
/// in this binary sets the same values, once, before any client exists.
fn use_test_credentials() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (key, value) in haul_testkit::client_env() {
            // SAFETY: runs once, before this test binary creates any SDK client or reads the
            // environment from another thread; the values are the same for every test.
            unsafe { std::env::set_var(key, value) };
        }
    });
}

fn target(endpoint: &str) -> S3Target {
    S3Target {
        profile: None,
        region: Some(haul_testkit::REGION.into()),
        endpoint: Some(endpoint.into()),
        path_style: true,
        request_payer: false,
        retries: 2,
        ca_bundle: None,
        checksum: Default::default(),
    }
}

/// Which HTTP client an S3 client built for `target` sends with (its Debug names the type).
fn http_client_of(target: &S3Target) -> String {
    let shared = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
    format!("{:?}", haul::s3::client_from(&shared, target).config().http_client())
}

#[test]
fn plain_http_endpoints_are_reached_through_the_quick_ack_client_and_https_through_the_sdks() {
    assert!(http_client_of(&target("http://127.0.0.1:3900")).contains("QuickAckClient"));
    assert!(!http_client_of(&target("https://s3.example.com")).contains("QuickAckClient"));
    assert!(!http_client_of(&S3Target { endpoint: None, ..target("unused") }).contains("QuickAckClient"));
}

fn crc32c(data: &[u8]) -> String {
    let value = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32;
    base64::engine::general_purpose::STANDARD.encode(value.to_be_bytes())
}

async fn put_and_get_round_trip(client: &Client, bucket: &str) {
    client.create_bucket().bucket(bucket).send().await.expect("create bucket");
    let key = "보고서/2026/매출 1월+세금=100%.csv";
    let body = "지역,매출\n서울,100\n부산,80\n".repeat(100).into_bytes();
    let checksum = crc32c(&body);
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .checksum_crc32_c(&checksum)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect("put object");
    let got = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .expect("get object");
    assert_eq!(got.content_length(), Some(body.len() as i64));
    assert_eq!(got.checksum_crc32_c(), Some(checksum.as_str()), "server keeps the checksum");
    let data = got.body.collect().await.expect("read body").into_bytes();
    assert_eq!(data.as_ref(), body.as_slice());

    let listed = client.list_objects_v2().bucket(bucket).prefix("보고서/").send().await.expect("list");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, vec![key]);
}

async fn multipart_round_trip(client: &Client, bucket: &str) {
    client.create_bucket().bucket(bucket).send().await.expect("create bucket");
    let key = "big/part-0001.parquet";
    let first: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let second = b"the last part may be small".to_vec();
    let upload = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .send()
        .await
        .expect("create multipart upload");
    let upload_id = upload.upload_id().expect("upload id");
    let mut parts = Vec::new();
    for (number, data) in [(1, &first), (2, &second)] {
        let checksum = crc32c(data);
        let part = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .checksum_crc32_c(&checksum)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .expect("upload part");
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(part.e_tag().map(str::to_string))
                .checksum_crc32_c(checksum)
                .build(),
        );
    }
    client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .expect("complete multipart upload");

    let head = client.head_object().bucket(bucket).key(key).send().await.expect("head");
    assert_eq!(head.content_length(), Some((first.len() + second.len()) as i64));
    // A ranged GET of the second part's bytes, as ranged downloads will do.
    let range = format!("bytes={}-{}", first.len(), first.len() + second.len() - 1);
    let tail = client.get_object().bucket(bucket).key(key).range(range).send().await.expect("ranged get");
    assert_eq!(tail.body.collect().await.unwrap().into_bytes().as_ref(), second.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_fs_put_get_with_checksum() {
    use_test_credentials();
    let data = tempfile::tempdir().unwrap();
    let server = haul_testkit::S3sFs::start(data.path()).unwrap();
    let client = haul::s3::client(&target(server.endpoint())).await.unwrap();
    put_and_get_round_trip(&client, "haul-client-test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_fs_multipart_and_ranged_get() {
    use_test_credentials();
    let data = tempfile::tempdir().unwrap();
    let server = haul_testkit::S3sFs::start(data.path()).unwrap();
    let client = haul::s3::client(&target(server.endpoint())).await.unwrap();
    multipart_round_trip(&client, "haul-multipart-test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_fs_rejects_wrong_secret() {
    let data = tempfile::tempdir().unwrap();
    let server = haul_testkit::S3sFs::start(data.path()).unwrap();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(server.endpoint())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            haul_testkit::ACCESS_KEY,
            "wrong",
            None,
            None,
            "test",
        ))
        .build();
    let err = Client::from_conf(config).list_buckets().send().await.expect_err("a wrong secret must be refused");
    let code = err.as_service_error().and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e)).unwrap_or("");
    assert_eq!(code, "SignatureDoesNotMatch", "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_put_get_with_checksum() {
    use_test_credentials();
    let server = haul_testkit::Moto::start().expect("moto_server (installed by ./scripts/test)");
    let client = haul::s3::client(&target(server.endpoint())).await.unwrap();
    put_and_get_round_trip(&client, "haul-client-test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_multipart_and_ranged_get() {
    use_test_credentials();
    let server = haul_testkit::Moto::start().expect("moto_server (installed by ./scripts/test)");
    let client = haul::s3::client(&target(server.endpoint())).await.unwrap();
    multipart_round_trip(&client, "haul-multipart-test").await;
}
