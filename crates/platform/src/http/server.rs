//! The HTTP server loop of every `trellis` process: hyper with a header-read timeout, a cap on
//! open connections, and graceful shutdown (axum's `serve` has neither bound).
//!
//! - A connection must deliver its first request head within `header_read_timeout` of being
//!   accepted, and every later head within the same time of the server waiting for it (hyper's
//!   HTTP/1 header timeout, which also ends idle keep-alive connections): a slow-header client
//!   ("slowloris") holds a connection for at most that long.
//! - At most `max_connections` connections are open at once, upgraded ones (WebSockets)
//!   included: the permit lives with the socket. One more is answered `503` with
//!   `Retry-After` and closed at once, before anything of it is read.
//! - Shutdown stops accepting (the listener is closed), lets every connection finish the request
//!   it serves, and returns when they all have ended; upgraded connections are their owners'.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tower::ServiceExt as _;

/// Bounds of the server loop (`http.*` settings).
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Time a client has to send a request's head (10 s by default).
    pub header_read_timeout: Duration,
    /// Connections open at once in this process, upgraded ones included.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self { header_read_timeout: Duration::from_secs(10), max_connections: 10_000 }
    }
}

/// What a connection over the cap reads before it is closed.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 110\r\n\r\n\
{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"too many connections; retry later\"}";

/// Serves `app` on `listener` until `shutdown` resolves, then drains as described above.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(Duration::from_secs(20)));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("trellis_connections_refused_total").increment(1);
            tokio::spawn(refuse(stream));
            continue;
        };
        metrics::gauge!("trellis_connections_open").increment(1.0);
        let io = TokioIo::new(Counted { stream, _permit: permit });
        let app = app.clone();
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        let alive = alive_tx.clone();
        let header_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _alive = alive;
            let seen = Arc::new(AtomicBool::new(false));
            let service = {
                let seen = seen.clone();
                app.map_request(move |mut req: axum::http::Request<Incoming>| {
                    seen.store(true, Ordering::Relaxed);
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req
                })
            };
            let conn = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
            tokio::pin!(conn);
            // hyper's timer starts once it reads a head as HTTP/1; before, while it learns the
            // protocol, a silent client would wait forever: this bounds the first request.
            let first = tokio::time::sleep(header_timeout);
            tokio::pin!(first);
            let mut first_armed = true;
            let mut stopping = false;
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    () = &mut first, if first_armed => {
                        first_armed = false;
                        if !seen.load(Ordering::Relaxed) {
                            metrics::counter!("trellis_connections_timed_out_total").increment(1);
                            break;
                        }
                    }
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(alive_tx);
    let _ = alive_rx.recv().await;
    Ok(())
}

/// Answers a connection over the cap and closes it, giving it at most a second.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(OVER_CAPACITY).await?;
        stream.shutdown().await
    })
    .await;
}

/// A socket that holds its connection permit for as long as it lives, through an upgrade too.
struct Counted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Counted {
    fn drop(&mut self) {
        metrics::gauge!("trellis_connections_open").decrement(1.0);
    }
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::net::SocketAddr;
    use tokio::io::AsyncReadExt;

    async fn start(
        limits: ServerLimits,
    ) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { format!("hello {}", peer.ip()) }),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(listener, app, limits, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        (addr, tx, task)
    }

    async fn read_all(stream: &mut TcpStream, within: Duration) -> Option<String> {
        let mut out = Vec::new();
        tokio::time::timeout(within, stream.read_to_end(&mut out)).await.ok()?.ok()?;
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    #[tokio::test]
    async fn a_request_is_served_with_the_peer_address() {
        let (addr, stop, task) = start(ServerLimits::default()).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
        let answer = read_all(&mut s, Duration::from_secs(10)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("hello 127.0.0.1"), "{answer}");
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_slow_header_connection_is_closed_within_the_timeout() {
        let limits = ServerLimits { header_read_timeout: Duration::from_millis(500), ..Default::default() };
        let (addr, _stop, _task) = start(limits).await;
        for opening in [&b""[..], b"GET / HTTP/1.1\r\nhost: x\r\n", b"PRI * HTTP/2.0\r\n"] {
            let started = std::time::Instant::now();
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(opening).await.unwrap();
            let answer = read_all(&mut s, Duration::from_secs(10)).await;
            assert!(answer.is_some(), "{opening:?}: still open after 10 s");
            assert!(!answer.unwrap().contains("200 OK"), "{opening:?}");
            assert!(started.elapsed() >= Duration::from_millis(400), "{opening:?}: closed too early");
        }
        // A keep-alive connection idle after its request is closed too.
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let answer = read_all(&mut s, Duration::from_secs(10)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_refused_with_503_until_one_closes() {
        let limits = ServerLimits { max_connections: 2, header_read_timeout: Duration::from_secs(30) };
        let (addr, _stop, _task) = start(limits).await;
        let held = [TcpStream::connect(addr).await.unwrap(), TcpStream::connect(addr).await.unwrap()];
        let mut third = TcpStream::connect(addr).await.unwrap();
        let answer = read_all(&mut third, Duration::from_secs(10)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 503);
        drop(held);
        test_support::wait::until("a connection to be accepted again", || async {
            let Ok(mut s) = TcpStream::connect(addr).await else { return false };
            if s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.is_err() {
                return false;
            }
            read_all(&mut s, Duration::from_secs(5)).await.is_some_and(|a| a.starts_with("HTTP/1.1 200"))
        })
        .await;
    }

    #[tokio::test]
    async fn shutdown_closes_the_listener_and_finishes_what_is_in_flight() {
        let (addr, stop, task) = start(ServerLimits::default()).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        // The connection is accepted and idle when shutdown begins.
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task).await.expect("shutdown ends").unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
    }
}
