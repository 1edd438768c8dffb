//! CPU cost of forwarding voice: 20 participants in one room, each publishing Opus frames
//! every 20 ms through the peer's SFU on loopback (a bench binary).
//!
//! ```sh
//! cargo bench -p multiverse-peer --bench voice
//! ```
//!
//! The peer is the release binary in its own process, so its CPU time (from /proc) is the
//! forwarder's alone; the participants are str0m clients in this process. Two layouts:
//! - **together**: every avatar near the centre, so every member hears the 19 others
//!   (20 × 19 = 380 audio streams);
//! - **groups of 5**: the members walk to four corners of the world, so each hears only its
//!   4 neighbours (80 streams): the hearing sets cut the work.
//!
//! Reported: frames forwarded per second, the peer's CPU as a share of one core, and the CPU
//! per forwarded stream and per frame. `BENCH_PARTICIPANTS=n` changes the room size;
//! `BENCH_SECONDS=n` the measuring window (default 5 s; three windows per layout, median
//! reported).

#[path = "../tests/voice/client.rs"]
#[allow(dead_code)]
mod client;
#[path = "support/peer_process.rs"]
mod peer_process;

use std::time::{Duration, Instant};

use client::VoiceClient;
use multiverse_core::room::AccessPolicy;
use multiverse_core::universe::Vec2;
use multiverse_core::wire::ClientMessage;

const PARTICIPANTS: usize = 20;
const GROUP: usize = 5;
const WAIT: Duration = Duration::from_secs(30);
/// Measuring windows per layout (the median is reported: this VM's neighbours are noisy).
const WINDOWS: usize = 3;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A counter from the peer's `/metrics`.
async fn metric(addr: std::net::SocketAddr, name: &str) -> u64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Measures the peer over `window` while the members keep talking.
async fn measure(
    label: &str,
    peer: &peer_process::PeerProcess,
    addr: std::net::SocketAddr,
    members: &[VoiceClient],
    streams: usize,
    window: Duration,
) -> f64 {
    let forwarded = "multiverse_voice_frames_forwarded_total";
    let datagrams = "multiverse_voice_datagrams_received_total";
    let datagrams0 = metric(addr, datagrams).await;
    let (cpu0, frames0, at0) = (
        peer.cpu_time(),
        metric(addr, forwarded).await,
        Instant::now(),
    );
    let me = std::process::id();
    let clients0 = peer_process::cpu_time_of(me);
    let received0: u64 = members.iter().map(total_received).sum();
    tokio::time::sleep(window).await;
    let elapsed = at0.elapsed().as_secs_f64();
    let cpu = (peer.cpu_time() - cpu0).as_secs_f64();
    let frames = (metric(addr, forwarded).await - frames0) as f64;
    let inbound = (metric(addr, datagrams).await - datagrams0) as f64;
    let received = (members.iter().map(total_received).sum::<u64>() - received0) as f64;
    let clients = (peer_process::cpu_time_of(me) - clients0).as_secs_f64();
    let core_share = 100.0 * cpu / elapsed;
    println!(
        "{label:<14} | {streams:>7} | {:>8.0} | {:>10.0} | {:>10.0} | {core_share:>8.1} % | {:>9.3} % | {:>8.1} µs | {:>8.0} %",
        inbound / elapsed,
        frames / elapsed,
        received / elapsed,
        core_share / streams as f64,
        1e6 * cpu / frames.max(1.0),
        100.0 * clients / elapsed,
    );
    core_share
}

/// Measures `WINDOWS` times and prints the median of the peer's CPU share.
async fn measure_all(
    label: &str,
    peer: &peer_process::PeerProcess,
    addr: std::net::SocketAddr,
    members: &[VoiceClient],
    streams: usize,
    window: Duration,
) {
    let mut shares = Vec::new();
    for i in 1..=WINDOWS {
        let label = format!("{label} #{i}");
        shares.push(measure(&label, peer, addr, members, streams, window).await);
    }
    shares.sort_by(f64::total_cmp);
    let median = shares[shares.len() / 2];
    println!(
        "{label}: median peer CPU {median:.1} % of one core for {streams} streams = {:.3} % per stream",
        median / streams as f64
    );
}

fn total_received(member: &VoiceClient) -> u64 {
    member.seen.lock().unwrap().frames_from.values().sum()
}

#[tokio::main]
async fn main() {
    let n = env_or("BENCH_PARTICIPANTS", PARTICIPANTS).clamp(2, 200);
    let window = Duration::from_secs(env_or("BENCH_SECONDS", 5) as u64);
    let dir = tempfile::tempdir().unwrap();
    let (peer, addr) = peer_process::start_peer(dir.path());
    let mut members = Vec::with_capacity(n);
    for i in 0..n {
        members.push(VoiceClient::join(addr, 1000 + i as u128, "voice-bench").await);
        if i == 0 {
            // The first member owns the room: make room for everyone (16 by default).
            let configure = ClientMessage::ConfigureRoom {
                access: AccessPolicy::Public,
                max_players: 256,
                multiplayer: true,
            };
            members[0].send(configure).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    for m in &members {
        m.wait_for(WAIT, "everyone in earshot", |s| {
            s.connected && s.hearing.len() == n - 1
        })
        .await;
    }
    // Every line negotiated and carrying frames before measuring.
    for m in &members {
        let others: Vec<u64> = members
            .iter()
            .map(|o| o.member)
            .filter(|o| *o != m.member)
            .collect();
        m.wait_for(WAIT, "frames from everyone", |s| {
            others
                .iter()
                .all(|o| s.frames_from.get(o).is_some_and(|f| *f > 10))
        })
        .await;
    }
    println!(
        "{n} participants, Opus frames every 20 ms each, {} s windows, peer pid {}",
        window.as_secs(),
        peer.pid()
    );
    println!(
        "{:<14} | {:>7} | {:>8} | {:>10} | {:>10} | {:>10} | {:>11} | {:>11} | {:>10}",
        "layout",
        "streams",
        "in/s",
        "fwd/s",
        "recv/s",
        "peer CPU",
        "per stream",
        "per frame",
        "clients CPU"
    );
    measure_all("together", &peer, addr, &members, n * (n - 1), window).await;

    // Groups of GROUP walk to the corners (and further groups along the edges).
    let spots = [
        Vec2::new(60.0, 60.0),
        Vec2::new(940.0, 60.0),
        Vec2::new(60.0, 940.0),
        Vec2::new(940.0, 940.0),
        Vec2::new(500.0, 60.0),
        Vec2::new(500.0, 940.0),
        Vec2::new(60.0, 500.0),
        Vec2::new(940.0, 500.0),
    ];
    let groups = n.div_ceil(GROUP);
    for (i, m) in members.iter().enumerate() {
        let spot = spots[(i / GROUP) % spots.len()];
        let to = Vec2::new(spot.x + (i % GROUP) as f32 * 8.0, spot.y);
        m.send(ClientMessage::MoveAvatar { to }).await;
    }
    let streams: usize = (0..groups)
        .map(|g| {
            let size = GROUP.min(n - g * GROUP);
            size * (size - 1)
        })
        .sum();
    for (i, m) in members.iter().enumerate() {
        let size = GROUP.min(n - (i / GROUP) * GROUP);
        m.wait_for(WAIT, "only the group in earshot", |s| {
            s.hearing.len() == size - 1
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    measure_all("groups of 5", &peer, addr, &members, streams, window).await;
    for m in members {
        m.stop().await;
    }
}
