//! Fan-out primitives shared by hosts and rooms: a message encoded at most once per encoding,
//! and the bounded per-session queue nobody ever waits on.

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use multiverse_core::wire::{
    Codec, Encoding, ErrorCode, Frame, ServerMessage, MAX_SERVER_FRAME_BYTES,
};
use tokio::sync::mpsc;

/// An encoded frame, cheap to clone for every recipient.
#[derive(Debug, Clone)]
pub enum WireFrame {
    /// A binary WebSocket message.
    Binary(Bytes),
    /// A text WebSocket message.
    Text(Utf8Bytes),
}

impl WireFrame {
    /// Encodes a message for one encoding.
    pub fn encode(encoding: Encoding, message: &ServerMessage) -> WireFrame {
        match Codec::new(encoding, MAX_SERVER_FRAME_BYTES).encode(message) {
            Frame::Binary(b) => WireFrame::Binary(Bytes::from(b)),
            Frame::Text(t) => WireFrame::Text(Utf8Bytes::from(t)),
        }
    }
}

/// A message being fanned out: encoded at most once per encoding, on first need.
#[derive(Debug)]
pub struct Encoded<'a> {
    message: &'a ServerMessage,
    frames: [Option<WireFrame>; 2],
}

impl<'a> Encoded<'a> {
    /// Nothing encoded yet.
    pub fn new(message: &'a ServerMessage) -> Self {
        Encoded {
            message,
            frames: [None, None],
        }
    }

    /// The frame for `encoding`, encoding it the first time.
    pub fn frame(&mut self, encoding: Encoding) -> WireFrame {
        let slot = &mut self.frames[usize::from(encoding == Encoding::Json)];
        slot.get_or_insert_with(|| WireFrame::encode(encoding, self.message))
            .clone()
    }
}

/// Where hosts and rooms send one session's frames. Nobody ever waits on it: a full queue
/// is the sender's to handle (drop and resync, or disconnect).
#[derive(Debug, Clone)]
pub struct Outbox {
    /// The session's bounded queue.
    pub tx: mpsc::Sender<WireFrame>,
    /// The session's encoding.
    pub encoding: Encoding,
}

impl Outbox {
    /// Queues `message` (encoded through `encoded`, shared by all recipients) without waiting.
    pub fn offer(
        &self,
        encoded: &mut Encoded<'_>,
    ) -> Result<(), mpsc::error::TrySendError<WireFrame>> {
        self.tx.try_send(encoded.frame(self.encoding))
    }

    /// Queues an error frame without waiting; returns whether it was queued.
    pub fn try_error(&self, code: ErrorCode, message: String) -> bool {
        let error = ServerMessage::Error { code, message };
        self.offer(&mut Encoded::new(&error)).is_ok()
    }
}
