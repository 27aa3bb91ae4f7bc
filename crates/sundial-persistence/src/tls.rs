//! TLS to the server databases, with the meaning Temporal gives its `sql.tls` settings.
//!
//! PostgreSQL (Temporal's `sslmode` mapping): `enabled` alone encrypts without checking the
//! server (`require`); with `caFile` the server's chain must lead to that CA (what `require`
//! does when a root certificate is given); `enableHostVerification` also checks that the
//! certificate names the host (`verify-full`; the system's roots when there is no `caFile`).
//! MySQL (Temporal builds a Go `tls.Config`): without `enableHostVerification` nothing about the
//! server is checked; with it, chain and name (`serverName` when given, else the host). A
//! client certificate and key, when given, are presented to the server; one without the other
//! is refused.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sundial_common::{Error, Result};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

/// A database's TLS settings (Temporal's `persistence.datastores.*.sql.tls`, or
/// `temporal-sql-tool`'s `--tls*` flags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlTls {
    /// CA certificates (PEM) the server's certificate must lead to.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) shown to the server, with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// The name the server's certificate must carry (MySQL; default: the host).
    pub server_name: Option<String>,
    /// Check that the server's certificate names the host (or `server_name`).
    pub enable_host_verification: bool,
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Nothing: encryption only.
    Nothing,
    /// The chain leads to a trusted root; any name.
    Chain,
    /// Chain and name.
    Full,
}

impl SqlTls {
    /// Refuses settings that cannot work, before any connection is tried.
    pub fn check(&self) -> Result<()> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => Err(Error::InvalidArgument(
                "TLS: a client certificate (certFile) is set but no key (keyFile)".into(),
            )),
            (None, Some(_)) => Err(Error::InvalidArgument(
                "TLS: a client key (keyFile) is set but no certificate (certFile)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// What PostgreSQL checks, as Temporal's `sslmode` choice implies.
    pub(crate) fn postgres_verify(&self) -> Verify {
        if self.enable_host_verification {
            Verify::Full
        } else if self.ca_file.is_some() {
            Verify::Chain
        } else {
            Verify::Nothing
        }
    }

    /// A rustls client configuration checking `verify`.
    pub(crate) fn client_config(&self, verify: Verify) -> Result<ClientConfig> {
        self.check()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| tls_error(format!("{error}")))?;
        let roots = Arc::new(self.roots()?);
        let builder = match verify {
            Verify::Full => builder.with_root_certificates(roots),
            Verify::Chain | Verify::Nothing => {
                let chain = match verify {
                    Verify::Chain => Some(web_pki(roots, &provider)?),
                    _ => None,
                };
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Lenient {
                        chain,
                        algorithms: provider.signature_verification_algorithms,
                    }))
            }
        };
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|error| {
                        tls_error(format!("client certificate {}: {error}", cert.display()))
                    })?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|error| tls_error(format!("client key {}: {error}", key.display())))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|error| tls_error(format!("client certificate: {error}")))
            }
            _ => Ok(builder.with_no_client_auth()),
        }
    }

    /// `ca_file`'s certificates, or the system's roots when there is none.
    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|error| tls_error(format!("CA file {}: {error}", path.display())))?;
                if certs.is_empty() {
                    return Err(tls_error(format!(
                        "CA file {} holds no certificate",
                        path.display()
                    )));
                }
                for cert in certs {
                    roots.add(cert).map_err(|error| {
                        tls_error(format!("CA file {}: {error}", path.display()))
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
        }
        Ok(roots)
    }
}

fn tls_error(message: String) -> Error {
    Error::InvalidArgument(format!("TLS: {message}"))
}

fn web_pki(
    roots: Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|error| tls_error(format!("{error}")))
}

/// What `Verify::Chain` and `Verify::Nothing` check: the chain when there is a verifier for it
/// (any name), else nothing. The handshake's signatures are checked either way.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// tokio-postgres' TLS hook over rustls.
#[derive(Clone)]
pub(crate) struct PgTls(Arc<ClientConfig>);

impl PgTls {
    pub(crate) fn new(tls: &SqlTls) -> Result<PgTls> {
        Ok(PgTls(Arc::new(tls.client_config(tls.postgres_verify())?)))
    }
}

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type TlsConnect = PgTlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<PgTlsConnect> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        Ok(PgTlsConnect {
            config: self.0.clone(),
            name,
        })
    }
}

pub(crate) struct PgTlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for PgTlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<PgTlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let stream = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(PgTlsStream(stream))
        })
    }
}

pub(crate) struct PgTlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> fmt::Debug for PgTlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PgTlsStream")
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for PgTlsStream<S> {
    /// No channel binding: SCRAM runs without it (`channel_binding=prefer`).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// mysql_async's TLS options for `tls` (it builds its rustls configuration itself).
pub(crate) fn mysql_ssl_opts(tls: &SqlTls) -> Result<mysql_async::SslOpts> {
    tls.check()?;
    // mysql_async asks rustls for the process's default provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut opts = mysql_async::SslOpts::default()
        .with_danger_accept_invalid_certs(!tls.enable_host_verification);
    if let Some(ca) = &tls.ca_file {
        opts = opts.with_root_certs(vec![ca.clone().into()]);
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        opts = opts.with_client_identity(Some(mysql_async::ClientIdentity::new(
            cert.clone().into(),
            key.clone().into(),
        )));
    }
    if let Some(name) = &tls.server_name {
        opts = opts.with_danger_tls_hostname_override(Some(name.clone()));
    }
    Ok(opts)
}
