//! HTTPS: the server's certificate and key from PEM files (`tls.cert_file`, `tls.key_file`),
//! read again on SIGHUP so that an operator renews a certificate without dropping the
//! connections in flight; optionally, client certificates required on the metrics listener.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use axum_server::tls_rustls::RustlsConfig;
use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};

use crate::settings::TlsSettings;

/// Why a certificate, key or CA file cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read or holds no PEM item of the kind wanted.
    #[error("{what} {path}: {reason}")]
    File {
        /// Which setting names the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificate and key do not make a server configuration (a key that does not match
    /// the certificate, an unsupported key type, …).
    #[error("tls.cert_file {cert} with tls.key_file {key}: {source}")]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls found wrong.
        source: rustls::Error,
    },
    /// The client CA file holds no usable authority.
    #[error("tls.metrics_client_ca_file {path}: {reason}")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// The certificate chain in `path`, leaf first.
pub fn read_certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let failed = |reason: String| TlsError::File {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|err| failed(err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| failed(err.to_string()))?;
    if certificates.is_empty() {
        return Err(failed(
            "no PEM certificate (BEGIN CERTIFICATE) in it".into(),
        ));
    }
    Ok(certificates)
}

/// The private key in `path` (PKCS#8, PKCS#1 or SEC1).
pub fn read_private_key(
    what: &'static str,
    path: &Path,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|err| TlsError::File {
        what,
        path: path.to_path_buf(),
        reason: match err {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PEM private key (BEGIN PRIVATE KEY) in it".into()
            }
            other => other.to_string(),
        },
    })
}

/// The server configuration of `settings`, or `None` when TLS is off. With `client_ca`, a
/// client certificate signed by one of its authorities is required.
pub fn server_config(
    settings: &TlsSettings,
    client_ca: Option<&Path>,
) -> Result<Option<ServerConfig>, TlsError> {
    let (Some(cert), Some(key)) = (&settings.cert_file, &settings.key_file) else {
        return Ok(None);
    };
    let chain = read_certificates("tls.cert_file", cert)?;
    let private_key = read_private_key("tls.key_file", key)?;
    let builder = ServerConfig::builder();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let failed = |reason: String| TlsError::ClientCa {
                path: path.to_path_buf(),
                reason,
            };
            let mut roots = RootCertStore::empty();
            for certificate in read_certificates("tls.metrics_client_ca_file", path)? {
                roots
                    .add(certificate)
                    .map_err(|err| failed(err.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|err| failed(err.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, private_key)
        .map_err(|source| TlsError::Config {
            cert: cert.clone(),
            key: key.clone(),
            source,
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(config))
}

/// The TLS configurations the listeners serve with, kept so that SIGHUP can swap their
/// certificates.
#[derive(Clone)]
pub struct Certificates {
    settings: TlsSettings,
    /// The API's and the UI's listener.
    pub api: RustlsConfig,
    /// The metrics listener (client certificates required with `metrics_client_ca_file`).
    pub metrics: RustlsConfig,
}

impl Certificates {
    /// Reads the files of `settings`; `None` when TLS is off.
    pub fn load(settings: &TlsSettings) -> Result<Option<Self>, TlsError> {
        let Some(api) = server_config(settings, None)? else {
            return Ok(None);
        };
        let metrics = server_config(settings, settings.metrics_client_ca_file.as_deref())?
            .unwrap_or_else(|| api.clone());
        Ok(Some(Self {
            settings: settings.clone(),
            api: RustlsConfig::from_config(Arc::new(api)),
            metrics: RustlsConfig::from_config(Arc::new(metrics)),
        }))
    }

    /// Reads the files again and serves them to new connections; on error the certificates
    /// in use stay.
    pub fn reload(&self) -> Result<(), TlsError> {
        let api = server_config(&self.settings, None)?;
        let metrics = server_config(
            &self.settings,
            self.settings.metrics_client_ca_file.as_deref(),
        )?;
        if let (Some(api), Some(metrics)) = (api, metrics) {
            self.api.reload_from_config(Arc::new(api));
            self.metrics.reload_from_config(Arc::new(metrics));
        }
        Ok(())
    }

    /// Reloads on every SIGHUP until the process ends.
    pub async fn reload_on_hangup(self) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot watch SIGHUP: certificates are read at start only");
                return;
            };
            while hangups.recv().await.is_some() {
                match self.reload() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate and key read again"),
                    Err(err) => tracing::error!(
                        error = %err,
                        "SIGHUP: the new TLS files cannot serve; the previous certificate stays"
                    ),
                }
            }
        }
    }
}

/// The certificate problem in `err` or its causes, if a refused certificate (ours or the
/// peer's) is what failed: waiting will not mend it, unlike a refused connection.
pub fn certificate_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::{AlertDescription, Error};
    std::iter::successors(Some(err), |cause| cause.source()).find_map(|cause| {
        // An I/O error's `source` skips the error it wraps: look inside it too.
        let tls = cause.downcast_ref::<Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<Error>())
        })?;
        match tls {
            Error::InvalidCertificate(_)
            | Error::NoCertificatesPresented
            | Error::AlertReceived(
                AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateRequired
                | AlertDescription::CertificateUnknown,
            ) => Some(tls.to_string()),
            _ => None,
        }
    })
}

/// The TLS side of an `amqps://` connection: the authorities the broker's certificate must
/// chain to (none: the system's) and a client certificate with its key, for the broker's
/// `EXTERNAL` mechanism or its `verify_peer`. The files are checked here, so a wrong one is
/// named before any connection is tried.
pub fn amqp_tls(
    ca: Option<&Path>,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<lapin::tcp::OwnedTLSConfig, TlsError> {
    let read = |what: &'static str, path: &Path| {
        std::fs::read(path).map_err(|err| TlsError::File {
            what,
            path: path.to_path_buf(),
            reason: err.to_string(),
        })
    };
    let cert_chain = match ca {
        Some(path) => {
            read_certificates("amqp.tls_ca_file", path)?;
            Some(
                String::from_utf8(read("amqp.tls_ca_file", path)?).map_err(|_| TlsError::File {
                    what: "amqp.tls_ca_file",
                    path: path.to_path_buf(),
                    reason: "not text (PEM expected)".into(),
                })?,
            )
        }
        None => None,
    };
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => {
            read_certificates("amqp.tls_cert_file", cert)?;
            read_private_key("amqp.tls_key_file", key)?;
            Some(lapin::tcp::OwnedIdentity::PKCS8 {
                pem: read("amqp.tls_cert_file", cert)?,
                key: read("amqp.tls_key_file", key)?,
            })
        }
        _ => None,
    };
    Ok(lapin::tcp::OwnedTLSConfig {
        identity,
        cert_chain,
    })
}
