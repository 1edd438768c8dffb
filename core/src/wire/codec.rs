//! Encoding and decoding frames, synchronously and buffer-based.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Encoding;

/// Anything that travels on the wire: every message enum implements it.
pub trait WireMessage:
    Serialize + DeserializeOwned + bitcode::Encode + bitcode::DecodeOwned
{
}

impl<T> WireMessage for T where
    T: Serialize + DeserializeOwned + bitcode::Encode + bitcode::DecodeOwned
{
}

/// One encoded WebSocket message, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A binary frame (the bitcode encoding).
    Binary(Vec<u8>),
    /// A text frame (the JSON encoding).
    Text(String),
}

impl Frame {
    /// The frame's payload.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Frame::Binary(b) => b,
            Frame::Text(t) => t.as_bytes(),
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The frame is larger than the receiver's limit; it was not parsed at all.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Length of the refused frame.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame is empty.
    #[error("empty frame")]
    UnexpectedEnd,
    /// The bytes are not a valid message in this encoding.
    #[error("malformed {encoding} frame: {detail}")]
    Malformed {
        /// `json` or `binary`.
        encoding: &'static str,
        /// What the decoder reported.
        detail: String,
    },
}

/// Encodes and decodes one connection's messages in one [`Encoding`], enforcing a maximum
/// inbound frame size before any parsing happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    encoding: Encoding,
    max_inbound: usize,
}

impl Codec {
    /// A codec for `encoding` that refuses inbound frames over `max_inbound` bytes.
    pub const fn new(encoding: Encoding, max_inbound: usize) -> Self {
        Codec {
            encoding,
            max_inbound,
        }
    }

    /// The encoding of this codec.
    pub const fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The inbound frame limit, in bytes.
    pub const fn max_inbound(&self) -> usize {
        self.max_inbound
    }

    /// Encodes a message into a frame of the matching kind (binary or text).
    ///
    /// Panics for [`Encoding::Json`] when the crate is built without its `json` feature (the
    /// browser client): choosing an encoding the build cannot speak is a programming error.
    pub fn encode<M: WireMessage>(&self, message: &M) -> Frame {
        match self.encoding {
            Encoding::Binary => Frame::Binary(encode_bitcode(message)),
            #[cfg(feature = "json")]
            Encoding::Json => Frame::Text(
                serde_json::to_string(message)
                    .expect("wire messages have string keys and finite numbers"),
            ),
            #[cfg(not(feature = "json"))]
            Encoding::Json => panic!("multiverse-core was built without its `json` feature"),
        }
    }

    /// Decodes a frame's payload. JSON is accepted from text or binary frames alike.
    pub fn decode<M: WireMessage>(&self, payload: &[u8]) -> Result<M, CodecError> {
        if payload.len() > self.max_inbound {
            return Err(CodecError::TooLarge {
                len: payload.len(),
                max: self.max_inbound,
            });
        }
        if payload.is_empty() {
            return Err(CodecError::UnexpectedEnd);
        }
        match self.encoding {
            Encoding::Binary => decode_bitcode(payload).map_err(|e| CodecError::Malformed {
                encoding: "binary",
                detail: e.to_string(),
            }),
            #[cfg(feature = "json")]
            Encoding::Json => serde_json::from_slice(payload).map_err(|e| CodecError::Malformed {
                encoding: "json",
                detail: e.to_string(),
            }),
            #[cfg(not(feature = "json"))]
            Encoding::Json => Err(CodecError::Malformed {
                encoding: "json",
                detail: "this build has no JSON codec (the `json` feature is off)".into(),
            }),
        }
    }
}

std::thread_local! {
    /// bitcode builds an encoder and decoder for a message's whole type tree on every plain
    /// `encode`/`decode` call; a buffer keeps them, which for the large message enums is most
    /// of the cost of a small message.
    static BITCODE: std::cell::RefCell<bitcode::Buffer> = std::cell::RefCell::new(bitcode::Buffer::new());
}

/// bitcode-encodes `value` with this thread's reusable buffer.
pub(crate) fn encode_bitcode<T: bitcode::Encode + ?Sized>(value: &T) -> Vec<u8> {
    BITCODE.with(|b| match b.try_borrow_mut() {
        Ok(mut buffer) => buffer.encode(value).to_vec(),
        Err(_) => bitcode::encode(value),
    })
}

/// bitcode-decodes with this thread's reusable buffer.
pub(crate) fn decode_bitcode<T: bitcode::DecodeOwned>(bytes: &[u8]) -> Result<T, bitcode::Error> {
    BITCODE.with(|b| match b.try_borrow_mut() {
        Ok(mut buffer) => buffer.decode(bytes),
        Err(_) => bitcode::decode(bytes),
    })
}
