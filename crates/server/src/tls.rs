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

/// A PEM file, read once, named by the setting that gives it.
struct PemFile<'a> {
    what: &'static str,
    path: &'a Path,
    bytes: Vec<u8>,
}

impl<'a> PemFile<'a> {
    fn read(what: &'static str, path: &'a Path) -> Result<Self, TlsError> {
        let bytes = std::fs::read(path).map_err(|err| TlsError::File {
            what,
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
        Ok(Self { what, path, bytes })
    }

    fn failed(&self, reason: String) -> TlsError {
        TlsError::File {
            what: self.what,
            path: self.path.to_path_buf(),
            reason,
        }
    }

    /// The certificate chain in it, leaf first.
    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let certificates = CertificateDer::pem_slice_iter(&self.bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| self.failed(err.to_string()))?;
        if certificates.is_empty() {
            return Err(self.failed("no PEM certificate (BEGIN CERTIFICATE) in it".into()));
        }
        Ok(certificates)
    }

    /// The private key in it (PKCS#8, PKCS#1 or SEC1).
    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_slice(&self.bytes).map_err(|err| {
            self.failed(match err {
                rustls::pki_types::pem::Error::NoItemsFound => {
                    "no PEM private key (BEGIN PRIVATE KEY) in it".into()
                }
                other => other.to_string(),
            })
        })
    }
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
    let chain = PemFile::read("tls.cert_file", cert)?.certificates()?;
    let private_key = PemFile::read("tls.key_file", key)?.private_key()?;
    let builder = ServerConfig::builder();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let failed = |reason: String| TlsError::ClientCa {
                path: path.to_path_buf(),
                reason,
            };
            let mut roots = RootCertStore::empty();
            for certificate in PemFile::read("tls.metrics_client_ca_file", path)?.certificates()? {
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

/// The API's and the metrics listener's configurations of `settings` (the same one unless
/// the metrics listener asks for client certificates); `None` when TLS is off.
fn listener_configs(
    settings: &TlsSettings,
) -> Result<Option<(ServerConfig, ServerConfig)>, TlsError> {
    let Some(api) = server_config(settings, None)? else {
        return Ok(None);
    };
    let metrics = match settings.metrics_client_ca_file.as_deref() {
        Some(client_ca) => server_config(settings, Some(client_ca))?,
        None => None,
    }
    .unwrap_or_else(|| api.clone());
    Ok(Some((api, metrics)))
}

impl Certificates {
    /// Reads the files of `settings`; `None` when TLS is off.
    pub fn load(settings: &TlsSettings) -> Result<Option<Self>, TlsError> {
        let Some((api, metrics)) = listener_configs(settings)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            settings: settings.clone(),
            api: RustlsConfig::from_config(Arc::new(api)),
            metrics: RustlsConfig::from_config(Arc::new(metrics)),
        }))
    }

    /// Reads the files again and serves them to new connections; on error the certificates
    /// in use stay.
    pub fn reload(&self) -> Result<(), TlsError> {
        if let Some((api, metrics)) = listener_configs(&self.settings)? {
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
    let cert_chain = match ca {
        Some(path) => {
            let file = PemFile::read("amqp.tls_ca_file", path)?;
            file.certificates()?;
            Some(String::from_utf8(file.bytes).map_err(|_| TlsError::File {
                what: "amqp.tls_ca_file",
                path: path.to_path_buf(),
                reason: "not text (PEM expected)".into(),
            })?)
        }
        None => None,
    };
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => {
            let (cert, key) = (
                PemFile::read("amqp.tls_cert_file", cert)?,
                PemFile::read("amqp.tls_key_file", key)?,
            );
            cert.certificates()?;
            key.private_key()?;
            Some(lapin::tcp::OwnedIdentity::PKCS8 {
                pem: cert.bytes,
                key: key.bytes,
            })
        }
        _ => None,
    };
    Ok(lapin::tcp::OwnedTLSConfig {
        identity,
        cert_chain,
    })
}
