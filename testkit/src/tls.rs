//! A TLS front for a plain-http server on 127.0.0.1: a test CA made on the spot, a server
//! certificate it signs for `127.0.0.1` and `localhost`, and a listener that ends TLS and
//! passes the bytes on. Clients trust the CA through its PEM file (`SSL_CERT_FILE`,
//! `AWS_CA_BUNDLE`, ...), as they would trust a private CA.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};

/// A CA and the server certificate it signed.
pub struct TestCa {
    /// The CA's certificate, PEM: what a client is told to trust.
    pub ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
}

impl TestCa {
    /// A new CA and a certificate for `127.0.0.1` and `localhost` signed by it.
    pub fn new() -> Result<TestCa, rcgen::Error> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::new())?;
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "haul test CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = rcgen::KeyPair::generate()?;
        let mut server_params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
        server_params.distinguished_name.push(rcgen::DnType::CommonName, "127.0.0.1");
        let server = server_params.signed_by(&server_key, &issuer)?;
        Ok(TestCa {
            ca_pem: ca.pem(),
            server_chain: vec![server.der().clone()],
            server_key: server_key.serialize_der(),
        })
    }

    fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.server_chain.clone(), key)?;
        Ok(Arc::new(config))
    }
}

/// A running TLS front; stops when dropped.
pub struct TlsFront {
    address: SocketAddr,
    connections: Arc<std::sync::atomic::AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

impl TlsFront {
    /// Listens on a free 127.0.0.1 port, ends TLS with `ca`'s server certificate and passes
    /// each connection's bytes to `upstream` as they are.
    pub fn start(upstream: SocketAddr, ca: &TestCa) -> std::io::Result<TlsFront> {
        let config = ca.server_config().map_err(std::io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let listener = runtime.block_on(TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))))?;
        let address = listener.local_addr()?;
        let connections = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = connections.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = client.set_nodelay(true);
                    let Ok(mut tls) = acceptor.accept(client).await else { return };
                    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                });
            }
        });
        Ok(TlsFront { address, connections, _runtime: runtime })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Connections accepted so far (each a TLS handshake, successful or not).
    pub fn connections(&self) -> u64 {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_trusts_the_ca_gets_through_and_one_that_does_not_is_refused() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let upstream = crate::echo_server(&runtime);
        let ca = TestCa::new().unwrap();
        let front = TlsFront::start(upstream, &ca).unwrap();
        let connect = |trusted: bool| {
            let mut roots = rustls::RootCertStore::empty();
            let other = TestCa::new().unwrap();
            let pem = if trusted { &ca.ca_pem } else { &other.ca_pem };
            let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
            roots.add(der).unwrap();
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            runtime.block_on(async {
                let tcp = TcpStream::connect(front.address()).await.unwrap();
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
                let mut tls = connector.connect(name, tcp).await?;
                tls.write_all(b"hello").await?;
                let mut back = [0u8; 5];
                tls.read_exact(&mut back).await?;
                Ok::<_, std::io::Error>(back)
            })
        };
        assert_eq!(&connect(true).unwrap(), b"hello");
        let refused = connect(false).unwrap_err();
        assert!(refused.to_string().contains("invalid peer certificate"), "{refused}");
    }
}
