//! Round trips of every message through both codecs, and the typed errors.

use proptest::prelude::*;

use super::*;
use crate::ids::{ClientId, PeerId, SessionId};

fn codecs() -> [Codec; 2] {
    Encoding::ALL.map(|e| Codec::new(e, usize::MAX))
}

fn round_trip<M: WireMessage + PartialEq + std::fmt::Debug>(message: &M) {
    for codec in codecs() {
        let frame = codec.encode(message);
        let back: M = codec
            .decode(frame.as_bytes())
            .expect("decodes what it encoded");
        assert_eq!(&back, message, "{:?}", codec.encoding());
    }
}

proptest! {
    #[test]
    fn client_messages_round_trip(m in any::<ClientMessage>()) { round_trip(&m) }

    #[test]
    fn server_messages_round_trip(m in any::<ServerMessage>()) { round_trip(&m) }

    #[test]
    fn peer_messages_round_trip(m in any::<PeerMessage>()) { round_trip(&m) }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for codec in codecs() {
            let _ = codec.decode::<ClientMessage>(&bytes);
            let _ = codec.decode::<PeerMessage>(&bytes);
        }
    }
}

#[test]
fn json_uses_documented_shape() {
    let hello = ClientMessage::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        display_name: "Ada".into(),
        client_id: ClientId::from_u128(1),
    });
    let json = Codec::new(Encoding::Json, MAX_CLIENT_FRAME_BYTES).encode(&hello);
    assert_eq!(
        json,
        Frame::Text(
            r#"{"type":"hello","protocol_version":1,"display_name":"Ada","client_id":"00000000-0000-0000-0000-000000000001"}"#
                .into()
        )
    );
    let err = ServerMessage::Error {
        code: ErrorCode::VersionMismatch,
        message: "x".into(),
    };
    let text = Codec::new(Encoding::Json, 1024).encode(&err);
    assert_eq!(
        text.as_bytes(),
        br#"{"type":"error","code":"version_mismatch","message":"x"}"#
    );
}

#[test]
fn binary_is_compact() {
    let welcome = ServerMessage::Welcome(Welcome {
        protocol_version: 1,
        peer_id: PeerId::from_u128(u128::MAX),
        peer_name: "kitchen".into(),
        session_id: SessionId::from_u128(7),
        max_frame_bytes: 65536,
    });
    let bin = Codec::new(Encoding::Binary, 1024).encode(&welcome);
    let json = Codec::new(Encoding::Json, 1024).encode(&welcome);
    assert!(matches!(bin, Frame::Binary(_)));
    assert!(
        bin.len() * 3 < json.len(),
        "{} vs {}",
        bin.len(),
        json.len()
    );
}

#[test]
fn oversized_frames_are_refused_before_parsing() {
    for encoding in Encoding::ALL {
        let codec = Codec::new(encoding, 16);
        let big = vec![b'{'; 17];
        assert_eq!(
            codec.decode::<ClientMessage>(&big),
            Err(CodecError::TooLarge { len: 17, max: 16 })
        );
    }
}

#[test]
fn empty_and_garbage_frames_are_typed_errors() {
    for codec in codecs() {
        assert_eq!(
            codec.decode::<ClientMessage>(b""),
            Err(CodecError::UnexpectedEnd)
        );
        assert!(matches!(
            codec.decode::<ClientMessage>(b"\xff\x00garbage"),
            Err(CodecError::Malformed { .. })
        ));
    }
    let json = Codec::new(Encoding::Json, 1024);
    let unknown = json.decode::<ClientMessage>(br#"{"type":"launch_missiles"}"#);
    assert!(
        matches!(unknown, Err(CodecError::Malformed { detail, .. }) if detail.contains("launch_missiles"))
    );
}

#[test]
fn subprotocols_select_encodings() {
    assert_eq!(
        Encoding::from_subprotocol("multiverse.v1.bin"),
        Some(Encoding::Binary)
    );
    assert_eq!(
        Encoding::from_subprotocol("multiverse.v1.json"),
        Some(Encoding::Json)
    );
    assert_eq!(Encoding::from_subprotocol("multiverse.v2.bin"), None);
}

#[test]
fn close_codes_round_trip_through_numbers() {
    for code in [1000, 1001, 1009, 4000, 4001, 4002, 4003] {
        assert_eq!(CloseCode::from_code(code).map(CloseCode::code), Some(code));
    }
    assert_eq!(CloseCode::from_code(4999), None);
    assert_eq!(
        ErrorCode::VersionMismatch.close_code(),
        CloseCode::VersionMismatch
    );
    assert!(!ErrorCode::MalformedFrame.is_fatal());
}

#[test]
fn hello_validation() {
    let mut hello = Hello {
        protocol_version: 1,
        display_name: "Grace".into(),
        client_id: ClientId::from_u128(9),
    };
    assert_eq!(hello.validate(), Ok(()));
    hello.display_name = "   ".into();
    assert_eq!(hello.validate(), Err(ValidationError::EmptyDisplayName));
    hello.display_name = "x".repeat(49);
    assert!(matches!(
        hello.validate(),
        Err(ValidationError::DisplayNameTooLong { .. })
    ));
    hello.display_name = "bell\u{7}".into();
    assert_eq!(hello.validate(), Err(ValidationError::ControlCharacters));
}

/// The variant's JSON tag. Exhaustive on purpose: a new variant must be named here, and
/// [`PEER_VARIANTS`] must list it for the coverage test below to pass.
fn peer_variant(m: &PeerMessage) -> &'static str {
    match m {
        PeerMessage::Hello(_) => "hello",
        PeerMessage::Welcome(_) => "welcome",
        PeerMessage::Error { .. } => "error",
        PeerMessage::ListUniverses => "list_universes",
        PeerMessage::Universes { .. } => "universes",
        PeerMessage::GetConfig { .. } => "get_config",
        PeerMessage::Config { .. } => "config",
        PeerMessage::PassageOpen(_) => "passage_open",
        PeerMessage::PassagePending { .. } => "passage_pending",
        PeerMessage::PassageAccept(_) => "passage_accept",
        PeerMessage::PassageReject { .. } => "passage_reject",
        PeerMessage::PassageClose { .. } => "passage_close",
        PeerMessage::Heartbeat { .. } => "heartbeat",
        PeerMessage::HeartbeatAck { .. } => "heartbeat_ack",
        PeerMessage::Subscribe(_) => "subscribe",
        PeerMessage::Unsubscribe { .. } => "unsubscribe",
        PeerMessage::StreamFrame { .. } => "stream_frame",
        PeerMessage::TransferPrepare(_) => "transfer_prepare",
        PeerMessage::TransferAck { .. } => "transfer_ack",
        PeerMessage::TransferNack { .. } => "transfer_nack",
        PeerMessage::TransferCommit(_) => "transfer_commit",
        PeerMessage::TransferCommitAck { .. } => "transfer_commit_ack",
        PeerMessage::TransferAbort(_) => "transfer_abort",
        PeerMessage::TransferAbortAck { .. } => "transfer_abort_ack",
        PeerMessage::Routed { .. } => "routed",
        PeerMessage::Interact(_) => "interact",
    }
}

