//! A TCP proxy in front of a real service, for fault tests: [`TcpProxy::cut`] drops every
//! connection and refuses new ones (a network partition, as the client sees it), and
//! [`TcpProxy::restore`] lets traffic through again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards `127.0.0.1:<port>` to a target address until dropped.
pub struct TcpProxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    /// Bumped on every cut, so that live connections end.
    generation: watch::Sender<u64>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// A proxy to `target` (e.g. `127.0.0.1:6379`), on a free local port.
    pub async fn start(target: &str) -> TcpProxy {
        let target: SocketAddr = target.parse().unwrap_or_else(|e| panic!("proxy target {target}: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("proxy bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("proxy address: {e}"));
        let open = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let accept = tokio::spawn({
            let open = open.clone();
            let generation = generation.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    // Subscribe before looking at `open`: `cut` closes, then bumps. Either this
                    // connection sees it closed, or its subscription sees the bump. (The other
                    // order let a connection accepted during a cut survive it.)
                    let mut cut = generation.subscribe();
                    if !open.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            }
        });
        TcpProxy { addr, open, generation, accept }
    }

    /// The proxy's own address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Ends every connection through the proxy and refuses new ones until [`TcpProxy::restore`].
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Lets new connections through again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
