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