const PEER_VARIANTS: [&str; 26] = [
    "hello",
    "welcome",
    "error",
    "list_universes",
    "universes",
    "get_config",
    "config",
    "passage_open",
    "passage_pending",
    "passage_accept",
    "passage_reject",
    "passage_close",
    "heartbeat",
    "heartbeat_ack",
    "subscribe",
    "unsubscribe",
    "stream_frame",
    "transfer_prepare",
    "transfer_ack",
    "transfer_nack",
    "transfer_commit",
    "transfer_commit_ack",
    "transfer_abort",
    "transfer_abort_ack",
    "routed",
    "interact",
];

#[test]
fn every_peer_message_variant_round_trips_through_both_codecs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = any::<PeerMessage>();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20_000 {
        let m = strategy.new_tree(&mut runner).expect("generates").current();
        round_trip(&m);
        if let Frame::Text(json) = Codec::new(Encoding::Json, usize::MAX).encode(&m) {
            let tag = format!(r#"{{"type":"{}""#, peer_variant(&m));
            assert!(json.starts_with(&tag), "{json} should start with {tag}");
        }
        seen.insert(peer_variant(&m));
        if seen.len() == PEER_VARIANTS.len() {
            break;
        }
    }
    let all: std::collections::BTreeSet<&str> = PEER_VARIANTS.into_iter().collect();
    assert_eq!(seen, all, "every variant generated and round-tripped");
}

#[test]
fn peer_messages_are_reasonably_sized_and_transfer_json_is_documented() {
    assert!(
        std::mem::size_of::<PeerMessage>() <= 64,
        "{} bytes: box the large variants",
        std::mem::size_of::<PeerMessage>()
    );
    let nack = PeerMessage::TransferNack {
        transfer: crate::ids::TransferId::from_u128(1),
        reason: NackReason::ChecksumMismatch,
    };
    let json = Codec::new(Encoding::Json, 1024).encode(&nack);
    assert_eq!(
        json.as_bytes(),
        br#"{"type":"transfer_nack","transfer":"00000000-0000-0000-0000-000000000001","reason":"checksum_mismatch"}"#
    );
}

/// Every JSON example in docs/PROTOCOL.md is a message this build decodes (the doc cannot
/// drift from the code unnoticed). Examples elided with `...` inside a string still parse.
#[test]
fn every_json_example_in_the_protocol_doc_decodes() {
    let doc = include_str!("../../../docs/PROTOCOL.md");
    let mut examples = 0;
    let mut in_block = false;
    for line in doc.lines() {
        match line.trim() {
            "```json" => in_block = true,
            "```" => in_block = false,
            text if in_block && !text.is_empty() => {
                examples += 1;
                let decodes = serde_json::from_str::<ClientMessage>(text).is_ok()
                    || serde_json::from_str::<ServerMessage>(text).is_ok()
                    || serde_json::from_str::<PeerMessage>(text).is_ok();
                assert!(decodes, "docs/PROTOCOL.md example does not decode: {text}");
            }
            _ => {}
        }
    }
    assert!(examples > 40, "only {examples} examples found");
}
