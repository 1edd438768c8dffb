//! Peer configuration with documented defaults. The binary fills it from flags and
//! environment variables; tests build it directly.

use std::net::SocketAddr;
use std::path::PathBuf;

use multiverse_core::ids::RoomId;
use multiverse_core::session::SessionConfig;

/// Everything a peer needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on. Default `0.0.0.0:8080`: reachable from the LAN, which is the
    /// point of a peer. Tests use `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// Where the peer keeps its identity and (later) its store. Default `./data`.
    pub data_dir: PathBuf,
    /// The name shown to clients and other peers. Default: the host name.
    pub name: String,
    /// The trunk-built web client. Default `./dist`.
    pub dist_dir: PathBuf,
    /// The room printed in the start-up links. Default `sandbox`.
    pub default_room: RoomId,
    /// Handshake and protocol-discipline tunables for client sessions.
    pub session: SessionConfig,
}

impl Config {
    /// Defaults for everything, with data kept in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            bind: SocketAddr::from(([0, 0, 0, 0], 8080)),
            data_dir: data_dir.into(),
            name: default_name(),
            dist_dir: PathBuf::from("dist"),
            default_room: RoomId::new("sandbox").expect("a valid room id"),
            session: SessionConfig::default(),
        }
    }

    /// Sets the listen address.
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    /// Sets the peer's display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the folder of the built web client.
    pub fn with_dist_dir(mut self, dist: impl Into<PathBuf>) -> Self {
        self.dist_dir = dist.into();
        self
    }
}

/// The host name, or "multiverse" when it cannot be read.
fn default_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "multiverse".to_owned())
}
