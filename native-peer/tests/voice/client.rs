//! A voice test client: a WebSocket for signalling and a str0m `Rtc` on its own UDP socket
//! on 127.0.0.1, publishing fake Opus frames (20 ms apart) and counting what it receives
//! from each member.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use multiverse_core::ids::{ClientId, RoomId};
use multiverse_core::wire::{ClientMessage, Encoding, ErrorCode, Hello, ServerMessage};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn codec() -> multiverse_core::wire::Codec {
    multiverse_core::wire::Codec::new(ENC, multiverse_core::wire::MAX_SERVER_FRAME_BYTES)
}

async fn send(ws: &mut Ws, _enc: Encoding, message: &ClientMessage) {
    use futures::SinkExt;
    let multiverse_core::wire::Frame::Text(text) = codec().encode(message) else {
        unreachable!("the JSON codec makes text frames")
    };
    ws.send(Message::Text(text.into()))
        .await
        .expect("WebSocket open");
}

/// The next message (skipping pings); panics after 10 s.
async fn recv(ws: &mut Ws, _enc: Encoding) -> ServerMessage {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s");
        if let Message::Text(text) = next.expect("socket open").expect("no socket error") {
            return codec().decode(text.as_bytes()).expect("a valid frame");
        }
    }
}

/// Signalling is JSON, as a third-party client would speak it.
const ENC: Encoding = Encoding::Json;
/// One Opus frame every 20 ms: 960 samples at 48 kHz.
const FRAME: Duration = Duration::from_millis(20);

/// What the client has seen so far.
#[derive(Debug, Default)]
pub struct Seen {
    /// ICE and DTLS are up.
    pub connected: bool,
    /// Media frames received, by the member whose track carried them.
    pub frames_from: BTreeMap<u64, u64>,
    /// The latest `voice_hearing`.
    pub hearing: Vec<u64>,
    /// Errors the peer sent.
    pub errors: Vec<(ErrorCode, String)>,
    /// `voice_ended` reasons.
    pub ended: Vec<String>,
    /// Renegotiation offers answered.
    pub offers: usize,
    /// The media lines of the latest `voice_tracks`: mid → member.
    pub tracks: BTreeMap<String, u64>,
    /// Which of those lines carry video.
    pub video_mids: Vec<String>,
    /// Video frames received, by the member whose camera sent them.
    pub video_frames_from: BTreeMap<u64, u64>,
    /// Keyframe requests that reached this client's camera.
    pub keyframe_requests: u64,
}

/// What a test asks of a client's task.
#[derive(Debug)]
enum Control {
    /// Send a message on the WebSocket.
    Send(ClientMessage),
    /// Ask for a keyframe on every video line received (as a decoder that lost its way).
    RequestKeyframes,
}

