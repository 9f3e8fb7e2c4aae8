//! SIP over TLS: the server's certificate and key (`[sip] tls_cert`, `tls_key`) made a
//! rustls acceptor (TLS 1.2 and 1.3, the ring provider); for a trunk with
//! `tls_client_ca`, an acceptor that demands a client certificate signed by that CA,
//! chosen by the connection's source address (known before the handshake). A reload
//! reads the files again: new connections get the new certificate, connections already
//! up keep theirs, and a file that does not load leaves the old ones in use. For calls
//! we place, [`connector`]: the far end's certificate checked, ours shown when asked.

use anyhow::{bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// A trunk whose TLS connections must present a client certificate.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    pub trunk: String,
    pub networks: Vec<crate::sip::access::Network>,
    pub ca_file: PathBuf,
}

pub struct TlsServer {
    cert: PathBuf,
    key: PathBuf,
    clients: Vec<ClientAuth>,
    acceptors: RwLock<Acceptors>,
}

struct Acceptors {
    default: tokio_rustls::TlsAcceptor,
    /// One per entry of `clients`, in the same order.
    trunks: Vec<tokio_rustls::TlsAcceptor>,
}

impl TlsServer {
    pub fn load(cert: &Path, key: &Path, clients: Vec<ClientAuth>) -> Result<TlsServer> {
        let acceptors = acceptors(cert, key, &clients)?;
        Ok(TlsServer { cert: cert.to_path_buf(), key: key.to_path_buf(), clients, acceptors: RwLock::new(acceptors) })
    }

    /// The acceptor for a new connection from `ip`: its trunk's, when that trunk wants
    /// client certificates; else the default.
    pub fn acceptor_for(&self, ip: std::net::IpAddr) -> tokio_rustls::TlsAcceptor {
        let a = self.acceptors.read().unwrap_or_else(|p| p.into_inner());
        match self.clients.iter().position(|c| c.networks.iter().any(|n| n.contains(ip))) {
            Some(i) => a.trunks[i].clone(),
            None => a.default.clone(),
        }
    }

    /// Reads the certificate, key and client CAs again; on an error the old ones stay.
    pub fn reload(&self) -> Result<()> {
        let fresh = acceptors(&self.cert, &self.key, &self.clients)?;
        *self.acceptors.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

/// The trunks of `[[sip.trunk]]` with `tls_client_ca`.
pub fn client_auth(cfg: &crate::config::Config) -> Result<Vec<ClientAuth>> {
    let mut out = Vec::new();
    for t in &cfg.sip.trunk {
        if let Some(ca) = &t.tls_client_ca {
            let networks = t
                .networks
                .iter()
                .map(|n| n.parse().map_err(|e| anyhow::anyhow!("sip.trunk {:?}: {e}", t.name)))
                .collect::<Result<Vec<_>>>()?;
            out.push(ClientAuth { trunk: t.name.clone(), networks, ca_file: ca.clone() });
        }
    }
    Ok(out)
}

fn acceptors(cert: &Path, key: &Path, clients: &[ClientAuth]) -> Result<Acceptors> {
    let default = acceptor(cert, key, None)?;
    let trunks = clients.iter().map(|c| acceptor(cert, key, Some(c))).collect::<Result<Vec<_>>>()?;
    Ok(Acceptors { default, trunks })
}

/// Our certificate chain and key (`[sip] tls_cert`, `tls_key`).
fn our_certificate(cert: &Path, key: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("[sip] tls_cert: cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("[sip] tls_cert {}: not PEM certificates", cert.display()))?;
    if chain.is_empty() {
        bail!("[sip] tls_cert {}: no certificate in it", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("[sip] tls_key {}: no PEM private key in it (or unreadable)", key.display()))?;
    Ok((chain, key))
}

fn acceptor(cert: &Path, key: &Path, client: Option<&ClientAuth>) -> Result<tokio_rustls::TlsAcceptor> {
    let (chain, key) = our_certificate(cert, key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?;
    let builder = match client {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(&c.ca_file).with_context(|| {
                format!("sip.trunk {:?} tls_client_ca: cannot read {}", c.trunk, c.ca_file.display())
            })? {
                roots.add(cert.with_context(|| format!("sip.trunk {:?} tls_client_ca: not PEM", c.trunk))?)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| format!("sip.trunk {:?} tls_client_ca {}", c.trunk, c.ca_file.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .context("[sip] tls_cert and tls_key do not make a usable certificate (does the key match?)")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Where the system's CAs are on Debian (package ca-certificates).
pub const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The TLS client for a call we place to `trunk` (or to a host of no trunk): the
/// trunk's certificate verified against its `tls_ca` or the system's CAs; our own
/// certificate (`[sip] tls_cert`, `tls_key`) presented when set, for trunks that want
/// mutual TLS. TLS 1.2 and 1.3.
pub fn connector(
    cfg: &crate::config::Config,
    trunk: Option<&crate::config::TrunkConfig>,
) -> Result<tokio_rustls::TlsConnector> {
    let (ca, whose) = match trunk.and_then(|t| t.tls_ca.as_ref().map(|ca| (ca, t))) {
        Some((ca, t)) => (ca.clone(), format!("sip.trunk {:?} tls_ca", t.name)),
        None => (PathBuf::from(SYSTEM_CAS), "the system's CAs".to_string()),
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca).with_context(|| format!("{whose}: cannot read {}", ca.display()))? {
        roots.add(cert.with_context(|| format!("{whose} {}: not PEM certificates", ca.display()))?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?
        .with_root_certificates(roots);
    let config = match (&cfg.sip.tls_cert, &cfg.sip.tls_key) {
        (Some(cert), Some(key)) => {
            let (chain, key) = our_certificate(cert, key)?;
            builder
                .with_client_auth_cert(chain, key)
                .context("[sip] tls_cert and tls_key do not make a usable certificate")?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
