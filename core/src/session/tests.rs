use super::*;
use crate::wire::Frame;

const T0: Moment = Moment::ZERO;

fn session(encoding: Encoding) -> ClientSession {
    let identity = PeerIdentity {
        peer_id: PeerId::from_u128(1),
        peer_name: "kitchen".into(),
    };
    ClientSession::new(
        SessionConfig::default(),
        identity,
        SessionId::from_u128(2),
        encoding,
        T0,
    )
}

fn hello(version: u32, name: &str) -> ClientMessage {
    ClientMessage::Hello(Hello {
        protocol_version: version,
        display_name: name.into(),
        client_id: ClientId::from_u128(3),
    })
}

fn send(s: &mut ClientSession, m: &ClientMessage) {
    let frame: Frame = s.codec().encode(m);
    s.handle_frame(frame.as_bytes(), T0);
}

fn drain(s: &mut ClientSession) -> Vec<SessionOutput> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn error_codes(outputs: &[SessionOutput]) -> Vec<ErrorCode> {
    outputs
        .iter()
        .filter_map(|o| match o {
            SessionOutput::Send(ServerMessage::Error { code, .. }) => Some(*code),
            _ => None,
        })
        .collect()
}

fn close_code(outputs: &[SessionOutput]) -> Option<CloseCode> {
    outputs.iter().find_map(|o| match o {
        SessionOutput::Close { code, .. } => Some(*code),
        _ => None,
    })
}

#[test]
fn hello_gets_welcome_in_both_encodings() {
    for encoding in Encoding::ALL {
        let mut s = session(encoding);
        send(&mut s, &hello(PROTOCOL_VERSION, "  Ada "));
        let out = drain(&mut s);
        assert!(
            matches!(&out[0], SessionOutput::Send(ServerMessage::Welcome(w))
            if w.peer_name == "kitchen" && w.session_id == SessionId::from_u128(2))
        );
        assert_eq!(
            out[1],
            SessionOutput::Opened {
                client_id: ClientId::from_u128(3),
                display_name: "Ada".into()
            }
        );
        assert!(s.is_open());
        assert_eq!(s.poll_timeout(), None);
    }
}

#[test]
fn version_mismatch_is_an_error_then_a_close() {
    let mut s = session(Encoding::Json);
    send(&mut s, &hello(PROTOCOL_VERSION + 1, "Ada"));
    let out = drain(&mut s);
    assert_eq!(error_codes(&out), [ErrorCode::VersionMismatch]);
    assert_eq!(close_code(&out), Some(CloseCode::VersionMismatch));
    assert!(s.is_closed());
    send(&mut s, &hello(PROTOCOL_VERSION, "Ada"));
    assert!(drain(&mut s).is_empty(), "a closed session ignores input");
}

#[test]
fn messages_before_hello_are_refused() {
    let mut s = session(Encoding::Binary);
    send(&mut s, &ClientMessage::Ping { nonce: 1 });
    let out = drain(&mut s);
    assert_eq!(error_codes(&out), [ErrorCode::HandshakeRequired]);
    assert_eq!(close_code(&out), Some(CloseCode::ProtocolError));
}

#[test]
fn invalid_hello_is_refused() {
    let mut s = session(Encoding::Json);
    send(&mut s, &hello(PROTOCOL_VERSION, ""));
    let out = drain(&mut s);
    assert_eq!(error_codes(&out), [ErrorCode::InvalidHello]);
    assert_eq!(close_code(&out), Some(CloseCode::InvalidHello));
}

#[test]
fn garbage_gets_errors_and_the_session_survives_until_the_limit() {
    let mut s = session(Encoding::Binary);
    s.handle_frame(b"\x00garbage", T0);
    let out = drain(&mut s);
    assert_eq!(error_codes(&out), [ErrorCode::MalformedFrame]);
    assert_eq!(close_code(&out), None);
    send(&mut s, &hello(PROTOCOL_VERSION, "Ada"));
    assert!(s.is_open());
    drain(&mut s);
    for _ in 1..7 {
        s.handle_frame(b"\xffnope", T0);
    }
    assert_eq!(close_code(&drain(&mut s)), None, "7 errors are tolerated");
    s.handle_frame(b"\xffnope", T0);
    let out = drain(&mut s);
    assert_eq!(
        error_codes(&out),
        [ErrorCode::MalformedFrame, ErrorCode::TooManyErrors]
    );
    assert_eq!(close_code(&out), Some(CloseCode::ProtocolError));
}

#[test]
fn oversized_frames_are_refused_without_parsing() {
    let mut s = session(Encoding::Json);
    s.handle_frame(&vec![b' '; MAX_CLIENT_FRAME_BYTES + 1], T0);
    assert_eq!(error_codes(&drain(&mut s)), [ErrorCode::FrameTooLarge]);
}

#[test]
fn ping_pong_and_second_hello() {
    let mut s = session(Encoding::Json);
    send(&mut s, &hello(PROTOCOL_VERSION, "Ada"));
    drain(&mut s);
    send(&mut s, &ClientMessage::Ping { nonce: 42 });
    assert_eq!(
        drain(&mut s),
        [SessionOutput::Send(ServerMessage::Pong { nonce: 42 })]
    );
    send(&mut s, &hello(PROTOCOL_VERSION, "Ada"));
    assert_eq!(error_codes(&drain(&mut s)), [ErrorCode::UnexpectedMessage]);
    assert!(s.is_open());
}

#[test]
fn handshake_times_out() {
    let mut s = session(Encoding::Binary);
    let deadline = s.poll_timeout().expect("a handshake deadline");
    assert_eq!(deadline, T0.plus(Duration::from_secs(10)));
    s.handle_timeout(Moment(deadline.0 - 1));
    assert!(drain(&mut s).is_empty());
    s.handle_timeout(deadline);
    let out = drain(&mut s);
    assert_eq!(error_codes(&out), [ErrorCode::HandshakeTimeout]);
    assert_eq!(close_code(&out), Some(CloseCode::HandshakeTimeout));
}

#[test]
fn shutdown_closes_with_going_away_and_reasons_fit_a_close_frame() {
    let mut s = session(Encoding::Binary);
    s.handle_shutdown();
    assert_eq!(close_code(&drain(&mut s)), Some(CloseCode::GoingAway));
    let mut s = session(Encoding::Json);
    send(&mut s, &hello(PROTOCOL_VERSION + 7, "Ada"));
    for o in drain(&mut s) {
        if let SessionOutput::Close { reason, .. } = o {
            assert!(reason.len() <= 123);
        }
    }
}
