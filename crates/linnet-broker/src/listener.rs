//! Listeners: binds every configured TCP and WebSocket address, accepts with backoff on
//! resource errors, spawns a task per connection, and drains them on shutdown.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::transport::Tcp;
use crate::{connection, keep_alive, sys, Broker};

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    WebSocket,
}

/// Listeners bound to their addresses but not yet accepting.
#[derive(Debug)]
pub struct Bound {
    broker: Broker,
    listeners: Vec<(TcpListener, Kind)>,
}

/// Binds every configured TCP and WebSocket address; fails naming the address that cannot
/// be bound.
pub async fn bind(broker: Broker) -> io::Result<Bound> {
    let mut listeners = Vec::new();
    let config = &broker.config().listeners;
    let wanted = config
        .tcp
        .iter()
        .map(|a| (*a, Kind::Tcp))
        .chain(config.ws.iter().map(|a| (*a, Kind::WebSocket)));
    for (addr, kind) in wanted {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen on {addr} ({kind:?}): {e}"))
        })?;
        // MQTT and WebSocket clients speak first (CONNECT, or the HTTP upgrade).
        if let Err(error) = defer_accept(&listener) {
            debug!("TCP_DEFER_ACCEPT not set on {addr}: {error}");
        }
        listeners.push((listener, kind));
    }
    Ok(Bound { broker, listeners })
}

impl Bound {
    /// The bound TCP addresses (useful when the configuration asked for port 0).
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.addrs(Kind::Tcp)
    }

    /// The bound WebSocket addresses.
    pub fn ws_addrs(&self) -> Vec<SocketAddr> {
        self.addrs(Kind::WebSocket)
    }

    fn addrs(&self, wanted: Kind) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|(_, kind)| *kind == wanted)
            .filter_map(|(listener, _)| listener.local_addr().ok())
            .collect()
    }

    /// Accepts connections until [`Broker::shutdown`]; then waits (at most five seconds)
    /// for connections to say goodbye.
    pub async fn serve(self) -> io::Result<()> {
        let broker = self.broker;
        let ws_path = broker.config().listeners.ws_path.clone();
        let mut tasks = Vec::new();
        for (listener, kind) in self.listeners {
            let local = listener.local_addr()?;
            match kind {
                Kind::Tcp => info!("listening for MQTT on tcp://{local}"),
                Kind::WebSocket => {
                    info!("listening for MQTT over WebSocket on ws://{local}{ws_path}")
                }
            }
            tasks.push(tokio::spawn(accept_loop(broker.clone(), listener, kind)));
        }
        tasks.push(tokio::spawn(sys::run(broker.clone())));
        tasks.push(tokio::spawn(keep_alive::run(broker.clone())));
        let mut shutdown = broker.shutdown_signal();
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
        for task in &tasks {
            task.abort();
        }
        // Connections see the same signal and close with DISCONNECT 0x8B; give them time.
        let stats = broker.stats();
        for _ in 0..100 {
            if stats.clients_connected.load(Ordering::Relaxed) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

/// Binds the configured listeners and serves until [`Broker::shutdown`].
pub async fn serve(broker: Broker) -> io::Result<()> {
    bind(broker).await?.serve().await
}

/// Accepts connections on one listener until aborted.
async fn accept_loop(broker: Broker, listener: TcpListener, kind: Kind) {
    let mut backoff = Duration::from_millis(5);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                spawn_connection(broker.clone(), stream, peer, kind);
            }
            Err(error) => {
                // Usually out of file descriptors: wait instead of spinning.
                warn!("accept failed: {error}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// One task per connection. A TCP connection's task is the connection future itself (no
/// wrapper: its size is every idle connection's cost); the WebSocket handshake and state are
/// far larger and go behind a box.
fn spawn_connection(broker: Broker, stream: TcpStream, peer: SocketAddr, kind: Kind) {
    let _ = stream.set_nodelay(true);
    match kind {
        Kind::Tcp => {
            tokio::spawn(connection::run(broker, Tcp::new(stream), peer));
        }
        Kind::WebSocket => {
            tokio::spawn(Box::pin(async move {
                let path = broker.config().listeners.ws_path.clone();
                // The CONNECT timeout covers the HTTP upgrade too: a client that never
                // finishes it is not held.
                let limit = Duration::from_secs(broker.config().limits.connect_timeout);
                match tokio::time::timeout(limit, crate::ws::accept(stream, &path)).await {
                    Ok(Ok(ws)) => connection::run(broker, ws, peer).await,
                    Ok(Err(error)) => debug!(%peer, "WebSocket handshake failed: {error}"),
                    Err(_) => debug!(%peer, "no WebSocket upgrade within {limit:?}; closing"),
                }
            }));
        }
    }
}

/// Asks the kernel to hand over a connection only once its first bytes have arrived (Linux
/// `TCP_DEFER_ACCEPT`): the accept and the read of CONNECT then take one wake-up instead of
/// two. Measured with `scripts/conn-cpu` and the `conn` case of `linnet bench compare`: the
/// broker sleeps and is woken at most a quarter as often per connection, its CPU per connection
/// fell from 37 to 31 us, and connects/s rose from 0.93 to 1.00 of Mosquitto's on the
/// load-bound 2-core machine (BENCHMARKS.md). One second: a client's first bytes follow its
/// handshake at once, and one that sends nothing is handed over after the kernel's first
/// SYN-ACK retransmission (about a second), when the CONNECT timeout starts as before.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn defer_accept(listener: &TcpListener) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let seconds: libc::c_int = 1;
    // SAFETY: the descriptor is the listener's own and open for this call's duration (the
    // borrow keeps `listener` alive); the value pointer and length describe a live `c_int`,
    // which is what TCP_DEFER_ACCEPT reads. No memory is retained by the kernel.
    let result = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&seconds as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn defer_accept(_listener: &TcpListener) -> io::Result<()> {
    Ok(())
}
