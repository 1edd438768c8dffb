//! What one transfer costs apart from the network: a durable journal append, and encoding
//! and decoding its four messages.

use super::*;

/// Time of one durable journal append (one record, one redb write transaction), as each
/// host batch pays it, on the store of a fresh data dir in `dir`.
pub(super) fn journal_append(dir: &Path) -> (Duration, Duration) {
    let store = multiverse_peer::store::Store::open(dir).expect("store");
    let universe = UniverseId::from_u128(7);
    let record = JournalRecord::Finished {
        transfer: TransferId::from_u128(1),
    };
    let mut times = Vec::new();
    let began = Instant::now();
    for _ in 0..300 {
        let t = Instant::now();
        store
            .append_journal(universe, std::slice::from_ref(&record))
            .unwrap();
        times.push(t.elapsed());
        if began.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    times.sort();
    (times[times.len() / 2], times[(times.len() - 1) * 99 / 100])
}

/// CPU time of the messages of one transfer (prepare, ack, commit, commit ack) as the link
/// carries them: each wrapped in `PeerMessage::Routed` (inner encode), framed (outer
/// encode), then decoded and unwrapped at the other end. Next to it, the same four payloads
/// encoded and decoded as bare structs, without the `PeerMessage` enum around them.
pub(super) fn codec_per_transfer() -> (Duration, Duration) {
    use multiverse_core::wire::{
        Codec, Encoding, Frame, PeerMessage, TransferControl, TransferPrepare,
        MAX_SERVER_FRAME_BYTES,
    };
    let codec = Codec::new(Encoding::Binary, MAX_SERVER_FRAME_BYTES);
    let (from, to) = (UniverseId::from_u128(1), UniverseId::from_u128(2));
    let transfer = TransferId::from_u128(3);
    let entity = EntityId {
        index: 7,
        generation: 0,
    };
    let prepare = TransferPrepare {
        transfer,
        seq: 9,
        settled_below: 9,
        passage: PassageId::from_u128(4),
        universe: to,
        exit: Vec2::new(1.0, 2.0),
        entity: vec![0x5a; 100],
        checksum: [1; 32],
    };
    let control = TransferControl {
        transfer,
        seq: 9,
        settled_below: 9,
    };
    let messages = [
        PeerMessage::TransferPrepare(Box::new(prepare.clone())),
        PeerMessage::TransferAck { transfer, entity },
        PeerMessage::TransferCommit(control.clone()),
        PeerMessage::TransferCommitAck { transfer },
    ];
    const ROUNDS: u32 = 5_000;
    let began = Instant::now();
    for _ in 0..ROUNDS {
        for m in &messages {
            let Frame::Binary(bytes) = codec.encode(&PeerMessage::routed(from, to, m)) else {
                unreachable!("binary codec")
            };
            let PeerMessage::Routed { payload, .. } = codec.decode::<PeerMessage>(&bytes).unwrap()
            else {
                unreachable!("routed")
            };
            std::hint::black_box(PeerMessage::unroute(&payload).unwrap());
        }
    }
    let routed = began.elapsed() / ROUNDS;
    let began = Instant::now();
    for _ in 0..ROUNDS {
        let b = bitcode::encode(&prepare);
        std::hint::black_box(bitcode::decode::<TransferPrepare>(&b).unwrap());
        let b = bitcode::encode(&(transfer, entity));
        std::hint::black_box(bitcode::decode::<(TransferId, EntityId)>(&b).unwrap());
        let b = bitcode::encode(&control);
        std::hint::black_box(bitcode::decode::<TransferControl>(&b).unwrap());
        let b = bitcode::encode(&transfer);
        std::hint::black_box(bitcode::decode::<TransferId>(&b).unwrap());
    }
    (routed, began.elapsed() / ROUNDS)
}
