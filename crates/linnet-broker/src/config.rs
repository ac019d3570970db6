//! Broker configuration: serde structs whose defaults are the documented `default.toml`
//! (printed by `linnet broker --print-config`), loading from a TOML file, and validation with
//! messages that name the offending key.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The documented default configuration, printed by `--print-config`.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default.toml");

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys / wrong types.
    #[error("invalid config file {path}: {message}")]
    Parse { path: String, message: String },
    /// A key has a value the broker cannot use.
    #[error("invalid config: `{key}` {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The whole broker configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listeners: Listeners,
    pub limits: Limits,
    pub session: SessionConfig,
    pub mqtt: MqttConfig,
    pub sys: SysConfig,
    pub runtime: RuntimeConfig,
}

/// Where the broker listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listeners {
    pub tcp: Vec<SocketAddr>,
    pub ws: Vec<SocketAddr>,
    pub ws_path: String,
}

/// Resource limits; see `default.toml` for what each one means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_connections: usize,
    pub max_packet_size: u32,
    pub receive_maximum: u16,
    pub max_inflight_messages: u16,
    pub max_queued_messages: usize,
    pub max_outbound_bytes: usize,
    pub max_topic_length: usize,
    pub max_topic_levels: usize,
    pub connect_timeout: u64,
    pub max_keep_alive: u16,
}

/// Session lifetime settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub max_session_expiry_interval: u32,
}

/// Optional MQTT features, advertised to v5 clients in CONNACK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    pub retain_available: bool,
    pub maximum_qos: u8,
    pub topic_alias_maximum: u16,
    pub wildcard_subscription_available: bool,
    pub subscription_identifiers_available: bool,
    pub shared_subscription_available: bool,
}

/// `$SYS` topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SysConfig {
    pub interval: u64,
}

/// How the broker runs on the machine's cores.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Worker threads; 0 = one per core the process may run on.
    pub threads: usize,
}

impl RuntimeConfig {
    /// The most worker threads a configuration may ask for.
    pub const MAX_THREADS: usize = 1024;

    /// The worker threads to start: `threads`, or one per core available to the process
    /// (its CPU affinity, e.g. under `taskset`) when `threads` is 0.
    pub fn effective_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

fn addr(text: &str) -> SocketAddr {
    // Only called on the literal defaults below, which the tests parse.
    text.parse()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            tcp: vec![addr("0.0.0.0:1883")],
            ws: vec![addr("0.0.0.0:8083")],
            ws_path: "/mqtt".into(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 100_000,
            max_packet_size: 1_048_576,
            receive_maximum: 1024,
            max_inflight_messages: 256,
            max_queued_messages: 10_000,
            max_outbound_bytes: 4 * 1024 * 1024,
            max_topic_length: 65_535,
            max_topic_levels: 128,
            connect_timeout: 10,
            max_keep_alive: 0,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_session_expiry_interval: u32::MAX,
        }
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            retain_available: true,
            maximum_qos: 2,
            topic_alias_maximum: 65_535,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
        }
    }
}

impl Default for SysConfig {
    fn default() -> Self {
        Self { interval: 10 }
    }
}

impl Config {
    /// Parses TOML text; `origin` names the source in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_toml(&text, &shown)
    }

    /// Checks values that parse but cannot work, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.into(),
            })
        };
        if self.listeners.tcp.is_empty() && self.listeners.ws.is_empty() {
            return invalid("listeners", "must name at least one tcp or ws address");
        }
        if !self.listeners.ws_path.starts_with('/') {
            return invalid("listeners.ws_path", "must start with '/'");
        }
        let limits = &self.limits;
        if !(16..=linnet_proto::MAX_PACKET_SIZE).contains(&limits.max_packet_size) {
            return invalid(
                "limits.max_packet_size",
                "must be between 16 and 268435460 bytes",
            );
        }
        if limits.receive_maximum == 0 {
            return invalid("limits.receive_maximum", "must be at least 1");
        }
        if limits.max_inflight_messages == 0 {
            return invalid("limits.max_inflight_messages", "must be at least 1");
        }
        if limits.max_topic_length == 0 || limits.max_topic_length > 65_535 {
            return invalid("limits.max_topic_length", "must be between 1 and 65535");
        }
        if limits.max_topic_levels == 0 {
            return invalid("limits.max_topic_levels", "must be at least 1");
        }
        if limits.connect_timeout == 0 {
            return invalid("limits.connect_timeout", "must be at least 1 second");
        }
        if self.mqtt.maximum_qos > 2 {
            return invalid("mqtt.maximum_qos", "must be 0, 1 or 2");
        }
        if self.runtime.threads > RuntimeConfig::MAX_THREADS {
            return invalid(
                "runtime.threads",
                "must be between 0 (one per core) and 1024",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_defaults_equal_the_built_in_defaults() {
        let parsed = Config::from_toml(DEFAULT_CONFIG_TOML, "default.toml").unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[limits]\nmax_conections = 5\n", "x.toml").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("x.toml") && text.contains("max_conections"),
            "{text}"
        );
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn invalid_value_names_key() {
        let err = Config::from_toml("[mqtt]\nmaximum_qos = 3\n", "x.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid config: `mqtt.maximum_qos` must be 0, 1 or 2"
        );
    }

    #[test]
    fn thread_count_is_bounded_and_zero_means_one_per_core() {
        let err = Config::from_toml("[runtime]\nthreads = 5000\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("runtime.threads"), "{err}");
        let config = Config::from_toml("[runtime]\nthreads = 3\n", "x.toml").unwrap();
        assert_eq!(config.runtime.effective_threads(), 3);
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let config = Config::from_toml("[listeners]\ntcp = [\"127.0.0.1:1999\"]\n", "x").unwrap();
        assert_eq!(config.listeners.tcp, vec![addr("127.0.0.1:1999")]);
        assert_eq!(config.limits, Limits::default());
    }
}
