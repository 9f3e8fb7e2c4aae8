//! The metrics endpoint: `GET /metrics` answers the OpenMetrics text of
//! [`crate::metrics::METRICS`] (Prometheus scrapes it), with the gauges that are read
//! rather than counted (deliveries pending) filled in first. A minimal HTTP/1.1 server:
//! one request per connection, a 5 s deadline, 8 KiB of request head at most.

use crate::store::Store;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const MAX_HEAD: usize = 8192;
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the metrics endpoint {addr} (set [metrics] listen)"))
}

pub async fn run(listener: TcpListener, store: Store, stop: CancellationToken) {
    loop {
        let conn = tokio::select! {
            _ = stop.cancelled() => return,
            c = listener.accept() => c,
        };
        match conn {
            Ok((stream, peer)) => {
                let store = store.clone();
                tokio::spawn(async move {
                    if let Err(e) = tokio::time::timeout(Duration::from_secs(5), serve(stream, &store)).await {
                        tracing::debug!(%peer, error = %e, "metrics request timed out");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve(mut stream: TcpStream, store: &Store) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_HEAD {
            let _ = respond(&mut stream, "431 Request Header Fields Too Large", "text/plain", "too large\n").await;
            return;
        }
    }
    let line = String::from_utf8_lossy(head.split(|&b| b == b'\r').next().unwrap_or_default()).into_owned();
    let mut parts = line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => {
            if let Ok((pending, _)) = store.run(|s| s.outbox_pending()).await {
                crate::metrics::METRICS.deliveries_pending.set(pending);
            }
            let body = crate::metrics::METRICS.encode();
            let _ = respond(&mut stream, "200 OK", CONTENT_TYPE, &body).await;
        }
        ("GET", _) => {
            let _ = respond(&mut stream, "404 Not Found", "text/plain", "metrics are at /metrics\n").await;
        }
        _ => {
            let _ = respond(&mut stream, "405 Method Not Allowed", "text/plain", "GET /metrics\n").await;
        }
    }
}

async fn respond(stream: &mut TcpStream, status: &str, ctype: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
