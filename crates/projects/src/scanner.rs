//! Malware scanning of attachments (docs/SECURITY.md UP-5): the [`MalwareScanner`] port and its
//! clamd adapter, [`ClamdScanner`], which speaks clamd's `INSTREAM` protocol over TCP.
//!
//! `INSTREAM`: the command `zINSTREAM\0`, then the file as chunks each prefixed by its length
//! (4 bytes, big-endian), then a zero length; clamd answers one line, `stream: OK\0` or
//! `stream: <signature> FOUND\0` (or `... ERROR\0`). clamd refuses streams longer than its
//! `StreamMaxLength` (25 MiB by default), so the adapter stops at its own limit, which should not
//! exceed clamd's; a file past it is [`ScanError::TooLarge`]. Every connect, write and read has a
//! timeout: a stuck clamd is [`ScanError::Unavailable`], and the file stays quarantined.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The scanner's verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// Malware, named as the scanner names it.
    Infected(String),
}

/// Why a file was not scanned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// The scanner or the file's bytes cannot be reached now; try again later.
    #[error("scanner unavailable: {0}")]
    Unavailable(String),
    /// The file is longer than the scanner accepts: it can never be scanned.
    #[error("the file is longer than the scanner accepts ({limit} bytes)")]
    TooLarge { limit: u64 },
    /// The scanner answered something that is not a verdict.
    #[error("scanner error: {0}")]
    Failed(String),
}

/// Scans a file given as its bytes in pieces.
#[async_trait]
pub trait MalwareScanner: Send + Sync {
    async fn scan(&self, body: BoxStream<'static, std::io::Result<Bytes>>) -> Result<Verdict, ScanError>;
}

/// The largest chunk sent in one length-prefixed frame.
const CHUNK: usize = 64 * 1024;

/// The longest reply read from clamd.
const MAX_REPLY: usize = 4096;

/// clamd over TCP (`tcp://host:port`).
#[derive(Debug, Clone)]
pub struct ClamdScanner {
    addr: String,
    /// For connecting, and for each write and read.
    timeout: Duration,
    /// The longest stream sent; clamd's `StreamMaxLength` must be at least this.
    max_bytes: u64,
}

impl ClamdScanner {
    /// A scanner for `url` (`tcp://host:port`), with a 10-second timeout per step and a
    /// `max_bytes` stream limit.
    pub fn new(url: &str, max_bytes: u64) -> Result<ClamdScanner, String> {
        let addr =
            url.strip_prefix("tcp://").ok_or_else(|| format!("clamd address {url:?} must be tcp://host:port"))?;
        let port_ok = addr.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok || addr.contains('/') {
            return Err(format!("clamd address {url:?} must be tcp://host:port"));
        }
        Ok(ClamdScanner { addr: addr.to_string(), timeout: Duration::from_secs(10), max_bytes })
    }

    /// The same scanner with another timeout per step.
    pub fn with_timeout(mut self, timeout: Duration) -> ClamdScanner {
        self.timeout = timeout;
        self
    }

    async fn step<T>(&self, what: &str, f: impl Future<Output = std::io::Result<T>>) -> Result<T, ScanError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ScanError::Unavailable(format!("clamd {what}: {e}"))),
            Err(_) => Err(ScanError::Unavailable(format!("clamd {what}: timed out after {:?}", self.timeout))),
        }
    }

    async fn read_reply(&self, conn: &mut TcpStream) -> Result<String, ScanError> {
        let mut reply = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let n = self.step("reply", conn.read(&mut buf)).await?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
            if reply.contains(&0) || reply.len() > MAX_REPLY {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&reply).to_string())
    }
}

/// The verdict in clamd's reply to `INSTREAM`.
pub fn parse_reply(reply: &str) -> Result<Verdict, ScanError> {
    let line = reply.trim_end_matches(['\0', '\n', '\r', ' ']);
    let Some(rest) = line.strip_prefix("stream: ") else {
        return Err(if line.contains("size limit exceeded") {
            ScanError::TooLarge { limit: 0 }
        } else {
            ScanError::Failed(line.chars().take(200).collect())
        });
    };
    if rest == "OK" {
        return Ok(Verdict::Clean);
    }
    if let Some(name) = rest.strip_suffix(" FOUND") {
        return Ok(Verdict::Infected(name.to_string()));
    }
    Err(ScanError::Failed(line.chars().take(200).collect()))
}

