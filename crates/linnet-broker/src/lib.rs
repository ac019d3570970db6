//! `linnet-broker`: the Linnet MQTT broker as a library.
//!
//! [`Broker`] owns the shared state (session registry, subscription router, retained
//! messages, counters); [`serve`] runs the configured TCP and WebSocket listeners until a
//! shutdown signal, each connection in its own task (`connection`). Persistence and
//! authentication attach through the seams in `store` (and, later, an auth module).

pub mod config;
mod connection;
mod keep_alive;
mod listener;
mod message;
pub mod router;
mod routing;
mod session;
pub mod store;
mod sys;
mod transport;
mod ws;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytestring::ByteString;
use tokio::sync::watch;

pub use config::{Config, ConfigError};
pub use listener::{bind, serve, Bound};
pub use message::Message;

use router::Router;
use session::Session;

/// Counters behind `$SYS/broker/...`; relaxed atomics, read only for reporting.
#[derive(Debug, Default)]
pub struct Stats {
    pub clients_connected: AtomicUsize,
    pub clients_total: AtomicUsize,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub messages_dropped: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub publish_received: AtomicU64,
    pub publish_sent: AtomicU64,
}

/// The broker's shared state. Cloning the handle is cheap.
#[derive(Debug, Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    started: Instant,
    /// Client id -> session. Held only to look up, insert or remove, never across `.await`.
    sessions: Mutex<HashMap<ByteString, Arc<Session>>>,
    /// Every subscription. Read on each PUBLISH, written on SUBSCRIBE / UNSUBSCRIBE.
    /// Lock order: router before any session's state, never the other way round.
    router: RwLock<Router<Arc<Session>>>,
    /// Topic -> retained message.
    retained: RwLock<HashMap<ByteString, Arc<Message>>>,
    stats: Stats,
    /// Told every durable state change.
    store: Arc<dyn store::Store>,
    next_session_id: AtomicU64,
    next_generation: AtomicU64,
    shutdown: watch::Sender<bool>,
    /// Set once by [`Broker::shutdown`]; connections check it when woken (a flag and their
    /// session's wake-up, not a watch receiver each, keeps idle connections small).
    shutting_down: AtomicBool,
    /// Keep alive of every connection, and the broker's coarse clock.
    keep_alive: keep_alive::Wheel,
}

impl Broker {
    /// A broker with `config` and no persistence; nothing listens until [`serve`] runs.
    pub fn new(config: Config) -> Self {
        Self::with_store(config, Arc::new(store::InMemory))
    }

    /// A broker that reports durable state changes to `store`.
    pub fn with_store(config: Config, store: Arc<dyn store::Store>) -> Self {
        let (shutdown, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                config,
                started: Instant::now(),
                sessions: Mutex::new(HashMap::new()),
                router: RwLock::new(Router::default()),
                retained: RwLock::new(HashMap::new()),
                stats: Stats::default(),
                store,
                next_session_id: AtomicU64::new(1),
                next_generation: AtomicU64::new(1),
                shutdown,
                shutting_down: AtomicBool::new(false),
                keep_alive: keep_alive::Wheel::default(),
            }),
        }
    }

    /// The configuration the broker runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Live counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Asks every listener and connection to stop: v5 clients get DISCONNECT 0x8B.
    pub fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        self.inner.shutdown.send_replace(true);
        // Connected sessions hear it through their wake-up; one that is between wake-ups
        // keeps the permit and sees the flag on its next turn.
        for session in lock(&self.inner.sessions).values() {
            session.wake.notify_one();
        }
    }

    /// True once [`Broker::shutdown`] was called.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Relaxed)
    }

    fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Number of subscriptions in the router.
    pub fn subscription_count(&self) -> usize {
        read(&self.inner.router).len()
    }

    /// Number of retained messages.
    pub fn retained_count(&self) -> usize {
        read(&self.inner.retained).len()
    }

    /// Number of sessions, connected or not.
    pub fn session_count(&self) -> usize {
        lock(&self.inner.sessions).len()
    }

    fn next_session_id(&self) -> u64 {
        self.inner.next_session_id.fetch_add(1, Ordering::Relaxed)
    }

    /// When the broker started: a fixed instant, for code that needs one but no clock.
    fn started(&self) -> Instant {
        self.inner.started
    }

    /// The keep-alive sweep's clock now.
    fn tick(&self) -> u32 {
        self.inner.keep_alive.now()
    }

    fn next_generation(&self) -> u64 {
        self.inner.next_generation.fetch_add(1, Ordering::Relaxed)
    }
}

/// Locks a mutex, ignoring poisoning: every critical section leaves the data consistent
/// before anything that could panic, and a panic in one connection must not stop the rest.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
