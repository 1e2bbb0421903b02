//! The `/metrics` endpoint: a minimal HTTP/1.1 responder on tokio.
//!
//! Hand-written rather than a server crate: no HTTP server (hyper, axum)
//! is in the dependency tree, and a scrape endpoint needs one request
//! line, one response and nothing else (no keep-alive, no bodies in, no
//! TLS — a fab that needs TLS puts its usual reverse proxy in front).
//! Each connection answers one request and closes (`Connection: close`),
//! which every Prometheus server and curl handle.

use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest request head read; a scraper's is a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;
/// A client that has not sent its request head by then is dropped, so a
/// silent connection cannot hold a task for ever.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections answered at once; more are closed without an answer. A
/// scraper needs one; a handful allows a second Prometheus and a curl. The
/// limit keeps a hostile or broken client from taking the file
/// descriptors the station's device and host links need.
pub const MAX_CONNECTIONS: usize = 8;
/// The longest one connection is served (head, encoding, writing): a client
/// that never reads its answer cannot hold a connection for ever.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until the runtime ends; each on a task of its own.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    serve_at_most(listener, registry, MAX_CONNECTIONS).await
}

async fn serve_at_most(listener: TcpListener, registry: Arc<Registry>, max: usize) {
    let permits = Arc::new(tokio::sync::Semaphore::new(max));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::warn!(
                        "metrics endpoint: {max} connections open; closed the one from {peer}"
                    );
                    drop(stream);
                    continue;
                };
                let registry = registry.clone();
                tokio::spawn(async move {
                    if tokio::time::timeout(CONNECTION_TIMEOUT, answer(stream, registry))
                        .await
                        .is_err()
                    {
                        tracing::debug!("metrics endpoint: {peer} took too long; closed");
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                // E.g. out of file descriptors: say so and go on after a
                // pause instead of spinning on the error.
                tracing::warn!("metrics endpoint: accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// GET (or HEAD, without the body) /metrics, with any query string.
    Metrics {
        head_only: bool,
    },
    /// /metrics with another method.
    MethodNotAllowed,
    NotFound,
    BadRequest,
}

/// Routes a request head (the bytes up to the blank line).
pub fn route(head: &[u8]) -> Route {
    let Some(line) = head.split(|&b| b == b'\n').next() else {
        return Route::BadRequest;
    };
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or(target);
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { head_only: false },
        ("HEAD", "/metrics") => Route::Metrics { head_only: true },
        (_, "/metrics") => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(head);
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= MAX_HEAD {
            return Ok(head);
        }
    }
}

async fn answer(mut stream: TcpStream, registry: Arc<Registry>) {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(h)) if !h.is_empty() => h,
        // Nothing sent, a read error or too slow: nothing to answer.
        _ => return,
    };
    let (status, content_type, body, head_only) = match route(&head) {
        Route::Metrics { head_only } => {
            // Encoding reads snapshots and takes two short locks: done on
            // the blocking pool, so the runtime's one worker (the run
            // engine's) is never held up by a scrape.
            match tokio::task::spawn_blocking(move || super::exposition_text(&registry)).await {
                Ok(Ok(text)) => ("200 OK", super::CONTENT_TYPE, text, head_only),
                Ok(Err(e)) => (
                    "500 Internal Server Error",
                    "text/plain; charset=utf-8",
                    format!("encoding the metrics failed: {e}\n"),
                    false,
                ),
                Err(e) => (
                    "500 Internal Server Error",
                    "text/plain; charset=utf-8",
                    format!("encoding the metrics failed: {e}\n"),
                    false,
                ),
            }
        }
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD are served at /metrics\n".to_owned(),
            false,
        ),
        Route::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: the metrics are at /metrics\n".to_owned(),
            false,
        ),
        Route::BadRequest => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "bad request\n".to_owned(),
            false,
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("\r\n");
    if !head_only {
        response.push_str(&body);
    }
    // The scraper may have gone (timed out): nothing to do about it here;
    // it will scrape again and record the failed one itself.
    if let Err(e) = stream.write_all(response.as_bytes()).await {
        tracing::debug!("metrics endpoint: writing a response: {e}");
        return;
    }
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past the limit a connection is closed unanswered; once the open ones
    /// go, the endpoint answers again.
    #[test]
    fn connections_beyond_the_limit_are_closed_and_the_endpoint_recovers() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(serve_at_most(listener, Arc::new(Registry::default()), 2));
            // Two silent clients hold both places.
            let idle1 = TcpStream::connect(addr).await.unwrap();
            let idle2 = TcpStream::connect(addr).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut third = TcpStream::connect(addr).await.unwrap();
            third.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.ok();
            let mut got = Vec::new();
            let n = tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut got))
                .await
                .expect("closed, not left hanging");
            assert!(n.is_err() || got.is_empty(), "answered beyond the limit");
            drop((idle1, idle2));
            // Their tasks end (EOF) and give their places back.
            let t0 = std::time::Instant::now();
            loop {
                let mut c = TcpStream::connect(addr).await.unwrap();
                c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.unwrap();
                let mut answer = Vec::new();
                c.read_to_end(&mut answer).await.ok();
                if answer.starts_with(b"HTTP/1.1 200") {
                    break;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(5),
                    "never answered again"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    #[test]
    fn requests_are_routed_by_method_and_path() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            route(b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            route(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET /metrics SPDY/3\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
    }
}