#[async_trait]
impl MalwareScanner for ClamdScanner {
    async fn scan(&self, mut body: BoxStream<'static, std::io::Result<Bytes>>) -> Result<Verdict, ScanError> {
        let mut conn = self.step("connect", TcpStream::connect(&self.addr)).await?;
        self.step("command", conn.write_all(b"zINSTREAM\0")).await?;
        let mut sent = 0u64;
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| ScanError::Unavailable(format!("reading the file: {e}")))?;
            for chunk in piece.chunks(CHUNK) {
                sent += chunk.len() as u64;
                if sent > self.max_bytes {
                    return Err(ScanError::TooLarge { limit: self.max_bytes });
                }
                let len = u32::try_from(chunk.len()).map_err(|_| ScanError::Failed("chunk too long".into()))?;
                let framed = async {
                    conn.write_all(&len.to_be_bytes()).await?;
                    conn.write_all(chunk).await
                };
                if let Err(e) = self.step("stream", framed).await {
                    // clamd may have answered and closed (its own size limit): its reply says why.
                    let reply = self.read_reply(&mut conn).await.unwrap_or_default();
                    return match parse_reply(&reply) {
                        Err(ScanError::TooLarge { .. }) => Err(ScanError::TooLarge { limit: self.max_bytes }),
                        _ => Err(e),
                    };
                }
            }
        }
        self.step("end of stream", conn.write_all(&0u32.to_be_bytes())).await?;
        let reply = self.read_reply(&mut conn).await?;
        match parse_reply(&reply) {
            Err(ScanError::TooLarge { .. }) => Err(ScanError::TooLarge { limit: self.max_bytes }),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn replies_parse() {
        assert_eq!(parse_reply("stream: OK\0"), Ok(Verdict::Clean));
        assert_eq!(
            parse_reply("stream: Eicar-Test-Signature FOUND\0"),
            Ok(Verdict::Infected("Eicar-Test-Signature".into()))
        );
        assert!(matches!(parse_reply("INSTREAM size limit exceeded. ERROR\0"), Err(ScanError::TooLarge { .. })));
        assert!(matches!(parse_reply("stream: Can't allocate memory ERROR\0"), Err(ScanError::Failed(_))));
        assert!(matches!(parse_reply(""), Err(ScanError::Failed(_))));
    }

    #[tokio::test]
    async fn a_silent_clamd_times_out_and_a_long_file_is_not_sent_whole() {
        // Accepts, reads everything, never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut sink = Vec::new();
                    let _ = conn.read_to_end(&mut sink).await;
                });
            }
        });
        let body = |n: usize| futures::stream::iter([Ok(Bytes::from(vec![b'a'; n]))]).boxed();
        let step = Duration::from_millis(200);
        let scanner = ClamdScanner::new(&format!("tcp://{addr}"), 100).unwrap().with_timeout(step);
        // The reply never comes: the scan ends by its own timeout, not by the outer bound (which
        // only turns a hang into a failure that says so).
        let started = std::time::Instant::now();
        let outer = test_support::wait::patience(Duration::from_secs(60));
        let silent = tokio::time::timeout(outer, scanner.scan(body(10)))
            .await
            .unwrap_or_else(|_| panic!("a scan against a silent clamd still hangs after {outer:?}: no timeout"));
        match silent {
            Err(ScanError::Unavailable(why)) => assert!(why.contains("timed out"), "{why}"),
            other => panic!("expected a timed-out reply, got {other:?}"),
        }
        assert!(started.elapsed() >= step, "the scan waited for the reply's timeout");
        assert_eq!(scanner.scan(body(101)).await, Err(ScanError::TooLarge { limit: 100 }));
        // Nobody listening: unavailable, not a verdict. A reserved port is one no test binds and
        // the kernel never hands out, so it stays refused.
        drop(scanner);
        let refused = test_support::reserve_port();
        let scanner = ClamdScanner::new(&format!("tcp://127.0.0.1:{refused}"), 100).unwrap();
        assert!(matches!(scanner.scan(body(10)).await, Err(ScanError::Unavailable(_))));
    }

    #[test]
    fn addresses_must_be_tcp() {
        assert!(ClamdScanner::new("tcp://127.0.0.1:3310", 1).is_ok());
        for bad in ["127.0.0.1:3310", "unix:///run/clamd.ctl", "tcp://:3310", "tcp://host", "tcp://h:99999"] {
            assert!(ClamdScanner::new(bad, 1).is_err(), "{bad}");
        }
    }
}
