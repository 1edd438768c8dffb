//! Saving and loading a 10,000-entity universe through the redb store (a bench binary).
//!
//! ```sh
//! cargo bench -p multiverse-peer --bench store
//! ```
//!
//! Builds the sandbox demo with 10,000 entities in a 4000×4000 world, then 20 times: steps it
//! once (not timed), takes a snapshot and encodes it, saves it durably with `put_universe`
//! (encode + one write transaction + fsync), loads it back with `universe()` (read + decode)
//! and restores it. Reports p50 and max of each step, the encoded size and the size of the data
//! dir after the first and the 20th save. Runs once with the store on disk (a temp dir) and,
//! where `/dev/shm` exists, once on tmpfs to show what the fsync costs.
//!
//! `BENCH_ENTITIES=n` and `BENCH_SAVES=n` change the universe size and the number of saves.

use std::path::Path;
use std::time::{Duration, Instant};

use multiverse_core::ids::UniverseId;
use multiverse_core::universe::{demo_universe, DemoKind, Universe};
use multiverse_peer::store::Store;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes of the files in `dir` (length, and blocks allocated on the file system).
fn dir_size(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut len = 0;
    let mut allocated = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let meta = entry.unwrap().metadata().unwrap();
        if meta.is_file() {
            len += meta.len();
            allocated += meta.blocks() * 512;
        }
    }
    (len, allocated)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

/// p50 and max of a set of timings.
fn stats(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], *samples.last().unwrap())
}

struct Run {
    snapshot: Vec<Duration>,
    encode: Vec<Duration>,
    snapshot_encode: Vec<Duration>,
    save: Vec<Duration>,
    load: Vec<Duration>,
    restore: Vec<Duration>,
    load_restore: Vec<Duration>,
    encoded: Vec<u64>,
    after_first: (u64, u64),
    after_last: (u64, u64),
}

fn run(where_: &Path, entities: usize, saves: usize) -> Run {
    let id = UniverseId::from_u128(0x5707_E000);
    let mut universe = demo_universe(DemoKind::Sandbox, id, entities, 4000.0, 7);
    assert_eq!(universe.len(), entities);
    let dir = tempfile::tempdir_in(where_).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut r = Run {
        snapshot: Vec::new(),
        encode: Vec::new(),
        snapshot_encode: Vec::new(),
        save: Vec::new(),
        load: Vec::new(),
        restore: Vec::new(),
        load_restore: Vec::new(),
        encoded: Vec::new(),
        after_first: (0, 0),
        after_last: (0, 0),
    };
    for i in 0..saves {
        universe.step();
        universe.drain_events();

        let t = Instant::now();
        let snapshot = universe.snapshot();
        let taken = t.elapsed();
        let t = Instant::now();
        let encoded = snapshot.encode();
        let encoding = t.elapsed();
        r.snapshot.push(taken);
        r.encode.push(encoding);
        r.snapshot_encode.push(taken + encoding);
        r.encoded.push(encoded.len() as u64);

        let t = Instant::now();
        store.put_universe(&snapshot).unwrap();
        r.save.push(t.elapsed());
        if i == 0 {
            r.after_first = dir_size(dir.path());
        }

        let t = Instant::now();
        let loaded = store.universe(id).unwrap().expect("saved universe");
        let load = t.elapsed();
        let t = Instant::now();
        let restored = Universe::restore(loaded).unwrap();
        let restore = t.elapsed();
        r.load.push(load);
        r.restore.push(restore);
        r.load_restore.push(load + restore);
        assert_eq!(restored.tick(), universe.tick());
        assert_eq!(restored.len(), entities);
    }
    drop(store);
    r.after_last = dir_size(dir.path());
    r
}

fn print(title: &str, r: Run, saves: usize) {
    println!("\n{title}");
    println!("| step | p50 | max |");
    println!("|---|---|---|");
    for (name, samples) in [
        ("`snapshot()`", r.snapshot),
        ("`encode()`", r.encode),
        ("snapshot + encode", r.snapshot_encode),
        (
            "durable save: `put_universe` (encode + write + fsync)",
            r.save,
        ),
        ("load: `universe()` (read + decode)", r.load),
        ("`Universe::restore`", r.restore),
        ("load + restore", r.load_restore),
    ] {
        let (p50, max) = stats(samples);
        println!("| {name} | {} | {} |", ms(p50), ms(max));
    }
    let encoded = r.encoded.iter().copied().max().unwrap();
    println!(
        "encoded snapshot: {} ({encoded} bytes, largest of {saves})",
        bytes(encoded)
    );
    println!(
        "data dir after 1 save: {} (allocated {}); after {saves} saves: {} (allocated {})",
        bytes(r.after_first.0),
        bytes(r.after_first.1),
        bytes(r.after_last.0),
        bytes(r.after_last.1)
    );
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let entities = env_or("BENCH_ENTITIES", 10_000);
    let saves = env_or("BENCH_SAVES", 20).max(1);
    println!("sandbox universe, {entities} entities in 4000×4000, {saves} saves");
    let disk = std::env::temp_dir();
    print(
        &format!("store on disk ({})", disk.display()),
        run(&disk, entities, saves),
        saves,
    );
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        print(
            "store on tmpfs (/dev/shm)",
            run(shm, entities, saves),
            saves,
        );
    }
}
