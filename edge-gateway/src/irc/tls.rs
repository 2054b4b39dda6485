//! IRC over TLS (the `6697` listener): rustls with the certificate chain
//! and key named by `[irc] tls_cert` / `tls_key` (PEM files, e.g. a real
//! certificate, or one made with `chatctl tls self-signed` for local use).
//!
//! Clients may present a certificate of their own; any is accepted (none
//! is required), since it is not checked against a CA but only identified
//! by its SHA-256 fingerprint, which is what `SASL EXTERNAL` and NickServ
//! `CERT` go by.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bus::shutdown::Shutdown;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{
    DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use tokio_rustls::TlsAcceptor;

use crate::gateway::Gateway;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("{path} holds no certificate")]
    NoCertificate { path: String },
    #[error("TLS configuration: {0}")]
    Config(#[from] tokio_rustls::rustls::Error),
}

/// Loads the certificate chain and key into an acceptor.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let read_err = |path: &Path| {
        let path = path.display().to_string();
        move |e: tokio_rustls::rustls::pki_types::pem::Error| TlsError::Read {
            path: path.clone(),
            detail: e.to_string(),
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(read_err(cert))?
        .collect::<Result<_, _>>()
        .map_err(read_err(cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.display().to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(read_err(key))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyClientCert {
        provider: provider.clone(),
    });
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The SHA-256 fingerprint of a certificate, lowercase hex (as IRC
/// servers show it in WHOIS and NickServ CERT LIST).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Accepts TLS clients until shutdown, then serves each exactly as a
/// plain TCP client (see [`super::serve`]).
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    gw: Arc<Gateway>,
    shutdown: Shutdown,
    drain: mpsc::Sender<()>,
) {
    let stop = shutdown.clone();
    super::accept_loop(listener, stop, |stream, peer| {
        let acceptor = acceptor.clone();
        let (gw, shutdown, drain) = (gw.clone(), shutdown.clone(), drain.clone());
        tokio::spawn(handshake(acceptor, stream, peer, gw, shutdown, drain));
    })
    .await
}

async fn handshake(
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    gw: Arc<Gateway>,
    shutdown: Shutdown,
    drain: mpsc::Sender<()>,
) {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            crate::metrics::tls_handshake_failed();
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            crate::metrics::tls_handshake_failed();
            return;
        }
    };
    let certfp = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(fingerprint);
    let link = super::Link {
        peer,
        tls: true,
        certfp,
    };
    super::serve_stream(tls, link, gw, shutdown, drain).await;
}

/// Accepts any client certificate whose handshake signature is valid:
/// the certificate is an identity (its fingerprint), not a CA-issued
/// credential, and offering none is fine.
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, tokio_rustls::rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
