//! Throughput and latency of exactly-once transfers between two linked peers on loopback,
//! with durable commits (every journal record is in redb, fsynced, before the messages it
//! allows leave). A bench binary:
//!
//! ```sh
//! cargo bench -p multiverse-peer --bench transfers
//! ```
//!
//! Two peers run in this process (library API: `bind`, `shared`, `serve`), A dialling B over
//! a real WebSocket on 127.0.0.1. Transfers are started through the hosts' command queues
//! (what `POST /api/transfers` does, without HTTP) and timed from the start command to the
//! target's `Arrived` event (the entity is visible at the target: prepare, ack and commit
//! done, with four durable journal writes on the way: started, received, committed, done).
//! Entities cross through passages (participate, full interaction) opened before timing,
//! one per pair of universes that exchange entities.
//!
//! * pipelined A → B: every entity of A's three demo universes (300 + 120 + 500) to
//!   B.sandbox, all started at once, then every arrival awaited;
//! * pipelined B → A: everything B then hosts (1,840) back to A.sandbox; then both again
//!   (`BENCH_ROUNDS` round trips, default 3);
//! * sequential: one transfer at a time, A.sandbox → B.sandbox (unloaded latency).
//!
//! `BENCH_STORAGE=disk|tmpfs` runs one storage only; `BENCH_NO_APPEND=1` skips the last table
//! (for counting fsyncs with `strace -f -c -e trace=fsync,fdatasync`).
//!
//! The whole set runs with the data dirs on disk (a temp dir), then on tmpfs (/dev/shm) when
//! there is one, to show what fsync costs. A last table times one durable journal append
//! (one redb write transaction) on each. Every wait is bounded.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use multiverse_core::federation::{JournalRecord, TransferEvent, TransferRequest};
use multiverse_core::ids::{EntityId, PassageId, TransferId, UniverseId};
use multiverse_core::universe::Vec2;
use multiverse_peer::host::{endpoint, HostCommand};
use multiverse_peer::{Config, Shared};
use tokio::sync::{broadcast, oneshot};

/// Round trips of the pipelined runs (`BENCH_ROUNDS` overrides).
fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .clamp(1, 20)
}

/// Which storages to run (`BENCH_STORAGE=disk` or `tmpfs`; both by default).
fn wanted(storage: &str) -> bool {
    std::env::var("BENCH_STORAGE").map_or(true, |s| s == storage)
}

/// Transfers in the sequential run.
const SEQUENTIAL: usize = 200;
/// Longest any one phase may take.
const PHASE_LIMIT: Duration = Duration::from_secs(90);

/// A peer serving in this process until dropped (or stopped).
struct RunningPeer {
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningPeer {
    async fn start(dir: &Path, name: &str, peers: Vec<String>) -> RunningPeer {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("index.html"), "<html>bench</html>").unwrap();
        let mut config = Config::new(&data)
            .with_bind("127.0.0.1:0".parse().unwrap())
            .with_name(name)
            .with_dist_dir(&data)
            .with_templates_dir(&data);
        config.peers = peers;
        let peer = multiverse_peer::bind(config).await.expect("bind the peer");
        let (shared, addr) = (peer.shared(), peer.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = peer
                .serve(async {
                    let _ = stopped.await;
                })
                .await;
        });
        RunningPeer {
            shared,
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(20), &mut self.task)
            .await
            .is_err()
        {
            eprintln!("[bench] a peer did not stop within 20 s");
            self.task.abort();
        }
    }

    fn universe(&self, name: &str) -> UniverseId {
        self.shared
            .universes
            .list()
            .into_iter()
            .find(|u| u.name == name)
            .expect("demo universe")
            .id
    }

    fn universes(&self) -> Vec<UniverseId> {
        self.shared
            .universes
            .list()
            .into_iter()
            .map(|u| u.id)
            .collect()
    }

    /// Every live (visible) entity of a universe, from a snapshot.
    async fn entities(&self, universe: UniverseId) -> Vec<EntityId> {
        let host = self.shared.universes.get(universe).expect("hosted");
        let (reply, answer) = oneshot::channel();
        host.commands
            .send(HostCommand::Snapshot(reply))
            .await
            .unwrap();
        let (snapshot, _) = answer.await.unwrap();
        snapshot
            .entities
            .iter()
            .map(|e| EntityId {
                index: e.index,
                generation: snapshot.generations[e.index as usize],
            })
            .collect()
    }

    /// `name: entities (out, in)` of every listed universe.
    fn describe(&self) -> String {
        let mut out = Vec::new();
        for id in self.universes() {
            let stats = self
                .shared
                .universes
                .get(id)
                .unwrap()
                .stats
                .borrow()
                .clone();
            out.push(format!(
                "{}: {} ({} out, {} in)",
                stats.info.name, stats.info.entities, stats.transfers_out, stats.transfers_in
            ));
        }
        out.join(", ")
    }

    /// The tick of every listed universe.
    fn ticks(&self) -> Vec<u64> {
        self.universes()
            .into_iter()
            .map(|id| {
                self.shared
                    .universes
                    .get(id)
                    .unwrap()
                    .stats
                    .borrow()
                    .info
                    .tick
            })
            .collect()
    }

    /// Live entities of every listed universe, and transfers in flight either way.
    fn totals(&self) -> (u64, usize) {
        let mut entities = 0;
        let mut in_flight = 0;
        for id in self.universes() {
            let stats = self
                .shared
                .universes
                .get(id)
                .unwrap()
                .stats
                .borrow()
                .clone();
            entities += u64::from(stats.info.entities);
            in_flight += stats.transfers_out + stats.transfers_in;
        }
        (entities, in_flight)
    }
}

