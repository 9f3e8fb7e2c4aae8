//! Certificates made at test time with openssl: a CA and a server certificate it signed.

use super::need;
use std::path::{Path, PathBuf};
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA named `name` in `dir` and a server certificate it signed for 127.0.0.1 and
/// localhost: (CA, server certificate, server key).
pub fn ca_and_server(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    need("openssl");
    let f = |s: &str| format!("{name}-{s}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &f("ca.key"),
            "-out",
            &f("ca.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=voxbridge test CA {name}"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &f("server.key"),
            "-out",
            &f("server.csr"),
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join(f("ext")),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &f("server.csr"),
            "-CA",
            &f("ca.pem"),
            "-CAkey",
            &f("ca.key"),
            "-CAcreateserial",
            "-out",
            &f("server.pem"),
            "-days",
            "2",
            "-extfile",
            &f("ext"),
        ],
    );
    (dir.join(f("ca.pem")), dir.join(f("server.pem")), dir.join(f("server.key")))
}

/// A client certificate (extendedKeyUsage clientAuth) for `cn`, signed by the CA
/// `ca_and_server(dir, name)` made: (certificate, key).
pub fn client_cert(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let f = |s: &str| format!("{name}-{cn}-{s}");
    let subj = format!("/CN={cn}");
    openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &f("key"), "-out", &f("csr"), "-subj", &subj]);
    std::fs::write(dir.join(f("ext")), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
    let (ca, ca_key) = (format!("{name}-ca.pem"), format!("{name}-ca.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &f("csr"),
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &f("pem"),
            "-days",
            "2",
            "-extfile",
            &f("ext"),
        ],
    );
    (dir.join(f("pem")), dir.join(f("key")))
}
