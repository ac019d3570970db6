//! Listeners: binds every configured TCP and WebSocket address, accepts with backoff on
//! resource errors, spawns a task per connection, and drains them on shutdown.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::{connection, sys, Broker};

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Tcp,
    WebSocket,
}

/// Binds the configured listeners and serves until [`Broker::shutdown`]; then waits (at most
/// a few seconds) for connections to say goodbye. Fails if an address cannot be bound.
pub async fn serve(broker: Broker) -> io::Result<()> {
    let mut bound = Vec::new();
    let listeners = &broker.config().listeners;
    let wanted = listeners
        .tcp
        .iter()
        .map(|a| (*a, Kind::Tcp))
        .chain(listeners.ws.iter().map(|a| (*a, Kind::WebSocket)));
    for (addr, kind) in wanted {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen on {addr} ({kind:?}): {e}"))
        })?;
        let local = listener.local_addr()?;
        match kind {
            Kind::Tcp => info!("listening for MQTT on tcp://{local}"),
            Kind::WebSocket => {
                info!(
                    "listening for MQTT over WebSocket on ws://{local}{}",
                    listeners.ws_path
                )
            }
        }
        bound.push((listener, kind));
    }
    let sys = tokio::spawn(sys::run(broker.clone()));
    let mut tasks = Vec::new();
    for (listener, kind) in bound {
        tasks.push(tokio::spawn(accept_loop(broker.clone(), listener, kind)));
    }
    let mut shutdown = broker.shutdown_signal();
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    for task in &tasks {
        task.abort();
    }
    sys.abort();
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

/// Accepts connections on one listener until aborted.
async fn accept_loop(broker: Broker, listener: TcpListener, kind: Kind) {
    let mut backoff = Duration::from_millis(5);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                tokio::spawn(handle(broker.clone(), stream, peer, kind));
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

async fn handle(broker: Broker, stream: TcpStream, peer: SocketAddr, kind: Kind) {
    let _ = stream.set_nodelay(true);
    match kind {
        Kind::Tcp => connection::run(broker, stream, peer).await,
        Kind::WebSocket => {
            let path = broker.config().listeners.ws_path.clone();
            match crate::ws::accept(stream, &path).await {
                Ok(ws) => connection::run(broker, ws, peer).await,
                Err(error) => debug!(%peer, "WebSocket handshake failed: {error}"),
            }
        }
    }
}