impl Drop for RunningPeer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Polls `ok` every 10 ms for at most `limit`.
async fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until no transfer is in flight on either peer, by numbers every host published
/// after this call (hosts publish once per tick).
async fn settled(a: &RunningPeer, b: &RunningPeer) {
    let since = (a.ticks(), b.ticks());
    let fresh = |then: &[u64], now: Vec<u64>| then.iter().zip(now).all(|(t, n)| n > t + 1);
    wait_for("every transfer to settle", PHASE_LIMIT, || {
        fresh(&since.0, a.ticks())
            && fresh(&since.1, b.ticks())
            && a.totals().1 == 0
            && b.totals().1 == 0
    })
    .await;
}

/// Starts moving `entity` out of `from` (hosted by `source`) into `to`.
async fn start(
    source: &RunningPeer,
    from: UniverseId,
    entity: EntityId,
    to: UniverseId,
    n: usize,
) -> oneshot::Receiver<Result<TransferId, multiverse_core::federation::TransferError>> {
    let peer = source
        .shared
        .federation
        .route(to)
        .expect("a route to the target");
    let table = source.shared.passages.table();
    let passage = multiverse_peer::passages::transfer_passage(&table, peer, from, to, None)
        .expect("an open passage between the two universes");
    let request = TransferRequest {
        universe: from,
        entity,
        target: endpoint(to),
        passage,
        target_universe: to,
        exit: Vec2::new(
            10.0 + (n % 50) as f32 * 15.0,
            10.0 + (n / 50 % 50) as f32 * 15.0,
        ),
    };
    let (reply, answer) = oneshot::channel();
    source
        .shared
        .universes
        .get(from)
        .expect("source hosted")
        .commands
        .send(HostCommand::StartTransfer { request, reply })
        .await
        .expect("host running");
    answer
}

/// Waits for the `Arrived` events of `pending`; returns start→arrival latencies.
async fn arrivals(
    events: &mut broadcast::Receiver<(UniverseId, TransferEvent)>,
    mut pending: HashMap<TransferId, Instant>,
) -> Vec<Duration> {
    let deadline = tokio::time::Instant::now() + PHASE_LIMIT;
    let mut latencies = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("{} transfers never arrived", pending.len()));
        match event {
            Ok((_, TransferEvent::Arrived { transfer, .. })) => {
                if let Some(started) = pending.remove(&transfer) {
                    latencies.push(started.elapsed());
                }
            }
            Ok((
                _,
                TransferEvent::Returned {
                    transfer, reason, ..
                },
            )) => {
                panic!("transfer {transfer} returned home: {reason:?}");
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                panic!("the event receiver lagged by {n} events")
            }
            Err(broadcast::error::RecvError::Closed) => panic!("events closed"),
        }
    }
    latencies
}

struct Row {
    storage: &'static str,
    run: String,
    count: usize,
    wall: Duration,
    started_all: Duration,
    latencies: Vec<Duration>,
}

