//! The redb store under stress: killed with SIGKILL mid-write, written by a newer build, on a
//! disk that fails, and asked for duplicate world names.
//!
//! The crash test re-executes this test binary as its own child process: the child
//! ([`crash_child_writer`], which does nothing unless `MULTIVERSE_STORE_CHILD` is set) writes
//! universes and chat and prints `@ack …` after each write returned, the parent kills it at a
//! random moment and checks that everything acknowledged is in the store when it reopens.
//! `MULTIVERSE_STORE_SEED=n` replays one sequence of kill delays.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use multiverse_core::ids::{ClientId, MessageId, RoomId, UniverseId, UserId};
use multiverse_core::room::ChatMessage;
use multiverse_core::universe::{demo_universe, DemoKind, Universe, UniverseSnapshot};
use multiverse_peer::store::{Store, StoreError, WorldRecord, FILE_NAME, SCHEMA_VERSION};
use redb::backends::FileBackend;
use redb::{BackendError, ReadableDatabase, StorageBackend, TableDefinition};

/// c. A disk that fails (its own file: the backend wrapper is long).
#[path = "store/failing_disk.rs"]
mod failing_disk;

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

fn room() -> RoomId {
    RoomId::new("crash-room").unwrap()
}

/// The chat message with sequence number `seq`, fully determined by it so the parent can check
/// the content too.
fn message(seq: u64) -> ChatMessage {
    ChatMessage {
        seq,
        id: MessageId::from_u128(0xC4A7_0000_0000 + u128::from(seq)),
        from: ClientId::from_u128(7),
        name: "writer".into(),
        text: format!("message number {seq}"),
        at_ms: 1_700_000_000_000 + seq,
    }
}

fn small_universe(id: UniverseId, seed: u64) -> Universe {
    demo_universe(DemoKind::Sandbox, id, 40, 500.0, seed)
}

fn world(id: u128, owner: u128, name: &str) -> WorldRecord {
    WorldRecord {
        id: UniverseId::from_u128(id),
        owner: UserId::from_u128(owner),
        name: name.into(),
        template: "sandbox".into(),
        created_ms: 1_000,
        saved_ms: 1_000,
        active_ms: 1_000,
    }
}

fn world_universe(id: u128, ticks: u32) -> UniverseSnapshot {
    let mut universe = small_universe(UniverseId::from_u128(id), id as u64);
    for _ in 0..ticks {
        universe.step();
    }
    universe.snapshot()
}

/// Small deterministic generator (xorshift64*) so a failing run can be replayed by its seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

// ---------------------------------------------------------------------------------------------
// a. Crash safety: kill -9 at random points
// ---------------------------------------------------------------------------------------------

const CHILD_ENV: &str = "MULTIVERSE_STORE_CHILD";
const CHILD_TEST: &str = "crash_child_writer";
const CRASH_UNIVERSE: UniverseId = UniverseId::from_u128(0xC4A5_4000);
/// Ticks the child steps its universe between two saves.
const TICKS_PER_SAVE: u64 = 3;
const ROUNDS: usize = 7;

