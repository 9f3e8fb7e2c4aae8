//! SIP over TLS: the server's certificate and key (`[sip] tls_cert`, `tls_key`) made a
//! rustls acceptor (TLS 1.2 and 1.3, the ring provider). A reload reads the files again:
//! new connections get the new certificate, connections already up keep theirs, and a
//! file that does not load leaves the old certificate in use.

use anyhow::{bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub struct TlsServer {
    cert: PathBuf,
    key: PathBuf,
    acceptor: RwLock<tokio_rustls::TlsAcceptor>,
}

impl TlsServer {
    pub fn load(cert: &Path, key: &Path) -> Result<TlsServer> {
        let acceptor = acceptor(cert, key)?;
        Ok(TlsServer { cert: cert.to_path_buf(), key: key.to_path_buf(), acceptor: RwLock::new(acceptor) })
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.acceptor.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the certificate and key again; on an error the old ones stay.
    pub fn reload(&self) -> Result<()> {
        let fresh = acceptor(&self.cert, &self.key)?;
        *self.acceptor.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("[sip] tls_cert: cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("[sip] tls_cert {}: not PEM certificates", cert.display()))?;
    if chain.is_empty() {
        bail!("[sip] tls_cert {}: no certificate in it", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("[sip] tls_key {}: no PEM private key in it (or unreadable)", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("[sip] tls_cert and tls_key do not make a usable certificate (does the key match?)")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
