//! Federation between two real peer processes on 127.0.0.1: the link comes up both ways, a
//! transfer round trip, kill -9 of either peer in the middle of transfers (every entity must
//! exist exactly once afterwards), and heartbeats noticing a stopped peer.
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

#[test]
fn the_link_comes_up_both_ways_and_an_entity_makes_a_round_trip() {
    let pair = Pair::start();
    let (a, b) = (pair.a.port, pair.b.port);

    // (a) Both sides list the link and the other's three universes, with the right ids.
    let a_peers = link(&pair.http, a, &pair.b_id, 3).unwrap();
    let b_peers = link(&pair.http, b, &pair.a_id, 3).unwrap();
    assert_eq!(a_peers["links"][0]["name"], "B");
    assert_eq!(a_peers["links"][0]["direction"], "outbound");
    assert_eq!(b_peers["links"][0]["name"], "A");
    assert_eq!(b_peers["links"][0]["direction"], "inbound");
    let dialled = &a_peers["dialled"][0];
    assert_eq!(dialled["state"], "connected", "{a_peers}");
    assert_eq!(dialled["peer_id"], pair.b_id.as_str());
    assert_eq!(dialled["address"], format!("ws://127.0.0.1:{b}/peer"));
    for (peers, other) in [(&a_peers, &pair.b_start), (&b_peers, &pair.a_start)] {
        let listed: BTreeMap<String, String> = peers["links"][0]["universes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["name"].as_str().unwrap().to_owned(),
                    u["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let own: BTreeMap<String, String> = other
            .iter()
            .map(|(name, (id, _))| (name.clone(), id.clone()))
            .collect();
        assert_eq!(listed, own, "the link lists the other side's universes");
    }

    // (b) Ten entities A → B, then ten of B's own (slots 0..10) back B → A.
    let (a_sandbox, b_sandbox) = pair.sandboxes();
    for index in 0..10 {
        let (status, body) = pair
            .http
            .post(
                a,
                "/api/transfers",
                &transfer(&a_sandbox, index, &b_sandbox),
            )
            .expect("A answers");
        assert_eq!(status, 202, "{body}");
    }
    let (all, took) = pair.settled(Duration::from_secs(20));
    eprintln!("[test] 10 transfers A → B settled in {took:?}");
    assert_eq!(
        (all["A.sandbox"].0, all["B.sandbox"].0),
        (SANDBOX - 10, SANDBOX + 10)
    );
    pair.assert_exactly_once(&all, "after A → B");
    for index in 0..10 {
        let (status, body) = pair
            .http
            .post(
                b,
                "/api/transfers",
                &transfer(&b_sandbox, index, &a_sandbox),
            )
            .expect("B answers");
        assert_eq!(status, 202, "{body}");
    }
    let (all, took) = pair.settled(Duration::from_secs(20));
    eprintln!("[test] 10 transfers B → A settled in {took:?}");
    assert_eq!((all["A.sandbox"].0, all["B.sandbox"].0), (SANDBOX, SANDBOX));
    pair.assert_exactly_once(&all, "after the round trip");

    // Refusals across the link: a gone entity, an unknown universe.
    let (status, body) = pair
        .http
        .post(a, "/api/transfers", &transfer(&a_sandbox, 0, &b_sandbox))
        .unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_entity"))
    );
    let unknown = "00000000-0000-0000-0000-000000000001";
    let (status, body) = pair
        .http
        .post(a, "/api/transfers", &transfer(&a_sandbox, 20, unknown))
        .unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_universe"))
    );
}

/// One kill round's record, printed at the end.
#[derive(Debug)]
struct Round {
    delay_ms: u64,
    accepted: usize,
    refused: usize,
    unanswered: usize,
    in_flight_after_restart: Option<(u64, u64)>,
    moved: i64,
    settle: Duration,
}

