//! Live universe streaming: what a subscriber asked for, what travels, and both ends.
//!
//! | part | holds |
//! |---|---|
//! | this module | [`StreamConfiguration`], [`EntityFilter`], [`DistanceRates`], modes, validation |
//! | [`state`] | wire forms: [`EntityState`], [`ComponentDelta`], [`Moves`], [`StreamUpdate`], [`Snapshot`]; quantisation |
//! | [`server`] | [`StreamServer`]: per-universe subscribers, interest groups, snapshot + deltas |
//! | [`mirror`] | [`StreamCache`]: the client's mirror, gap detection and resync |
//! | `diff` | interest selection and the per-group diff |
//! | `grid` | the spatial grid used for viewport queries |
//!
//! ## Interest groups
//! Subscribers with identical interest (configuration + viewport) share one *group*: the
//! group's model of the mirror, its diff and its encoded frame are computed once per sync and
//! sent to every member, which is how 100 viewers of the whole universe cost one diff. A
//! subscriber that changes its viewport leaves its group by copying the group's model (its
//! mirror is exactly that model), so it continues with deltas, never a fresh snapshot.
//!
//! ## Ordering
//! Every frame a group sends carries a sequence number `seq`; an update also carries the
//! `base_seq` it applies to. A mirror that sees any other base asks for a resync and gets a
//! snapshot. Positions travel quantised to 1/16 of a world unit.

mod diff;
mod grid;
pub mod mirror;
pub mod server;
pub mod state;

use serde::{Deserialize, Serialize};

pub use mirror::{MirrorError, StreamCache};
pub use server::{StreamError, StreamOutput, StreamServer, SubscriberId};
pub use state::{
    dequantise, quantise, ComponentDelta, EntityChange, EntityState, Moves, Snapshot, StreamUpdate,
    POSITION_QUANTUM,
};

use crate::universe::{Rect, Vec2};

/// Most events carried by one update.
pub const MAX_EVENTS_PER_UPDATE: usize = 256;
/// Most entities one subscription may stream (and a mirror may hold by default).
pub const MAX_STREAM_ENTITIES: u32 = 10_000;
/// Most kinds or tags in one filter.
pub const MAX_FILTER_TERMS: usize = 32;
/// Longest kind or tag in a filter, in bytes.
pub const MAX_FILTER_TERM_LEN: usize = 64;
/// Largest viewport side, in world units.
pub const MAX_VIEWPORT_SIDE: f32 = 1.0e6;
/// Largest viewport coordinate magnitude, in world units.
pub const MAX_VIEWPORT_COORD: f32 = 1.0e7;

/// What a subscriber wants streamed, and how (the seed's `StreamConfiguration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct StreamConfiguration {
    /// Frames per second, 1–60 (capped by the universe's tick rate).
    pub sync_hz: u32,
    /// Stream entities at all (false: events and terrain only).
    pub include_entities: bool,
    /// Stream the events of entities in view.
    pub include_events: bool,
    /// Send the static terrain in snapshots.
    pub include_terrain: bool,
    /// Which entities qualify.
    pub filter: EntityFilter,
    /// At most this many entities, nearest to the viewport centre first (1–10,000).
    pub max_entities: u32,
    /// Slower updates for entities far from the viewport centre; `None` = all at `sync_hz`.
    pub distance_rates: Option<DistanceRates>,
    /// Frame compression, 0 (none) – 9. Level 0 is the only one this peer applies today;
    /// higher levels are accepted and treated as 0.
    pub compression_level: u8,
    /// `true`: deltas after the first snapshot. `false`: a full snapshot every sync.
    pub delta_only: bool,
}

impl Default for StreamConfiguration {
    fn default() -> Self {
        StreamConfiguration {
            sync_hz: 20,
            include_entities: true,
            include_events: true,
            include_terrain: true,
            filter: EntityFilter::default(),
            max_entities: MAX_STREAM_ENTITIES,
            distance_rates: Some(DistanceRates::default()),
            compression_level: 0,
            delta_only: true,
        }
    }
}

/// Which entities a subscription includes. Empty lists mean "any".
#[derive(
    Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, bitcode::Encode, bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct EntityFilter {
    /// Entity kinds, any of which qualifies.
    pub kinds: Vec<String>,
    /// Tags, any of which qualifies.
    pub tags: Vec<String>,
    /// Only entities owned by the viewer.
    pub owned_by_viewer: bool,
}

/// Update rates by distance from the viewport centre (the seed's part 12).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DistanceRates {
    /// Closer than this (world units) is near.
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub near: f32,
    /// Farther than this is far; in between is mid.
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub far: f32,
    /// Updates per second for near entities.
    pub near_hz: u32,
    /// Updates per second for mid entities.
    pub mid_hz: u32,
    /// Updates per second for far entities.
    pub far_hz: u32,
}

