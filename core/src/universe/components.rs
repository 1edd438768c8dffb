//! What an entity is made of.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, UserId};

/// A 2-D vector in world units (positions) or world units per second (velocities).
#[derive(
    Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, bitcode::Encode, bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Vec2 {
    /// Horizontal component; grows to the right.
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub x: f32,
    /// Vertical component; grows downwards, as on a canvas.
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub y: f32,
}

impl Vec2 {
    /// A vector from its components.
    pub const fn new(x: f32, y: f32) -> Self {
        Vec2 { x, y }
    }

    /// Euclidean length.
    pub fn length(self) -> f32 {
        (self.x * self.x + self.y * self.y).sqrt()
    }

    /// Distance to another point.
    pub fn distance(self, other: Vec2) -> f32 {
        Vec2::new(self.x - other.x, self.y - other.y).length()
    }

    /// Whether both components are finite.
    pub fn is_finite(self) -> bool {
        self.x.is_finite() && self.y.is_finite()
    }
}

/// An axis-aligned rectangle: world bounds, viewports, terrain patches.
#[derive(
    Debug, Clone, Copy, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Rect {
    /// Left edge.
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub x: f32,
    /// Top edge.
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub y: f32,
    /// Width (≥ 0).
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub width: f32,
    /// Height (≥ 0).
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub height: f32,
}

impl Rect {
    /// A rectangle from its top-left corner and size.
    pub const fn new(x: f32, y: f32, width: f32, height: f32) -> Self {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    /// Whether `p` lies inside (edges included).
    pub fn contains(&self, p: Vec2) -> bool {
        p.x >= self.x && p.x <= self.x + self.width && p.y >= self.y && p.y <= self.y + self.height
    }

    /// The centre point.
    pub fn centre(&self) -> Vec2 {
        Vec2::new(self.x + self.width / 2.0, self.y + self.height / 2.0)
    }
}

/// How an entity is drawn.
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
pub enum Shape {
    /// A disc.
    Circle,
    /// A square.
    Square,
    /// A triangle pointing along the velocity.
    Triangle,
    /// A diamond.
    Diamond,
}

/// The renderable component: shape, colour and size.
#[derive(
    Debug, Clone, Copy, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Renderable {
    /// The outline.
    pub shape: Shape,
    /// 0xRRGGBB.
    pub colour: u32,
    /// Diameter in world units.
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub size: f32,
}

/// A value in an entity's free-form property map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(untagged)]
pub enum PropValue {
    /// true / false.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A finite number.
    Float(#[cfg_attr(test, proptest(strategy = "crate::testing::finite_f64()"))] f64),
    /// Text (at most 256 bytes).
    Text(String),
}

/// Everything an entity is: the components streamed to viewers plus how it moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
pub struct Entity {
    /// The entity type, used by stream filters ("fish", "star", "avatar", …).
    pub kind: String,
    /// Where it is.
    pub position: Vec2,
    /// How fast it moves.
    pub velocity: Vec2,
    /// How it looks.
    pub renderable: Renderable,
    /// Sorted, de-duplicated labels, used by stream filters.
    pub tags: Vec<String>,
    /// The user who owns it, if any.
    pub owner: Option<UserId>,
    /// Set when this entity is a member's avatar.
    pub avatar: Option<ClientId>,
    /// Free-form properties.
    pub properties: BTreeMap<String, PropValue>,
    /// Whether the simulation makes it wander (simulation only; not streamed).
    pub wanders: bool,
}

impl Entity {
    /// A wandering entity of `kind` at `position` with no tags, owner or properties.
    pub fn new(kind: &str, position: Vec2, renderable: Renderable) -> Self {
        Entity {
            kind: kind.to_owned(),
            position,
            velocity: Vec2::default(),
            renderable,
            tags: Vec::new(),
            owner: None,
            avatar: None,
            properties: BTreeMap::new(),
            wanders: true,
        }
    }

    /// Adds tags (kept sorted and unique).
    pub fn with_tags(mut self, tags: &[&str]) -> Self {
        self.tags.extend(tags.iter().map(|t| (*t).to_owned()));
        self.tags.sort();
        self.tags.dedup();
        self
    }
}
