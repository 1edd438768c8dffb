//! The peer under test as its own process (the release binary `cargo bench` builds), so the
//! clients' work is not counted as the peer's, and its CPU time from /proc.
#![allow(dead_code)]

/// The peer under test, as its own process (so the clients' work is not counted as the peer's).
pub struct PeerProcess(std::process::Child);

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the release peer binary on 127.0.0.1 with an ephemeral port; returns its address.
pub fn start_peer(data_dir: &std::path::Path) -> (PeerProcess, std::net::SocketAddr) {
    use std::io::BufRead;
    let dir = data_dir.to_str().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_multiverse-peer"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            dir,
            "--dist",
            dir,
            "--log",
            "warn",
        ])
        .stdout(std::process::Stdio::piped())
        .envs(
            std::env::var("BENCH_PEER_THREADS")
                .ok()
                .map(|n| ("TOKIO_WORKER_THREADS", n)),
        )
        .spawn()
        .expect("start the peer binary");
    let stdout = child.stdout.take().unwrap();
    let child = PeerProcess(child);
    let mut lines = std::io::BufReader::new(stdout).lines();
    for line in lines.by_ref().take(20) {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("http://") {
            let addr = rest.split('/').next().unwrap().parse().unwrap();
            // Keep reading so the peer's later output (warnings) never meets a closed pipe.
            std::thread::spawn(move || {
                lines
                    .map_while(Result::ok)
                    .for_each(|l| eprintln!("[peer] {l}"))
            });
            return (child, addr);
        }
    }
    panic!("the peer printed no room link");
}

impl PeerProcess {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// CPU time (user + system) the peer has used so far, from /proc/<pid>/stat.
    pub fn cpu_time(&self) -> std::time::Duration {
        cpu_time_of(self.pid())
    }
}

/// CPU time (user + system) used by process `pid` (Linux: fields 14 and 15 of
/// /proc/<pid>/stat, in clock ticks of 1/100 s).
pub fn cpu_time_of(pid: u32) -> std::time::Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields[11] + fields[12];
    std::time::Duration::from_millis(ticks * 10)
}
