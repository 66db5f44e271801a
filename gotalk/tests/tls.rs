//! Gotalk over TLS on 127.0.0.1 with certificates made in the test: a trusted server is
//! served, an untrusted one refused, and plaintext and TLS peers that meet by mistake
//! get clear errors.

#![cfg(feature = "tls")]

use std::{net::SocketAddr, time::Duration};

use gotalk::{tls, Config, Listening, Server};

mod support;
use support::server_handlers as handlers;

/// A TLS server whose certificate (for `localhost`) comes from PEM files, as in production.
async fn tls_server() -> (Listening<SocketAddr>, rcgen::CertifiedKey<rcgen::KeyPair>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    // One folder per server: the tests run in parallel in one process.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("gotalk-tls-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_pem, key_pem) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let config = tls::server_config(&cert_pem, &key_pem).unwrap();
    // Loaded: the files are not needed any more (nor left behind in the temp folder).
    std::fs::remove_dir_all(&dir).unwrap();
    let server = Server::new(Config::accepting().handlers(handlers()))
        .listen_tls("127.0.0.1:0", config)
        .await
        .unwrap();
    (server, cert)
}

fn trusting(
    cert: &rcgen::CertifiedKey<rcgen::KeyPair>,
) -> std::sync::Arc<tls::rustls::ClientConfig> {
    let mut roots = tls::rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    tls::client_config(roots).unwrap()
}

#[tokio::test]
async fn a_client_trusting_the_certificate_is_served() {
    let (server, cert) = tls_server().await;
    let addr = format!("localhost:{}", server.local_addr().port());
    let client = tls::connect_with(&addr, Config::dialling(), trusting(&cert))
        .await
        .unwrap();
    let greeting: String = client.request("greet", "tls").await.unwrap();
    assert_eq!(greeting, "Hello tls");
    assert_eq!(server.connections().len(), 1);
}

#[tokio::test]
async fn a_client_refuses_a_certificate_it_does_not_trust() {
    let (server, _cert) = tls_server().await;
    let addr = format!("localhost:{}", server.local_addr().port());
    let untrusting = tls::client_config(tls::rustls::RootCertStore::empty()).unwrap();
    let err = tls::connect_with(&addr, Config::dialling(), untrusting)
        .await
        .unwrap_err()
        .to_string();
    println!("untrusted certificate: {err}");
    assert!(err.contains("certificate"), "{err}");
    // The server goes on.
    let (_, cert) = (server.local_addr(), _cert);
    let client = tls::connect_with(&addr, Config::dialling(), trusting(&cert))
        .await
        .unwrap();
    let _: String = client.request("greet", "again").await.unwrap();
}

#[tokio::test]
async fn plaintext_and_tls_peers_that_meet_by_mistake_get_clear_errors() {
    let (server, cert) = tls_server().await;
    // A plaintext client on the TLS port.
    let plain = gotalk::tcp::connect(server.local_addr()).await.unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(15),
        plain.request::<_, String>("greet", "x"),
    )
    .await
    .expect("fails, not hangs")
    .unwrap_err()
    .to_string();
    println!("plaintext client on a TLS port: {err}");
    assert!(err.contains("the peer speaks TLS"), "{err}");
    // A TLS client on a plaintext port.
    let plain_server = Server::new(Config::accepting().handlers(handlers()))
        .listen_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let addr = format!("localhost:{}", plain_server.local_addr().port());
    let err = tls::connect_with(&addr, Config::dialling(), trusting(&cert))
        .await
        .unwrap_err()
        .to_string();
    println!("TLS client on a plaintext port: {err}");
    assert!(err.contains("the server does not speak TLS"), "{err}");
}