impl Row {
    fn print(&mut self) {
        self.latencies.sort();
        let pick = |p: f64| {
            let l = &self.latencies;
            l[((l.len() - 1) as f64 * p).round() as usize]
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {} | {} | {} | {:.0} ms | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} ms |",
            self.storage,
            self.run,
            self.count,
            ms(self.wall),
            self.count as f64 / self.wall.as_secs_f64(),
            ms(pick(0.5)),
            ms(pick(0.99)),
            ms(pick(1.0)),
            ms(self.started_all),
        );
    }
}

/// Opens a passage from `from` on `opener` to `to` on `owner` that lets entities cross
/// (participate, full interaction) and waits until both ends show it connected.
async fn open_passage(opener: &RunningPeer, owner: &RunningPeer, from: UniverseId, to: UniverseId) {
    use multiverse_core::federation::PassageState;
    use multiverse_core::stream::{InteractionMode, ViewMode};
    use multiverse_peer::passages::PassageCommand;
    let config = multiverse_peer::federation::config_of(&opener.shared, from)
        .await
        .expect("the opener hosts `from`");
    let request = multiverse_peer::passages::request(
        config,
        to,
        Some(ViewMode::Participate),
        InteractionMode::Full,
        20,
        None,
    );
    let (reply, answer) = oneshot::channel();
    let remote = owner.shared.identity.peer_id;
    let command = PassageCommand::Open(Box::new(request), remote, reply);
    opener
        .shared
        .passages
        .commands
        .send(command)
        .await
        .expect("passages running");
    let id = answer.await.expect("a passage id");
    let connected = |peer: &RunningPeer| {
        peer.shared
            .passages
            .list()
            .iter()
            .any(|p| p.id == id && p.state == PassageState::Connected)
    };
    wait_for("a passage to connect", Duration::from_secs(15), || {
        connected(opener) && connected(owner)
    })
    .await;
}

/// Moves `entities` of `source` (by universe) to `to` on `target`, all started at once.
async fn pipelined(
    storage: &'static str,
    run: &str,
    source: &RunningPeer,
    target: &RunningPeer,
    entities: Vec<(UniverseId, EntityId)>,
    to: UniverseId,
) -> Row {
    let mut events = target.shared.universes.transfer_events();
    let began = Instant::now();
    let mut answers = Vec::with_capacity(entities.len());
    for (n, (from, entity)) in entities.iter().enumerate() {
        let issued = Instant::now();
        answers.push((issued, start(source, *from, *entity, to, n).await));
    }
    let mut pending = HashMap::with_capacity(answers.len());
    for (issued, answer) in answers {
        let id = answer.await.unwrap().expect("transfer started");
        pending.insert(id, issued);
    }
    let started_all = began.elapsed();
    let count = pending.len();
    let latencies = arrivals(&mut events, pending).await;
    let wall = began.elapsed();
    // The source forgets a transfer once the target confirmed the commit.
    settled(source, target).await;
    Row {
        storage,
        run: run.to_owned(),
        count,
        wall,
        started_all,
        latencies,
    }
}

/// One transfer at a time, A.sandbox → B.sandbox.
async fn sequential(storage: &'static str, a: &RunningPeer, b: &RunningPeer) -> Row {
    let (from, to) = (a.universe("sandbox"), b.universe("sandbox"));
    let entities = a.entities(from).await;
    let mut events = b.shared.universes.transfer_events();
    let began = Instant::now();
    let mut latencies = Vec::new();
    for (n, entity) in entities.into_iter().take(SEQUENTIAL).enumerate() {
        let issued = Instant::now();
        let id = start(a, from, entity, to, n)
            .await
            .await
            .unwrap()
            .expect("transfer started");
        latencies.extend(arrivals(&mut events, HashMap::from([(id, issued)])).await);
        assert!(
            began.elapsed() < PHASE_LIMIT,
            "the sequential run took too long"
        );
    }
    let wall = began.elapsed();
    settled(a, b).await;
    Row {
        storage,
        run: "sequential A → B".into(),
        count: latencies.len(),
        wall,
        started_all: wall,
        latencies,
    }
}