impl Default for DistanceRates {
    fn default() -> Self {
        DistanceRates {
            near: 200.0,
            far: 500.0,
            near_hz: 20,
            mid_hz: 10,
            far_hz: 5,
        }
    }
}

impl DistanceRates {
    /// The update rate for an entity at `distance` from the centre.
    pub fn hz_at(&self, distance: f32) -> u32 {
        if distance < self.near {
            self.near_hz
        } else if distance < self.far {
            self.mid_hz
        } else {
            self.far_hz
        }
    }
}

/// How a subscriber takes part in a universe.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    bitcode::Encode,
    bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum ViewMode {
    /// Read-only view.
    Observe,
    /// May interact, as far as the granted [`InteractionMode`] allows.
    Participate,
}

/// What a participant may do (the seed's interaction modes), enforced by the owning peer.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    bitcode::Encode,
    bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum InteractionMode {
    /// Nothing.
    None,
    /// Only clicks (ripples), never creating or removing entities.
    Limited,
    /// Clicks and commands.
    Full,
    /// Like full; shared with other universes' visitors through passages.
    Collaborative,
}

/// Something a participant does at world coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Interaction {
    /// A click: nudges nearby entities away and makes a ripple.
    Click {
        /// Where.
        at: Vec2,
    },
    /// A named command at a point: `spawn` (an entity owned by you) or `clear_mine`.
    Command {
        /// The command name.
        name: String,
        /// Where.
        at: Vec2,
    },
}

impl Interaction {
    /// The least interaction mode that permits this interaction.
    pub fn required_mode(&self) -> InteractionMode {
        match self {
            Interaction::Click { .. } => InteractionMode::Limited,
            Interaction::Command { .. } => InteractionMode::Full,
        }
    }
}

/// Checks a configuration; the message says what is wrong.
pub fn validate_config(config: &StreamConfiguration) -> Result<(), String> {
    if !(1..=60).contains(&config.sync_hz) {
        return Err(format!("sync_hz must be 1-60, got {}", config.sync_hz));
    }
    if !(1..=MAX_STREAM_ENTITIES).contains(&config.max_entities) {
        return Err(format!(
            "max_entities must be 1-{MAX_STREAM_ENTITIES}, got {}",
            config.max_entities
        ));
    }
    if config.compression_level > 9 {
        return Err(format!(
            "compression_level must be 0-9, got {}",
            config.compression_level
        ));
    }
    for (what, terms) in [
        ("kinds", &config.filter.kinds),
        ("tags", &config.filter.tags),
    ] {
        if terms.len() > MAX_FILTER_TERMS {
            return Err(format!(
                "filter.{what} has {} entries; at most {MAX_FILTER_TERMS}",
                terms.len()
            ));
        }
        if terms.iter().any(|t| t.len() > MAX_FILTER_TERM_LEN) {
            return Err(format!(
                "filter.{what} entries must be at most {MAX_FILTER_TERM_LEN} bytes"
            ));
        }
    }
    if let Some(r) = &config.distance_rates {
        let finite = r.near.is_finite() && r.far.is_finite();
        if !finite || r.near < 0.0 || r.far < r.near {
            return Err("distance_rates needs 0 <= near <= far".into());
        }
        for hz in [r.near_hz, r.mid_hz, r.far_hz] {
            if !(1..=60).contains(&hz) {
                return Err(format!("distance_rates rates must be 1-60 Hz, got {hz}"));
            }
        }
    }
    Ok(())
}

/// Checks a viewport: finite, positive, not absurdly large.
pub fn validate_viewport(v: &Rect) -> Result<(), String> {
    let all = [v.x, v.y, v.width, v.height];
    if all.iter().any(|c| !c.is_finite()) {
        return Err("viewport coordinates must be finite numbers".into());
    }
    if v.width <= 0.0 || v.height <= 0.0 {
        return Err(format!(
            "viewport width and height must be positive, got {}x{}",
            v.width, v.height
        ));
    }
    if v.width > MAX_VIEWPORT_SIDE || v.height > MAX_VIEWPORT_SIDE {
        return Err(format!(
            "viewport sides must be at most {MAX_VIEWPORT_SIDE}"
        ));
    }
    if v.x.abs() > MAX_VIEWPORT_COORD || v.y.abs() > MAX_VIEWPORT_COORD {
        return Err(format!(
            "viewport coordinates must be within ±{MAX_VIEWPORT_COORD}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
