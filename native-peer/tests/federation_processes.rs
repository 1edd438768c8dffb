//! Federation between two real peer processes on 127.0.0.1: the link comes up both ways, a
//! transfer round trip, kill -9 of either peer in the middle of transfers (every entity must
//! exist exactly once afterwards), and heartbeats noticing a stopped peer.
//!
//! Entities cross through a passage A.sandbox → B.sandbox (participate, full interaction)
//! that the transfer tests open first; without it, transfers are refused.
//!
//! Each test starts its own pair of `multiverse-peer` binaries (`A` dials `B` with `--peer`)
//! in a temp dir, on fixed loopback ports picked at start so a restarted peer listens where
//! the other side's dialler looks for it. Every child is killed and reaped when its guard
//! drops, also when a test panics. Every wait is bounded in time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The tests; this file is the harness they share (processes, HTTP, the pair of peers).
#[path = "federation_processes/cases.rs"]
mod cases;

const BIN: &str = env!("CARGO_BIN_EXE_multiverse-peer");
/// Entities of a fresh demo sandbox (slots 0..300, generation 0).
const SANDBOX: u64 = 300;
/// Transfers started per kill round.
const BURST: u32 = 50;

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Forwards a child's output to the test's stderr (captured unless `--nocapture`), line by
/// line, sending the first room link on `link`. Ends when the child's pipe closes.
fn forward(name: &'static str, out: impl Read + Send + 'static, link: Option<mpsc::Sender<()>>) {
    std::thread::spawn(move || {
        let mut link = link;
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.trim().starts_with("http://") {
                if let Some(tx) = link.take() {
                    let _ = tx.send(());
                }
            }
            eprintln!("[{name}] {line}");
        }
    });
}

/// One peer process that can be killed and started again on the same port and data dir.
struct PeerProcess {
    name: &'static str,
    port: u16,
    data: PathBuf,
    /// The port of the peer this one dials, if any.
    dial: Option<u16>,
    child: Option<Child>,
}

impl PeerProcess {
    fn new(name: &'static str, root: &Path, dial: Option<u16>) -> PeerProcess {
        let data = root.join(name);
        std::fs::create_dir_all(&data).expect("data dir");
        std::fs::write(data.join("index.html"), "<html>test</html>").expect("index.html");
        PeerProcess {
            name,
            port: free_port(),
            data,
            dial,
            child: None,
        }
    }