/// The child half of [`killed_writer_loses_no_acknowledged_write`]: a no-op in a normal run.
///
/// With `MULTIVERSE_STORE_CHILD=<dir>` it opens the store there, resumes the universe and the
/// chat numbering from what the store holds, then alternately saves the stepped universe and
/// appends the next chat message, printing `@ack universe <tick>` / `@ack chat <seq>` once
/// each write has returned Ok. It stops by itself after 20 s in case nobody kills it.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let started = Instant::now();
    let store = Store::open(Path::new(&dir)).expect("child opens the store");
    let mut universe = match store
        .universe(CRASH_UNIVERSE)
        .expect("child reads universe")
    {
        Some(snapshot) => Universe::restore(snapshot).expect("child restores universe"),
        None => small_universe(CRASH_UNIVERSE, 41),
    };
    let mut seq = store
        .chat(&room(), 1)
        .expect("child reads chat")
        .last()
        .map_or(0, |m| m.seq);
    let mut out = std::io::stdout().lock();
    // Libtest may have printed "test crash_child_writer ... " without a newline.
    writeln!(out).unwrap();
    writeln!(out, "@ready tick {} seq {seq}", universe.tick()).unwrap();
    out.flush().unwrap();
    for _ in 0..100_000 {
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
        for _ in 0..TICKS_PER_SAVE {
            universe.step();
        }
        universe.drain_events();
        store
            .put_universe(&universe.snapshot())
            .expect("save universe");
        writeln!(out, "@ack universe {}", universe.tick()).unwrap();
        out.flush().unwrap();

        seq += 1;
        store
            .append_chat(&room(), &message(seq))
            .expect("append chat");
        writeln!(out, "@ack chat {seq}").unwrap();
        out.flush().unwrap();
    }
}

/// What one child acknowledged before it died.
#[derive(Debug, Default)]
struct Acks {
    ready: bool,
    last_tick: Option<u64>,
    last_seq: Option<u64>,
    count: usize,
}

/// Reads the child's stdout until EOF; only complete lines count (a line cut by the kill
/// was never acknowledged).
fn read_acks(stdout: impl std::io::Read) -> Acks {
    let mut acks = Acks::default();
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if !line.ends_with('\n') => break,
            Ok(_) => {}
        }
        let Some(at) = line.find('@') else { continue };
        let words: Vec<&str> = line[at..].split_whitespace().collect();
        match words.as_slice() {
            ["@ready", ..] => acks.ready = true,
            ["@ack", "universe", tick] => {
                let tick: u64 = tick.parse().expect("tick");
                assert!(acks.last_tick.is_none_or(|t| t < tick), "ticks go up");
                acks.last_tick = Some(tick);
                acks.count += 1;
            }
            ["@ack", "chat", seq] => {
                let seq: u64 = seq.parse().expect("seq");
                assert_eq!(
                    seq,
                    acks.last_seq.map_or(seq, |s| s + 1),
                    "seqs go up by one"
                );
                acks.last_seq = Some(seq);
                acks.count += 1;
            }
            _ => {}
        }
    }
    acks
}

/// Opens the store after a crash and checks it holds at least everything acknowledged so far
/// (and at most the one write that was in flight when the child died). Returns the stored
/// chat's last seq and the stored universe's tick.
fn check_after_crash(
    dir: &Path,
    acked_seq: u64,
    acked_tick: Option<u64>,
    round: usize,
) -> (u64, Option<u64>) {
    let store = Store::open(dir).unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);

    let chat = store.chat(&room(), usize::MAX).unwrap();
    let stored_seq = chat.last().map_or(0, |m| m.seq);
    for (i, m) in chat.iter().enumerate() {
        assert_eq!(
            *m,
            message(i as u64 + 1),
            "round {round}: chat must be 1, 2, 3, … in order and intact"
        );
    }
    assert!(
        stored_seq >= acked_seq,
        "round {round}: acknowledged chat lost: acked up to {acked_seq}, stored up to {stored_seq}"
    );
    assert!(
        stored_seq <= acked_seq + 1,
        "round {round}: stored seq {stored_seq} is more than one past the acked {acked_seq}"
    );

    let snapshot = store.universe(CRASH_UNIVERSE).unwrap();
    let stored_tick = snapshot.as_ref().map(|s| s.tick);
    if let Some(acked) = acked_tick {
        let snapshot = snapshot
            .clone()
            .unwrap_or_else(|| panic!("round {round}: acked universe at tick {acked} is gone"));
        assert!(
            snapshot.tick >= acked && snapshot.tick <= acked + TICKS_PER_SAVE,
            "round {round}: stored tick {} but last acked {acked}",
            snapshot.tick
        );
    }
    if let Some(snapshot) = snapshot {
        let bytes = snapshot.encode();
        assert_eq!(UniverseSnapshot::decode(&bytes).unwrap(), snapshot);
        let restored = Universe::restore(snapshot.clone())
            .unwrap_or_else(|e| panic!("round {round}: stored universe does not restore: {e}"));
        assert_eq!(restored.len(), 40, "round {round}: entities lost");
        assert_eq!(restored.snapshot(), snapshot);
    }
    (stored_seq, stored_tick)
}