/// A member with voice on, driven by its own task.
pub struct VoiceClient {
    /// Its membership in the room.
    pub member: u64,
    /// What it has seen.
    pub seen: Arc<Mutex<Seen>>,
    outgoing: mpsc::Sender<Control>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl VoiceClient {
    /// Connects, joins `room`, offers an Opus track and starts the client's task.
    pub async fn join(peer: SocketAddr, id: u128, room: &str) -> VoiceClient {
        Self::connect(peer, id, room, false).await
    }

    /// Like [`VoiceClient::join`], with a camera too: a VP8 line sending 10 frames a second.
    pub async fn join_with_camera(peer: SocketAddr, id: u128, room: &str) -> VoiceClient {
        Self::connect(peer, id, room, true).await
    }

    async fn connect(peer: SocketAddr, id: u128, room: &str, with_camera: bool) -> VoiceClient {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{peer}/ws").into_client_request().unwrap();
        let protocol = ENC.subprotocol().parse().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol);
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let hello = Hello {
            protocol_version: multiverse_core::wire::PROTOCOL_VERSION,
            display_name: format!("voice {id}"),
            client_id: ClientId::from_u128(id),
        };
        send(&mut ws, ENC, &ClientMessage::Hello(hello)).await;
        assert!(matches!(
            recv(&mut ws, ENC).await,
            ServerMessage::Welcome(_)
        ));
        let join = ClientMessage::JoinRoom {
            room: RoomId::new(room).unwrap(),
            invite: None,
        };
        send(&mut ws, ENC, &join).await;
        let member = loop {
            match recv(&mut ws, ENC).await {
                ServerMessage::RoomJoined(welcome) => break welcome.you,
                ServerMessage::Error { code, message } => {
                    panic!("client {id} could not join {room}: {code:?}: {message}")
                }
                _ => {}
            }
        };
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let mut rtc = Rtc::builder()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mic = change.add_media(
            MediaKind::Audio,
            Direction::SendOnly,
            Some(format!("mic-{id}")),
            None,
            None,
        );
        let camera = with_camera.then(|| {
            let stream = Some(format!("camera-{id}"));
            change.add_media(MediaKind::Video, Direction::SendOnly, stream, None, None)
        });
        let (offer, pending) = change.apply().expect("an offer");
        let voice = ClientMessage::VoiceOffer {
            sdp: offer.to_sdp_string(),
        };
        send(&mut ws, ENC, &voice).await;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (outgoing, rx) = mpsc::channel(64);
        let stop = CancellationToken::new();
        let driver = Driver {
            ws,
            rtc,
            socket,
            local,
            mic,
            camera,
            pending: Some(pending),
            seen: seen.clone(),
            frames_sent: 0,
        };
        let task = tokio::spawn(driver.run(rx, stop.clone()));
        VoiceClient {
            member,
            seen,
            outgoing,
            stop,
            task,
        }
    }

    /// Sends a message on the client's WebSocket.
    pub async fn send(&self, message: ClientMessage) {
        self.outgoing.send(Control::Send(message)).await.unwrap();
    }

    /// Asks the senders of every video line received for a keyframe (RTCP PLI).
    pub async fn request_keyframes(&self) {
        self.outgoing.send(Control::RequestKeyframes).await.unwrap();
    }

    /// Frames received so far from `member`.
    pub fn frames_from(&self, member: u64) -> u64 {
        let seen = self.seen.lock().unwrap();
        seen.frames_from.get(&member).copied().unwrap_or(0)
    }