    /// Starts the binary and waits until it prints its room link (it is then listening).
    /// Retries for a few seconds when the port is momentarily busy (the child exits early).
    fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let started = Instant::now();
        for _attempt in 0..40 {
            let dir = self.data.to_str().expect("utf-8 temp path");
            let mut command = Command::new(BIN);
            command
                .args(["--bind", &format!("127.0.0.1:{}", self.port)])
                .args(["--data-dir", dir, "--dist", dir, "--templates", dir])
                .args(["--name", self.name, "--log", "warn"])
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if let Some(port) = self.dial {
                command.args(["--peer", &format!("ws://127.0.0.1:{port}")]);
            }
            let mut child = command.spawn().expect("start the peer binary");
            let (tx, rx) = mpsc::channel();
            forward(self.name, child.stdout.take().expect("stdout"), Some(tx));
            forward(self.name, child.stderr.take().expect("stderr"), None);
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(()) => {
                    self.child = Some(child);
                    return;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Exited without a link (the port is still held): reap, wait, try again.
                    let _ = child.kill();
                    let status = child.wait().expect("reap");
                    eprintln!("[test] {} exited at start ({status}); retrying", self.name);
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{} printed no room link within 20 s", self.name);
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{} could not start on port {} within 15 s",
                self.name,
                self.port
            );
        }
        panic!("{} could not start on port {}", self.name, self.port);
    }

    /// SIGKILL, and reap: no goodbye, no save.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to this child only, by its pid.
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A small HTTP client on its own single-threaded runtime (the tests themselves are plain
/// threads, so children can be started and killed synchronously).
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Http {
        Http {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            client: client(),
        }
    }

    /// `GET` as JSON; `None` while the peer is down or answers something else.
    fn get(&self, port: u16, path: &str) -> Option<Value> {
        self.rt.block_on(get(&self.client, port, path))
    }

    fn post(&self, port: u16, path: &str, body: &Value) -> Option<(u16, Value)> {
        self.rt.block_on(post(&self.client, port, path, body))
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

async fn get(client: &reqwest::Client, port: u16, path: &str) -> Option<Value> {
    let response = client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    serde_json::from_str(&response.text().await.ok()?).ok()
}

async fn post(
    client: &reqwest::Client,
    port: u16,
    path: &str,
    body: &Value,
) -> Option<(u16, Value)> {
    let response = client
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let text = response.text().await.ok()?;
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Polls `check` every 50 ms until it returns `Ok`, for at most `limit`; panics with the last
/// `Err` (what was seen) otherwise. Returns the value and how long it took.
fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> (T, Duration) {
    let started = Instant::now();
    let mut last = String::new();
    for _ in 0..100_000 {
        match check() {
            Ok(v) => return (v, started.elapsed()),
            Err(seen) => last = seen,
        }
        if started.elapsed() > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {limit:?} waiting for {what}; last seen: {last}");
}

/// `(entities, transfers_out, transfers_in)` of one universe.
type Counts = (u64, u64, u64);

/// Every listed universe of a peer by name: id and counts.
fn universes(http: &Http, port: u16) -> Result<BTreeMap<String, (String, Counts)>, String> {
    let list = http
        .get(port, "/api/universes")
        .ok_or("no answer from /api/universes")?;
    let mut out = BTreeMap::new();
    for u in list.as_array().ok_or("not a list")? {
        let id = u["id"].as_str().ok_or("no id")?.to_owned();
        let stats = http
            .get(port, &format!("/api/universes/{id}"))
            .ok_or("no answer from /api/universes/{id}")?;
        let n = |v: &Value| v.as_u64().ok_or_else(|| format!("bad stats {stats}"));
        let counts = (
            n(&stats["info"]["entities"])?,
            n(&stats["transfers_out"])?,
            n(&stats["transfers_in"])?,
        );
        out.insert(
            u["name"].as_str().ok_or("no name")?.to_owned(),
            (id, counts),
        );
    }
    Ok(out)
}

/// The one live link of a peer, if it lists `universes` universes of the other side.
fn link(http: &Http, port: u16, other: &str, universes: usize) -> Result<Value, String> {
    let peers = http.get(port, "/api/peers").ok_or("no answer")?;
    let links = peers["links"].as_array().ok_or("no links")?;
    match links.as_slice() {
        [one]
            if one["peer_id"] == other
                && one["universes"].as_array().map(Vec::len) == Some(universes) =>
        {
            Ok(peers)
        }
        _ => Err(peers.to_string()),
    }
}

/// Two linked peers: `A` dials `B`.
struct Pair {
    http: Http,
    a: PeerProcess,
    b: PeerProcess,
    a_id: String,
    b_id: String,
    /// Universes by name on each side, as at start.
    a_start: BTreeMap<String, (String, Counts)>,
    b_start: BTreeMap<String, (String, Counts)>,
    // Last: the children above are reaped before their data dirs go.
    _dir: tempfile::TempDir,
}

impl Pair {
    fn start() -> Pair {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut b = PeerProcess::new("B", dir.path(), None);
        let mut a = PeerProcess::new("A", dir.path(), Some(b.port));
        b.start();
        a.start();
        let http = Http::new();
        let id = |port| {
            http.get(port, "/api/peers").expect("peers")["peer_id"]
                .as_str()
                .expect("peer id")
                .to_owned()
        };
        let (a_id, b_id) = (id(a.port), id(b.port));
        let mut pair = Pair {
            a_start: universes(&http, a.port).expect("A's universes"),
            b_start: universes(&http, b.port).expect("B's universes"),
            http,
            a,
            b,
            a_id,
            b_id,
            _dir: dir,
        };
        pair.wait_linked(Duration::from_secs(15));
        pair.a_start = universes(&pair.http, pair.a.port).expect("A's universes");
        pair.b_start = universes(&pair.http, pair.b.port).expect("B's universes");
        for side in [&pair.a_start, &pair.b_start] {
            assert_eq!(side.len(), 3, "three demo universes: {side:?}");
            assert_eq!(side["sandbox"].1, (SANDBOX, 0, 0), "a fresh sandbox");
        }
        pair
    }

    /// Waits until each side has a link to the other listing its three universes.
    fn wait_linked(&self, limit: Duration) -> Duration {
        let (a, b) = (self.a.port, self.b.port);
        eventually("the link both ways", limit, || {
            link(&self.http, a, &self.b_id, 3)?;
            link(&self.http, b, &self.a_id, 3)?;
            Ok(())
        })
        .1
    }

    /// Opens a passage A.sandbox → B.sandbox that lets entities cross (participate, full
    /// interaction) and waits until both ends show it connected; answers its id.
    fn open_passage(&self) -> String {
        let (from, to) = self.sandboxes();
        let ask = json!({"from_universe": from, "to_universe": to, "view": "participate", "interaction": "full"});
        let (status, body) = self
            .http
            .post(self.a.port, "/api/passages", &ask)
            .expect("A answers");
        assert_eq!(status, 202, "{body}");
        let id = body["passage"].as_str().expect("a passage id").to_owned();
        self.wait_passage(&id, Duration::from_secs(15));
        id
    }

    /// Waits until passage `id` is connected on both ends (it reconnects after a restart).
    fn wait_passage(&self, id: &str, limit: Duration) -> Duration {
        let state = |port| -> Result<(), String> {
            let list = self.http.get(port, "/api/passages").ok_or("no answer")?;
            let found = list
                .as_array()
                .and_then(|l| l.iter().find(|p| p["id"] == id));
            match found {
                Some(p) if p["state"] == "connected" => Ok(()),
                _ => Err(list.to_string()),
            }
        };
        eventually("the passage on both ends", limit, || {
            state(self.a.port)?;
            state(self.b.port)
        })
        .1
    }

    fn sandboxes(&self) -> (String, String) {
        (
            self.a_start["sandbox"].0.clone(),
            self.b_start["sandbox"].0.clone(),
        )
    }

    /// Waits until no transfer is in flight anywhere and the counts hold still for 300 ms;
    /// returns every universe's counts on both sides.
    fn settled(&self, limit: Duration) -> (BTreeMap<String, Counts>, Duration) {
        let mut previous: Option<BTreeMap<String, Counts>> = None;
        eventually("every transfer to settle", limit, || {
            let mut all = BTreeMap::new();
            for (side, port) in [("A", self.a.port), ("B", self.b.port)] {
                for (name, (_, counts)) in universes(&self.http, port)? {
                    all.insert(format!("{side}.{name}"), counts);
                }
            }
            let quiet = all.values().all(|&(_, out, inc)| out == 0 && inc == 0);
            let same = previous.as_ref() == Some(&all);
            previous = Some(all.clone());
            if quiet && same {
                Ok(all)
            } else {
                std::thread::sleep(Duration::from_millis(250));
                Err(format!("{all:?}"))
            }
        })
    }

    /// Asserts that every entity exists exactly once: the sandboxes add up to 600 and the
    /// other universes are untouched.
    fn assert_exactly_once(&self, all: &BTreeMap<String, Counts>, context: &str) {
        let sum = all["A.sandbox"].0 + all["B.sandbox"].0;
        assert_eq!(
            sum,
            2 * SANDBOX,
            "{context}: A.sandbox {} + B.sandbox {} = {sum}, not {} (entities {}); all: {all:?}",
            all["A.sandbox"].0,
            all["B.sandbox"].0,
            2 * SANDBOX,
            if sum > 2 * SANDBOX {
                "duplicated"
            } else {
                "lost"
            }
        );
        for (side, start) in [("A", &self.a_start), ("B", &self.b_start)] {
            for (name, (_, counts)) in start {
                if name != "sandbox" {
                    assert_eq!(
                        all[&format!("{side}.{name}")].0,
                        counts.0,
                        "{context}: {side}.{name} changed"
                    );
                }
            }
        }
    }
}

fn transfer(universe: &str, index: u32, target: &str) -> Value {
    json!({
        "universe": universe,
        "entity": {"index": index, "generation": 0},
        "target_universe": target,
        "exit": {"x": 5.0 + f64::from(index % 20), "y": 5.0},
    })
}
