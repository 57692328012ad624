//! Reaching the database: the URL (its password never shown), TLS with the system's or a given
//! root certificate, the pool, and the connection that listens for runs to take.

use super::CHANNEL;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres_rustls::MakeRustlsConnect;

/// A driver error with its causes (a TLS handshake's names the certificate problem).
pub(super) fn sql(e: tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("PostgreSQL: {}", db.message());
    }
    let mut text = format!("PostgreSQL: {e}");
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

pub(super) fn pooled(e: deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => sql(e),
        other => format!("PostgreSQL: {other}"),
    }
}

/// The URL as logs may show it: without its password.
pub(crate) fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((user, host)) = rest.rsplit_once('@') else { return url.to_string() };
    match user.split_once(':') {
        Some((name, _)) => format!("{scheme}://{name}:***@{host}"),
        None => url.to_string(),
    }
}

/// Where the store is and how to reach it: the connection settings of its URL and TLS.
#[derive(Clone)]
pub(super) struct Target {
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: MakeRustlsConnect,
}

/// Splits `sslrootcert=FILE` (certificates of a private CA to trust, as libpq names it) off a
/// URL or `key=value` string: the driver does not know it.
pub(super) fn root_cert(url: &str) -> (String, Option<std::path::PathBuf>) {
    const KEY: &str = "sslrootcert=";
    if let Some((base, query)) = url.split_once('?') {
        let (mut kept, mut file) = (Vec::new(), None);
        for pair in query.split('&') {
            match pair.strip_prefix(KEY) {
                Some(f) => file = Some(std::path::PathBuf::from(f)),
                None => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        return (rest, file);
    }
    let mut file = None;
    let kept: Vec<&str> = url
        .split_whitespace()
        .filter(|w| match w.strip_prefix(KEY) {
            Some(f) => {
                file = Some(std::path::PathBuf::from(f));
                false
            }
            None => true,
        })
        .collect();
    (if file.is_some() { kept.join(" ") } else { url.to_string() }, file)
}

impl Target {
    /// The settings of a store URL. TLS is used as its `sslmode` says (`prefer` by default,
    /// `require`, `disable`), verifying the server's certificate against the public roots and
    /// the `sslrootcert` file when given.
    pub(super) fn parse(url: &str) -> Result<Target, String> {
        let (rest, root) = root_cert(url);
        let mut config: tokio_postgres::Config =
            rest.parse().map_err(|e| format!("the store URL {} is not valid: {e}", shown(url)))?;
        config.connect_timeout(Duration::from_secs(5));
        if config.get_application_name().is_none() {
            config.application_name("wf");
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(file) = &root {
            use rustls::pki_types::pem::PemObject as _;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(file)
                .map_err(|e| format!("sslrootcert {}: {e}", file.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("sslrootcert {}: {e}", file.display()))?;
                roots.add(cert).map_err(|e| format!("sslrootcert {}: {e}", file.display()))?;
            }
        }
        let tls =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(Target { config, tls: MakeRustlsConnect::new(tls) })
    }

    pub(super) async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }
}

pub(super) fn pool(target: &Target, size: usize) -> Result<Pool, String> {
    let manager = Manager::from_config(
        target.config.clone(),
        target.tls.clone(),
        ManagerConfig { recycling_method: RecyclingMethod::Fast },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(Duration::from_secs(5)))
        .wait_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| format!("cannot set up the store's connections: {e}"))
}

/// Listens on [`CHANNEL`] and wakes the takers; reconnects when the connection is lost.
pub(super) async fn listen(target: Target, woken: Arc<Notify>) {
    loop {
        if let Ok((client, mut connection)) = target.config.connect(target.tls.clone()).await {
            let messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            let listening = async {
                // Wakes once connected: runs may have been let go while this instance was away.
                woken.notify_one();
                client.batch_execute(&format!("LISTEN {CHANNEL}")).await
            };
            let mut messages = std::pin::pin!(messages);
            let (listened, ()) = tokio::join!(listening, async {
                use futures_util::StreamExt as _;
                while let Some(Ok(message)) = messages.next().await {
                    if let tokio_postgres::AsyncMessage::Notification(_) = message {
                        woken.notify_one();
                    }
                }
            });
            drop(listened);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