/// Starts [`BURST`] transfers A.sandbox → B.sandbox (slots `first..first + BURST`) at once,
/// SIGKILLs the source or the target `delay` after the first is accepted, restarts it on the
/// same port and data dir, and checks that every entity exists exactly once.
fn kill_round(pair: &mut Pair, kill_source: bool, first: u32, delay: Duration) -> Round {
    let (a_sandbox, b_sandbox) = pair.sandboxes();
    let a_port = pair.a.port;
    let before = pair.settled(Duration::from_secs(5)).0;
    let victim = if kill_source {
        &mut pair.a
    } else {
        &mut pair.b
    };
    let answers: Vec<Option<u16>> = pair.http.rt.block_on(async {
        let client = client();
        let (first_tx, mut first_rx) = tokio::sync::mpsc::channel::<()>(1);
        let posts: Vec<_> = (first..first + BURST)
            .map(|index| {
                let (client, first_tx) = (client.clone(), first_tx.clone());
                let body = transfer(&a_sandbox, index, &b_sandbox);
                tokio::spawn(async move {
                    let answer = post(&client, a_port, "/api/transfers", &body).await;
                    if matches!(answer, Some((202, _))) {
                        let _ = first_tx.try_send(());
                    }
                    answer.map(|(status, _)| status)
                })
            })
            .collect();
        drop(first_tx);
        let accepted = tokio::time::timeout(Duration::from_secs(10), first_rx.recv()).await;
        assert!(matches!(accepted, Ok(Some(()))), "no transfer was accepted");
        tokio::time::sleep(delay).await;
        victim.kill9();
        let mut answers = Vec::new();
        for p in posts {
            let answer = tokio::time::timeout(Duration::from_secs(10), p).await;
            answers.push(answer.ok().and_then(Result::ok).flatten());
        }
        answers
    });
    victim.start();
    let in_flight_after_restart = universes(&pair.http, pair.a.port)
        .ok()
        .zip(universes(&pair.http, pair.b.port).ok())
        .map(|(a, b)| (a["sandbox"].1 .1, b["sandbox"].1 .2));
    let relinked = pair.wait_linked(Duration::from_secs(20));
    let (all, settle) = pair.settled(Duration::from_secs(45));
    let who = if kill_source { "source A" } else { "target B" };
    let context = format!(
        "kill -9 of the {who} {delay:?} after the first of transfers {first}..{} was accepted",
        first + BURST
    );
    pair.assert_exactly_once(&all, &context);
    let round = Round {
        delay_ms: delay.as_millis() as u64,
        accepted: answers.iter().filter(|a| **a == Some(202)).count(),
        refused: answers
            .iter()
            .filter(|a| matches!(a, Some(s) if *s != 202))
            .count(),
        unanswered: answers.iter().filter(|a| a.is_none()).count(),
        in_flight_after_restart,
        moved: all["B.sandbox"].0 as i64 - before["B.sandbox"].0 as i64,
        settle: relinked + settle,
    };
    // Nothing is refused while both peers run; a killed source may leave some unanswered.
    assert_eq!(round.refused, 0, "{context}: {answers:?}");
    assert!(
        round.moved >= 0 && round.moved <= i64::from(BURST),
        "{context}"
    );
    if !kill_source {
        // The source stayed up and answered every start; the target came back well within
        // the prepare deadline, so every accepted transfer went through.
        assert_eq!(round.moved, round.accepted as i64, "{context}");
    }
    round
}

