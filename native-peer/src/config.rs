//! Peer configuration with documented defaults. The binary fills it from flags and
//! environment variables; tests build it directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use multiverse_core::ids::RoomId;
use multiverse_core::session::SessionConfig;

/// Everything a peer needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on. Default `0.0.0.0:8080`: reachable from the LAN, which is the
    /// point of a peer. Tests use `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// Where the peer keeps its identity, session key and store. Default `./data`.
    pub data_dir: PathBuf,
    /// The name shown to clients and other peers. Default: the host name.
    pub name: String,
    /// The trunk-built web client. Default `./dist`.
    pub dist_dir: PathBuf,
    /// The room printed in the start-up links. Default `sandbox`.
    pub default_room: RoomId,
    /// Handshake and protocol-discipline tunables for client sessions.
    pub session: SessionConfig,
    /// Folder of extra templates (`<name>/manifest.json` + `entities.json`). Default
    /// `./worlds`; a missing folder just means no extra templates.
    pub templates_dir: PathBuf,
    /// How often open worlds are saved. Default 30 s.
    pub autosave: Duration,
    /// How long an anonymous user's world may sit unused before it is deleted. Default 24 h.
    pub anonymous_ttl: Duration,
    /// Peers to link to at start-up (`ws://host:port/peer`), kept dialled.
    pub peers: Vec<String>,
    /// The UDP port voice and video use, on the listener's address. `None`: the same number
    /// as the HTTP port (any free port when that is 0).
    pub voice_port: Option<u16>,
    /// The TCP port of a second listener serving the same pages over HTTPS, on the listener's
    /// address, with a self-signed certificate kept in `<data dir>/tls/`. Browsers give the
    /// microphone only to secure contexts (https, or localhost), so visitors from other
    /// devices need it for voice. `Some(0)`: any free port. Default `None`: no HTTPS (the
    /// binary turns it on at 8443).
    pub https_port: Option<u16>,
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
            templates_dir: PathBuf::from("worlds"),
            autosave: Duration::from_secs(30),
            anonymous_ttl: Duration::from_secs(24 * 3600),
            peers: Vec::new(),
            voice_port: None,
            https_port: None,
        }
    }

    /// Sets the templates folder.
    pub fn with_templates_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.templates_dir = dir.into();
        self
    }

    /// Sets the autosave interval and the anonymous-world time to live.
    pub fn with_world_timers(mut self, autosave: Duration, anonymous_ttl: Duration) -> Self {
        self.autosave = autosave;
        self.anonymous_ttl = anonymous_ttl;
        self
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

    /// Serves HTTPS too, on `port` of the listener's address (0: any free port).
    pub fn with_https_port(mut self, port: u16) -> Self {
        self.https_port = Some(port);
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
    crate::links::host_name().unwrap_or_else(|| "multiverse".to_owned())
}