#[test]
fn killed_writer_loses_no_acknowledged_write() {
    let started = Instant::now();
    let seed = std::env::var("MULTIVERSE_STORE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15_u64);
    eprintln!("crash test seed {seed} (MULTIVERSE_STORE_SEED replays it)");
    let mut rng = XorShift(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();

    let mut acked_seq = 0u64;
    let mut acked_tick: Option<u64> = None;
    let mut total_acks = 0usize;
    let mut rounds_with_acks = 0usize;
    for round in 0..ROUNDS {
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "crash test ran out of time at round {round}"
        );
        let delay = Duration::from_millis(rng.between(20, 400));
        let mut child = Command::new(&exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (acks_tx, acks_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let _ = acks_tx.send(read_acks(stdout));
        });
        let err_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });

        std::thread::sleep(delay);
        let early_exit = child.try_wait().unwrap();
        if early_exit.is_none() {
            child.kill().expect("SIGKILL the child"); // Only this child's pid.
        }
        let status = child.wait().unwrap();
        let acks = acks_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("child's stdout closes once it is dead");
        reader.join().unwrap();
        let errors = err_reader.join().unwrap();
        assert!(
            early_exit.is_none(),
            "round {round}: the child exited by itself ({status}) before the kill; stderr:\n{errors}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "round {round}: killed by SIGKILL");
        }

        if let Some(seq) = acks.last_seq {
            acked_seq = seq;
        }
        if acks.last_tick.is_some() {
            acked_tick = acks.last_tick;
        }
        total_acks += acks.count;
        rounds_with_acks += usize::from(acks.count > 0);
        let (stored_seq, stored_tick) = check_after_crash(dir.path(), acked_seq, acked_tick, round);
        let unacked = match (stored_seq > acked_seq, stored_tick > acked_tick) {
            (true, _) => "a chat message",
            (_, true) => "a universe save",
            _ => "nothing",
        };
        eprintln!(
            "round {round}: killed after {delay:?} (store open: {}); {} acks; store: chat up to \
             {stored_seq}, tick {stored_tick:?}; landed unacked: {unacked}",
            acks.ready, acks.count
        );
        // What the store holds now is what the next child resumes from; a write that landed
        // but was never acked is now durable too and the bar for the next round.
        acked_seq = stored_seq;
        acked_tick = stored_tick.or(acked_tick);
    }
    assert!(
        rounds_with_acks >= 2 && total_acks >= 10,
        "the kills came too early to test anything: {total_acks} acks in {rounds_with_acks} rounds"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// b. Newer schema
// ---------------------------------------------------------------------------------------------

#[test]
fn store_written_by_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store
            .put_universe(&small_universe(UniverseId::from_u128(5), 5).snapshot())
            .unwrap();
    }
    // The same version reopens.
    Store::open(dir.path())
        .unwrap()
        .set_meta("schema_version", 99)
        .unwrap();

    for _ in 0..2 {
        match Store::open(dir.path()) {
            Err(e @ StoreError::NewerSchema { found: 99 }) => {
                let text = e.to_string();
                assert!(text.contains("newer"), "{text}");
                assert!(text.contains("99"), "{text}");
                assert!(text.contains(&SCHEMA_VERSION.to_string()), "{text}");
            }
            other => panic!("expected NewerSchema {{ found: 99 }}, got {other:?}"),
        }
    }
    // The refusal left the store as it was: still version 99, data still there.
    let db = redb::Database::open(dir.path().join(FILE_NAME)).unwrap();
    let tx = db.begin_read().unwrap();
    let meta = tx
        .open_table(TableDefinition::<&str, u64>::new("meta"))
        .unwrap();
    assert_eq!(meta.get("schema_version").unwrap().unwrap().value(), 99);
    let universes = tx
        .open_table(TableDefinition::<u128, &[u8]>::new("universes"))
        .unwrap();
    assert!(universes.get(5u128).unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// d. World names
// ---------------------------------------------------------------------------------------------

#[test]
fn world_names_are_unique_per_owner_case_insensitively() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let alice = 100;
    let bob = 200;

    store
        .create_world(&world(1, alice, "My Garden"), &world_universe(1, 0))
        .unwrap();
    for (id, name) in [(2, "my garden"), (3, "MY GARDEN"), (4, "My Garden")] {
        match store.create_world(&world(id, alice, name), &world_universe(id, 0)) {
            Err(StoreError::DuplicateName(n)) => assert_eq!(n, name),
            other => panic!("{name:?} for the same owner: expected DuplicateName, got {other:?}"),
        }
        // The refused world left no trace.
        assert_eq!(store.world(UniverseId::from_u128(id)).unwrap(), None);
        assert_eq!(store.universe(UniverseId::from_u128(id)).unwrap(), None);
    }
    // Non-ASCII names fold too.
    store
        .create_world(&world(5, alice, "Ärger"), &world_universe(5, 0))
        .unwrap();
    assert!(matches!(
        store.create_world(&world(6, alice, "äRGER"), &world_universe(6, 0)),
        Err(StoreError::DuplicateName(_))
    ));
    // A different name, and the same name for someone else, are fine.
    store
        .create_world(&world(7, alice, "My Garden 2"), &world_universe(7, 0))
        .unwrap();
    store
        .create_world(&world(8, bob, "my garden"), &world_universe(8, 0))
        .unwrap();
    let ids: Vec<u128> = store
        .worlds()
        .unwrap()
        .iter()
        .map(|w| w.id.as_u128())
        .collect();
    assert_eq!(ids, vec![1, 5, 7, 8]);

    // Deleting frees the name, and takes the universe with it.
    let deleted = store.delete_world(UniverseId::from_u128(1)).unwrap();
    assert_eq!(deleted, world(1, alice, "My Garden"));
    assert_eq!(store.world(UniverseId::from_u128(1)).unwrap(), None);
    assert_eq!(store.universe(UniverseId::from_u128(1)).unwrap(), None);
    assert!(matches!(
        store.delete_world(UniverseId::from_u128(1)),
        Err(StoreError::NotFound)
    ));
    store
        .create_world(&world(9, alice, "MY garden"), &world_universe(9, 3))
        .unwrap();
    // Bob's world was not touched by Alice's delete.
    assert_eq!(
        store.world(UniverseId::from_u128(8)).unwrap(),
        Some(world(8, bob, "my garden"))
    );
    drop(store);

    // All of it survives a reopen, including the name index.
    let store = Store::open(dir.path()).unwrap();
    let ids: Vec<u128> = store
        .worlds()
        .unwrap()
        .iter()
        .map(|w| w.id.as_u128())
        .collect();
    assert_eq!(ids, vec![5, 7, 8, 9]);
    assert_eq!(
        store.universe(UniverseId::from_u128(9)).unwrap(),
        Some(world_universe(9, 3))
    );
    assert!(matches!(
        store.create_world(&world(10, alice, "my GARDEN"), &world_universe(10, 0)),
        Err(StoreError::DuplicateName(_))
    ));
    assert!(matches!(
        store.create_world(&world(11, bob, "MY GARDEN"), &world_universe(11, 0)),
        Err(StoreError::DuplicateName(_))
    ));
}
