//! The reference's tls example: the greet server over TLS and a client that trusts its
//! certificate. The certificate (for `localhost`) is made here, written as PEM files and
//! loaded from them, as a real server would.
//!
//!     cargo run --example tls

use gotalk::{tls, Config, Error, Handlers, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let dir = std::env::temp_dir().join(format!("gotalk-tls-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (cert_pem, key_pem) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem())?;
    std::fs::write(&key_pem, cert.signing_key.serialize_pem())?;

    let handlers = Handlers::new().handle("greet", |name: String| async move {
        Ok::<_, Error>(format!("Hello {name}, securely"))
    });
    let server = Server::new(Config::accepting().handlers(handlers))
        .listen_tls("127.0.0.1:0", tls::server_config(&cert_pem, &key_pem)?)
        .await?;
    println!("listening on tls:{}", server.local_addr());

    // The client trusts exactly this certificate (a private CA would work the same way).
    let mut roots = tls::rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone())?;
    let addr = format!("localhost:{}", server.local_addr().port());
    let sock = tls::connect_with(&addr, Config::dialling(), tls::client_config(roots)?).await?;
    let greeting: String = sock.request("greet", "Rasmus").await?;
    println!("greet: {greeting}");

    // A client with no reason to trust it is refused.
    let none = tls::client_config(tls::rustls::RootCertStore::empty())?;
    match tls::connect_with(&addr, Config::dialling(), none).await {
        Ok(_) => println!("unexpected: an untrusted certificate was accepted"),
        Err(e) => println!("untrusted: {e}"),
    }
    server.shutdown().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
