//! `multiverse-peer`: host universes and rooms on your LAN.
//!
//! Parses flags (each also an environment variable), starts the peer, prints a room link per
//! address (plain http first, then https) and runs until Ctrl-C or SIGTERM. Everything else
//! lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use multiverse_core::ids::RoomId;
use multiverse_peer::Config;
use tracing_subscriber::EnvFilter;

/// Host a Multiverse peer: serves the web client and rooms to everyone on your LAN.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on; 0.0.0.0 makes the peer reachable from the LAN.
    #[arg(long, env = "MULTIVERSE_BIND", default_value = "0.0.0.0:8080")]
    bind: SocketAddr,
    /// Folder for the peer's identity and data.
    #[arg(long, env = "MULTIVERSE_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Name shown to visitors and other peers [default: host name].
    #[arg(long, env = "MULTIVERSE_NAME")]
    name: Option<String>,
    /// Folder of the trunk-built web client.
    #[arg(long, env = "MULTIVERSE_DIST", default_value = "dist")]
    dist: PathBuf,
    /// Room whose links are printed at start-up.
    #[arg(long, env = "MULTIVERSE_ROOM", default_value = "sandbox")]
    room: String,
    /// Folder of extra world templates (`<name>/manifest.json` + `entities.json`).
    #[arg(long, env = "MULTIVERSE_TEMPLATES", default_value = "worlds")]
    templates: PathBuf,
    /// Seconds between automatic saves of open worlds.
    #[arg(long, env = "MULTIVERSE_AUTOSAVE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    autosave_secs: u64,
    /// Hours an anonymous user's world may sit unused before it is deleted.
    #[arg(long, env = "MULTIVERSE_ANONYMOUS_TTL_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..))]
    anonymous_ttl_hours: u64,
    /// Another peer to link to, e.g. ws://192.168.1.21:8080 (repeatable); kept connected.
    #[arg(long = "peer", env = "MULTIVERSE_PEERS", value_delimiter = ',')]
    peers: Vec<String>,
    /// UDP port for voice and video (WebRTC media), on the --bind address. Default: the
    /// same number as the HTTP port.
    #[arg(long, env = "MULTIVERSE_VOICE_PORT")]
    voice_port: Option<u16>,
    /// TCP port for HTTPS with a self-signed certificate, on the --bind address: browsers on
    /// other devices give the microphone only to https pages. 0 picks any free port.
    /// [default: 8443, or 0 when the --bind port is 0]
    #[arg(long, env = "MULTIVERSE_HTTPS_PORT")]
    https_port: Option<u16>,
    /// Serve plain HTTP only, without the HTTPS listener (env: 1, true, yes or on).
    #[arg(long, env = "MULTIVERSE_NO_HTTPS", value_parser = clap::builder::BoolishValueParser::new())]
    no_https: bool,
    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "multiverse_peer=debug".
    #[arg(long, env = "MULTIVERSE_LOG", default_value = "info")]
    log: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).context("invalid --log filter")?)
        .init();
    let mut config = Config::new(&cli.data_dir)
        .with_bind(cli.bind)
        .with_dist_dir(&cli.dist)
        .with_templates_dir(&cli.templates)
        .with_world_timers(
            Duration::from_secs(cli.autosave_secs),
            Duration::from_secs(cli.anonymous_ttl_hours * 3600),
        );
    config.https_port = https_port(&cli);
    if let Some(name) = cli.name {
        config = config.with_name(name);
    }
    config.voice_port = cli.voice_port;
    config.default_room = RoomId::new(&cli.room).context("invalid --room")?;
    for peer in &cli.peers {
        let address = multiverse_peer::federation::peer_address(peer)
            .map_err(anyhow::Error::msg)
            .context("invalid --peer")?;
        config.peers.push(address);
    }
    let name = config.name.clone();
    let peer = multiverse_peer::bind(config).await?;
    println!(
        "Multiverse peer \"{name}\" ({}) is up. Open a room:",
        peer.peer_id()
    );
    // Scripts and tests take the first `http://` line as the peer's address: plain links first.
    for link in peer.room_links() {
        println!("  {link}");
    }
    let https_links = peer.https_room_links();
    if !https_links.is_empty() {
        println!("To talk from other devices (accept the self-signed certificate once):");
        for link in https_links {
            println!("  {link}");
        }
    }
    println!("Press Ctrl-C to stop.");
    peer.serve(shutdown_signal()).await?;
    println!("Stopped.");
    Ok(())
}

/// The HTTPS port asked for: none with --no-https, else --https-port, else 8443 (or any free
/// port when the HTTP port is 0 too, so that peers started for tests never collide on 8443).
fn https_port(cli: &Cli) -> Option<u16> {
    if cli.no_https {
        return None;
    }
    let default = if cli.bind.port() == 0 { 0 } else { 8443 };
    Some(cli.https_port.unwrap_or(default))
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