fn kill_rounds(kill_source: bool) {
    let mut pair = Pair::start();
    let mut rounds = Vec::new();
    for (n, delay_ms) in [0u64, 1, 3, 8].into_iter().enumerate() {
        let first = n as u32 * BURST;
        rounds.push(kill_round(
            &mut pair,
            kill_source,
            first,
            Duration::from_millis(delay_ms),
        ));
    }
    let who = if kill_source { "source" } else { "target" };
    for r in &rounds {
        eprintln!(
            "[test] kill -9 {who} {:>2} ms after the first accept: {:>2} accepted, {:>2} unanswered, in flight after restart (A out, B in) {:?}, {:>2} moved, settled in {:?}",
            r.delay_ms, r.accepted, r.unanswered, r.in_flight_after_restart, r.moved, r.settle
        );
    }
    let moved: i64 = rounds.iter().map(|r| r.moved).sum();
    assert!(moved > 0, "no round moved anything: {rounds:?}");
    // At least one kill must have caught transfers unsettled, or this tested nothing.
    assert!(
        rounds.iter().any(|r| r
            .in_flight_after_restart
            .is_some_and(|(out, inc)| out + inc > 0)),
        "no kill caught a transfer in flight: {rounds:?}"
    );
    let all = pair.settled(Duration::from_secs(5)).0;
    assert_eq!(all["B.sandbox"].0 as i64, SANDBOX as i64 + moved);
}

#[test]
fn kill_9_of_the_source_mid_transfer_loses_and_duplicates_nothing() {
    kill_rounds(true);
}

#[test]
fn kill_9_of_the_target_mid_transfer_loses_and_duplicates_nothing() {
    kill_rounds(false);
}

/// The dial state of A's only dialled address, and whether A has a live link.
fn dial_state(http: &Http, port: u16) -> Result<(String, bool, Value), String> {
    let peers = http.get(port, "/api/peers").ok_or("no answer")?;
    let state = peers["dialled"][0]["state"]
        .as_str()
        .ok_or_else(|| peers.to_string())?
        .to_owned();
    let linked = !peers["links"].as_array().ok_or("no links")?.is_empty();
    Ok((state, linked, peers))
}

#[test]
fn heartbeats_notice_a_stopped_peer_and_the_link_comes_back() {
    let mut pair = Pair::start();
    let a = pair.a.port;

    // A frozen peer (SIGSTOP) keeps its sockets open: only missing heartbeats can tell.
    let stopped = Instant::now();
    pair.b.signal("STOP");
    let (_, lost) =
        eventually(
            "A to drop the silent link",
            Duration::from_secs(12),
            || match dial_state(&pair.http, a)? {
                (_, false, _) => Ok(()),
                (_, true, peers) => Err(peers.to_string()),
            },
        );
    eprintln!("[test] SIGSTOP: A dropped the link after {lost:?}");
    assert!(
        lost >= Duration::from_secs(4),
        "the link went after {lost:?}, before heartbeats could have been missed"
    );
    let (peers, _) =
        eventually(
            "A's dialler to retry",
            Duration::from_secs(10),
            || match dial_state(&pair.http, a)? {
                (state, false, peers) if state == "retrying" => Ok(peers),
                (_, _, peers) => Err(peers.to_string()),
            },
        );
    assert!(
        peers["dialled"][0]["last_error"].is_string(),
        "a reason: {peers}"
    );
    pair.b.signal("CONT");
    let back = pair.wait_linked(Duration::from_secs(15));
    eprintln!(
        "[test] SIGCONT: linked again {back:?} later ({:?} after SIGSTOP)",
        stopped.elapsed()
    );
    assert_eq!(dial_state(&pair.http, a).unwrap().0, "connected");

    // A killed peer: the socket closes, A notices and retries; B comes back on its port.
    pair.b.kill9();
    let (peers, lost) =
        eventually(
            "A to notice B is gone",
            Duration::from_secs(10),
            || match dial_state(&pair.http, a)? {
                (state, false, peers) if state == "retrying" => Ok(peers),
                (_, _, peers) => Err(peers.to_string()),
            },
        );
    eprintln!("[test] SIGKILL: A noticed after {lost:?}: {peers}");
    pair.b.start();
    let back = pair.wait_linked(Duration::from_secs(15));
    eprintln!("[test] restart: linked again after {back:?}");
    assert_eq!(dial_state(&pair.http, a).unwrap().0, "connected");
}