/// Exactly once, whatever the load: nothing lost, nothing doubled. The hosts publish their
/// numbers every tick (50 ms), so a mismatch is looked at again a little later.
async fn check(a: &RunningPeer, b: &RunningPeer, total: u64, after: &str) {
    for attempt in 0..10 {
        let now = a.totals().0 + b.totals().0;
        if now == total {
            return;
        }
        eprintln!(
            "[bench] after {after} (look {attempt}): {now} entities, not {total}; A: {}; B: {}",
            a.describe(),
            b.describe()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("after {after}: entities were lost or doubled");
}

async fn run(storage: &'static str, dir: &Path) -> Vec<Row> {
    let b = RunningPeer::start(dir, "B", Vec::new()).await;
    let a = RunningPeer::start(dir, "A", vec![format!("ws://{}/peer", b.addr)]).await;
    let (a_all, b_all) = (a.universes(), b.universes());
    wait_for(
        "the link and routes both ways",
        Duration::from_secs(15),
        || {
            b_all
                .iter()
                .all(|u| a.shared.federation.route(*u).is_some())
                && a_all
                    .iter()
                    .all(|u| b.shared.federation.route(*u).is_some())
        },
    )
    .await;
    // Entities cross between peers only through passages granting full interaction: one
    // from each universe that sends to the sandbox it sends to (A.sandbox ↔ B.sandbox
    // carries both ways).
    let (a_sandbox, b_sandbox) = (a.universe("sandbox"), b.universe("sandbox"));
    for u in a_all.iter().copied() {
        open_passage(&a, &b, u, b_sandbox).await;
    }
    for u in b_all.iter().copied().filter(|u| *u != b_sandbox) {
        open_passage(&b, &a, u, a_sandbox).await;
    }
    let total = a.totals().0 + b.totals().0;
    let mut rows = Vec::new();
    // Round trips of everything: A's three universes to B.sandbox, then all B hosts back to
    // A.sandbox, and again.
    for round in 1..=rounds() {
        let mut batch = Vec::new();
        for u in a.universes() {
            batch.extend(a.entities(u).await.into_iter().map(|e| (u, e)));
        }
        let to = b.universe("sandbox");
        let run = format!("pipelined A → B, round {round}");
        rows.push(pipelined(storage, &run, &a, &b, batch, to).await);
        let mut batch = Vec::new();
        for u in b.universes() {
            batch.extend(b.entities(u).await.into_iter().map(|e| (u, e)));
        }
        let to = a.universe("sandbox");
        let run = format!("pipelined B → A, round {round}");
        rows.push(pipelined(storage, &run, &b, &a, batch, to).await);
        check(&a, &b, total, &run).await;
    }
    rows.push(sequential(storage, &a, &b).await);
    check(&a, &b, total, "the sequential run").await;

    // Exactly once, whatever the load: nothing lost, nothing doubled.
    assert_eq!(
        a.totals().0 + b.totals().0,
        total,
        "entities before and after"
    );
    a.stop().await;
    b.stop().await;
    rows
}

/// Side measurements: one journal append, and the codec's share of a transfer.
#[path = "transfers/side.rs"]
mod side;
use side::{codec_per_transfer, journal_append};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let mut storages: Vec<(&'static str, tempfile::TempDir)> = Vec::new();
    if wanted("disk") {
        storages.push(("disk", tempfile::tempdir().unwrap()));
    }
    if wanted("tmpfs") && Path::new("/dev/shm").is_dir() {
        storages.push(("tmpfs", tempfile::tempdir_in("/dev/shm").unwrap()));
    }
    println!(
        "| storage | run | transfers | wall (start of first → last arrival) | transfers/s | p50 start→arrived | p99 | max | all started after |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (storage, dir) in &storages {
        for mut row in run(storage, dir.path()).await {
            row.print();
        }
    }
    let (routed, bare) = codec_per_transfer();
    println!();
    println!(
        "codec CPU per transfer (4 messages): {:.1} µs as routed PeerMessages (encode + decode, twice each), {:.1} µs as bare structs",
        routed.as_secs_f64() * 1e6,
        bare.as_secs_f64() * 1e6
    );
    if std::env::var_os("BENCH_NO_APPEND").is_some() {
        return;
    }
    println!();
    println!("| storage | one durable journal append (1 record, 1 redb commit): p50 | p99 |");
    println!("|---|---|---|");
    for (storage, dir) in &storages {
        let store_dir = dir.path().join("journal-only");
        std::fs::create_dir_all(&store_dir).unwrap();
        let (p50, p99) = journal_append(&store_dir);
        println!(
            "| {storage} | {:.2} ms | {:.2} ms |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
}