    /// Waits (at most `limit`) until `check` holds for what the client has seen.
    pub async fn wait_for(&self, limit: Duration, what: &str, check: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if check(&self.seen.lock().unwrap()) {
                return;
            }
            if Instant::now() >= deadline {
                let seen = format!("{:?}", self.seen.lock().unwrap());
                panic!(
                    "member {}: gave up waiting for {what} after {limit:?}; seen {seen}",
                    self.member
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the client (closing its WebSocket: the peer ends its voice).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// The task behind a [`VoiceClient`].
struct Driver {
    ws: Ws,
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mic: Mid,
    camera: Option<Mid>,
    pending: Option<SdpPendingOffer>,
    seen: Arc<Mutex<Seen>>,
    frames_sent: u64,
}

impl Driver {
    async fn run(mut self, mut outgoing: mpsc::Receiver<Control>, stop: CancellationToken) {
        let mut buf = vec![0u8; 2048];
        let mut frames = tokio::time::interval(FRAME);
        // Presence heartbeats, as the web client sends them: a silent member is "gone".
        let mut presence = tokio::time::interval(Duration::from_secs(5));
        // Bounded: a test never runs a client for more than two minutes.
        let end = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let timeout = self.drain();
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep_until(end) => break,
                Some(control) = outgoing.recv() => match control {
                    Control::Send(message) => send(&mut self.ws, ENC, &message).await,
                    Control::RequestKeyframes => self.request_keyframes(),
                },
                frame = self.ws.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        let message = codec().decode(text.as_bytes()).unwrap();
                        self.signalling(message).await;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                },
                received = self.socket.recv_from(&mut buf) => {
                    let (n, source) = received.unwrap();
                    let input = Input::Receive(Instant::now(), Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: self.local,
                        contents: buf[..n].try_into().unwrap(),
                    });
                    self.rtc.handle_input(input).unwrap();
                }
                _ = tokio::time::sleep_until(timeout.into()) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now())).unwrap();
                }
                _ = frames.tick() => self.speak(),
                _ = presence.tick() => {
                    send(&mut self.ws, ENC, &ClientMessage::Presence { active: true }).await;
                }
            }
        }
        let _ = futures::SinkExt::close(&mut self.ws).await;
    }

    async fn signalling(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::VoiceAnswer { sdp } => {
                let answer = SdpAnswer::from_sdp_string(&sdp).unwrap();
                let pending = self.pending.take().expect("an offer of ours is pending");
                self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
            }
            ServerMessage::VoiceOffer { sdp } => {
                let offer = SdpOffer::from_sdp_string(&sdp).unwrap();
                let answer = self.rtc.sdp_api().accept_offer(offer).unwrap();
                self.seen.lock().unwrap().offers += 1;
                let reply = ClientMessage::VoiceAnswer {
                    sdp: answer.to_sdp_string(),
                };
                send(&mut self.ws, ENC, &reply).await;
            }
            ServerMessage::VoiceTracks { tracks } => {
                let mut seen = self.seen.lock().unwrap();
                seen.video_mids = tracks
                    .iter()
                    .filter(|t| t.kind == multiverse_core::wire::MediaKind::Video)
                    .map(|t| t.mid.clone())
                    .collect();
                seen.tracks = tracks.into_iter().map(|t| (t.mid, t.member)).collect();
            }
            ServerMessage::VoiceHearing { members } => self.seen.lock().unwrap().hearing = members,
            ServerMessage::VoiceEnded { reason } => self.seen.lock().unwrap().ended.push(reason),
            ServerMessage::Error { code, message } => {
                self.seen.lock().unwrap().errors.push((code, message));
            }
            _ => {}
        }
    }

    /// Sends one fake Opus frame, once connected.
    fn speak(&mut self) {
        if !self.seen.lock().unwrap().connected {
            return;
        }
        let Some(writer) = self.rtc.writer(self.mic) else {
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .map(|p| p.pt())
        else {
            return;
        };
        let time = MediaTime::new(self.frames_sent * 960, Frequency::FORTY_EIGHT_KHZ);
        // An Opus TOC byte (SILK, 20 ms, mono) and a payload the forwarder never decodes.
        let mut payload = vec![0x08u8];
        payload.extend_from_slice(&self.frames_sent.to_be_bytes());
        payload.resize(60, 0xA5);
        writer.write(pt, Instant::now(), time, payload).unwrap();
        if self.frames_sent.is_multiple_of(5) {
            self.film();
        }
        self.frames_sent += 1;
    }

    /// Sends one fake VP8 frame on the camera line, if there is one.
    fn film(&mut self) {
        let Some(writer) = self.camera.and_then(|mid| self.rtc.writer(mid)) else {
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Vp8)
            .map(|p| p.pt())
        else {
            return;
        };
        let time = MediaTime::new(self.frames_sent * 1800, Frequency::NINETY_KHZ);
        // A VP8 key frame header (frame tag, start code, 320×240) and filler.
        let mut payload = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
        payload.resize(300, 0x5A);
        writer.write(pt, Instant::now(), time, payload).unwrap();
    }

    fn request_keyframes(&mut self) {
        let mids: Vec<String> = self.seen.lock().unwrap().video_mids.clone();
        for mid in mids {
            let Some(mut writer) = self.rtc.writer(Mid::from(mid.as_str())) else {
                continue;
            };
            let _ = writer.request_keyframe(None, KeyframeRequestKind::Pli);
        }
    }

    /// Drains the `Rtc`; returns when it next wants a timeout.
    fn drain(&mut self) -> Instant {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(t) => return t,
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => self.seen.lock().unwrap().connected = true,
                Output::Event(Event::MediaData(data)) => {
                    let mut seen = self.seen.lock().unwrap();
                    let mid = data.mid.to_string();
                    let from = seen.tracks.get(&mid).copied();
                    if let Some(member) = from {
                        let counts = if seen.video_mids.contains(&mid) {
                            &mut seen.video_frames_from
                        } else {
                            &mut seen.frames_from
                        };
                        *counts.entry(member).or_default() += 1;
                    }
                }
                Output::Event(Event::KeyframeRequest(_)) => {
                    self.seen.lock().unwrap().keyframe_requests += 1;
                }
                Output::Event(_) => {}
            }
        }
    }
}
