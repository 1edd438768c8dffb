//! Templates and worlds (seed 001): the names people give them, the template folder format,
//! and turning a template into a fresh universe. Pure: the peer reads the files and hands
//! their text in.
//!
//! A template is read-only. A *world* is a universe cloned from one and owned by a user.

use serde::{Deserialize, Serialize};

use crate::ids::UniverseId;
use crate::stream::InteractionMode;
use crate::universe::{
    demo_universe, DemoKind, Entity, Physics, Rect, Renderable, Shape, TerrainPatch, Universe,
    UniverseConfig, Vec2,
};

/// Most entities a template folder may declare.
pub const MAX_TEMPLATE_ENTITIES: usize = 10_000;
/// Longest template name.
pub const MAX_TEMPLATE_NAME: usize = 48;
/// Longest world name, in characters.
pub const MAX_WORLD_NAME: usize = 64;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty after trimming.
    #[error("the name is empty")]
    Empty,
    /// Too long.
    #[error("the name is longer than {0} characters")]
    TooLong(usize),
    /// Contains a character that is not allowed (path separators, control characters, or for
    /// templates anything but a-z, 0-9 and '-').
    #[error("the name contains {0:?}, which is not allowed")]
    BadCharacter(char),
    /// `.` or `..`, or starts with a dot.
    #[error("the name must not start with a dot")]
    Dot,
}

/// Checks a template name: a slug of `a-z`, `0-9` and `-`, 1–48 characters, so it is safe
/// as a folder name and in URLs.
pub fn validate_template_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_TEMPLATE_NAME {
        return Err(NameError::TooLong(MAX_TEMPLATE_NAME));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameError::BadCharacter(c));
    }
    Ok(())
}

/// A world name as stored: trimmed, 1–64 characters, no control characters, no `/` or `\`,
/// not starting with a dot. Uniqueness per owner is case-insensitive (the store's job).
pub fn normalize_world_name(name: &str) -> Result<String, NameError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_WORLD_NAME {
        return Err(NameError::TooLong(MAX_WORLD_NAME));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || *c == '/' || *c == '\\')
    {
        return Err(NameError::BadCharacter(c));
    }
    if name.starts_with('.') {
        return Err(NameError::Dot);
    }
    Ok(name.to_owned())
}

/// Where a template came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateSource {
    /// Compiled in.
    Builtin,
    /// Loaded from the templates folder.
    Folder,
}

/// `worlds/<name>/manifest.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateManifest {
    /// Display title.
    pub title: String,
    /// One line about it.
    #[serde(default)]
    pub description: String,
    /// Ticks per second (1–60).
    #[serde(default = "default_tick_rate")]
    pub tick_rate: u32,
    /// World width and height.
    pub size: [f32; 2],
    /// Simulation seed.
    #[serde(default)]
    pub seed: u64,
    /// Speed limit of wandering entities.
    #[serde(default = "default_max_speed")]
    pub max_speed: f32,
    /// How often wanderers turn, per second.
    #[serde(default = "default_wander_rate")]
    pub wander_rate: f32,
    /// What visitors may do.
    #[serde(default = "default_interaction")]
    pub interaction: InteractionMode,
    /// Static coloured patches.
    #[serde(default)]
    pub terrain: Vec<TerrainPatch>,
}

fn default_tick_rate() -> u32 {
    20
}
fn default_max_speed() -> f32 {
    40.0
}
fn default_wander_rate() -> f32 {
    0.3
}
fn default_interaction() -> InteractionMode {
    InteractionMode::Full
}
fn default_size() -> f32 {
    10.0
}
fn yes() -> bool {
    true
}

/// One entry of `worlds/<name>/entities.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateEntity {
    /// Entity type ("fish", "tree", …).
    pub kind: String,
    /// Where it starts.
    pub position: Vec2,
    /// Outline.
    #[serde(default = "default_shape")]
    pub shape: Shape,
    /// 0xRRGGBB.
    pub colour: u32,
    /// Diameter.
    #[serde(default = "default_size")]
    pub size: f32,
    /// Labels for stream filters.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Whether it wanders.
    #[serde(default = "yes")]
    pub wanders: bool,
}

fn default_shape() -> Shape {
    Shape::Circle
}

/// Why a template folder was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// The folder name is not a valid template name.
    #[error("bad template name: {0}")]
    Name(#[from] NameError),
    /// A file is not valid JSON of the expected shape.
    #[error("{file}: {reason}")]
    Json {
        /// Which file.
        file: &'static str,
        /// The parser's complaint.
        reason: String,
    },
    /// Parsed, but out of range.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Blueprint {
    Demo {
        kind: DemoKind,
        count: usize,
        size: f32,
    },
    Folder {
        manifest: TemplateManifest,
        entities: Vec<TemplateEntity>,
    },
}

/// A read-only recipe for a universe.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Slug, unique among templates.
    pub name: String,
    /// Display title.
    pub title: String,
    /// One line about it.
    pub description: String,
    /// Built in or from the folder.
    pub source: TemplateSource,
    /// What visitors may do in universes made from it.
    pub interaction: InteractionMode,
    blueprint: Blueprint,
}

impl Template {
    /// The templates every peer has: sandbox, aquarium and galaxy (each visibly different).
    pub fn builtin() -> Vec<Template> {
        let demo =
            |kind: DemoKind, title: &str, description: &str, count, size, interaction| Template {
                name: kind.name().to_owned(),
                title: title.to_owned(),
                description: description.to_owned(),
                source: TemplateSource::Builtin,
                interaction,
                blueprint: Blueprint::Demo { kind, count, size },
            };
        vec![
            demo(
                DemoKind::Sandbox,
                "Sandbox",
                "Bright shapes wandering over soft patches; click to ripple, shift-click to spawn.",
                300,
                1000.0,
                InteractionMode::Full,
            ),
            demo(
                DemoKind::Aquarium,
                "Aquarium",
                "Fish drifting through blue water between weed beds.",
                120,
                800.0,
                InteractionMode::Limited,
            ),
            demo(
                DemoKind::Galaxy,
                "Galaxy",
                "Slow stars in a dark sky.",
                500,
                1200.0,
                InteractionMode::None,
            ),
        ]
    }

    /// Parses a template folder's two files (their text) and checks every value.
    pub fn from_folder(
        name: &str,
        manifest_json: &str,
        entities_json: &str,
    ) -> Result<Template, TemplateError> {
        validate_template_name(name)?;
        let manifest: TemplateManifest =
            serde_json::from_str(manifest_json).map_err(|e| TemplateError::Json {
                file: "manifest.json",
                reason: e.to_string(),
            })?;
        let entities: Vec<TemplateEntity> =
            serde_json::from_str(entities_json).map_err(|e| TemplateError::Json {
                file: "entities.json",
                reason: e.to_string(),
            })?;
        let invalid = |m: String| Err(TemplateError::Invalid(m));
        let [w, h] = manifest.size;
        if !(w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0 && w <= 1e6 && h <= 1e6) {
            return invalid(format!("size {w}×{h} must be positive and at most 1e6"));
        }
        if !(1..=60).contains(&manifest.tick_rate) {
            return invalid(format!("tick_rate {} is outside 1–60", manifest.tick_rate));
        }
        if !(manifest.max_speed.is_finite() && manifest.wander_rate.is_finite()) {
            return invalid("max_speed and wander_rate must be finite".into());
        }
        if manifest.title.trim().is_empty() || manifest.title.len() > 80 {
            return invalid("title must be 1–80 characters".into());
        }
        if entities.len() > MAX_TEMPLATE_ENTITIES {
            return invalid(format!(
                "{} entities; at most {MAX_TEMPLATE_ENTITIES}",
                entities.len()
            ));
        }
        for (i, e) in entities.iter().enumerate() {
            let ok = e.position.x.is_finite()
                && e.position.y.is_finite()
                && e.size.is_finite()
                && e.size > 0.0
                && !e.kind.is_empty()
                && e.kind.len() <= 32
                && e.tags.len() <= 16;
            if !ok {
                return invalid(format!("entity {i} has a bad position, size, kind or tags"));
            }
        }
        Ok(Template {
            name: name.to_owned(),
            title: manifest.title.trim().to_owned(),
            description: manifest.description.clone(),
            source: TemplateSource::Folder,
            interaction: manifest.interaction,
            blueprint: Blueprint::Folder { manifest, entities },
        })
    }

    /// Entities a fresh universe from this template starts with.
    pub fn entity_count(&self) -> usize {
        match &self.blueprint {
            Blueprint::Demo { count, .. } => *count,
            Blueprint::Folder { entities, .. } => entities.len(),
        }
    }

    /// A fresh universe from this template.
    pub fn instantiate(&self, id: UniverseId, name: &str, seed: u64) -> Universe {
        match &self.blueprint {
            Blueprint::Demo { kind, count, size } => {
                let mut u = demo_universe(*kind, id, *count, *size, seed);
                u.rename(name);
                u
            }
            Blueprint::Folder { manifest, entities } => {
                let [w, h] = manifest.size;
                let mut u = Universe::new(UniverseConfig {
                    id,
                    name: name.to_owned(),
                    time_scale: 1.0,
                    tick_rate: manifest.tick_rate,
                    physics: Physics {
                        bounds: Rect::new(0.0, 0.0, w, h),
                        gravity: 0.0,
                        friction: 0.0,
                        max_speed: manifest.max_speed,
                        wander_rate: manifest.wander_rate,
                    },
                    seed: manifest.seed ^ seed,
                });
                u.set_terrain(manifest.terrain.clone());
                for e in entities {
                    let mut entity = Entity::new(
                        &e.kind,
                        e.position,
                        Renderable {
                            shape: e.shape,
                            colour: e.colour & 0xff_ffff,
                            size: e.size,
                        },
                    );
                    entity.tags = e.tags.clone();
                    entity.tags.sort();
                    entity.tags.dedup();
                    entity.wanders = e.wanders;
                    u.spawn(entity)
                        .expect("templates stay under the entity limit");
                }
                u
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{"title": "Garden", "size": [400, 300], "seed": 3}"#;
    const ENTITIES: &str = r#"[{"kind": "tree", "position": {"x": 10, "y": 20}, "colour": 3381555, "wanders": false}]"#;

    #[test]
    fn folder_templates_instantiate() {
        let t = Template::from_folder("garden", MANIFEST, ENTITIES).unwrap();
        assert_eq!(t.entity_count(), 1);
        let u = t.instantiate(UniverseId::from_u128(1), "Mine", 9);
        assert_eq!(u.len(), 1);
        assert_eq!(u.config().name, "Mine");
        let (_, tree) = u.iter().next().unwrap();
        assert!(!tree.wanders);
        assert_eq!(tree.kind, "tree");
    }

    #[test]
    fn builtins_differ_and_keep_their_names() {
        let names: Vec<_> = Template::builtin().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["sandbox", "aquarium", "galaxy"]);
        let u = Template::builtin()[1].instantiate(UniverseId::from_u128(2), "Tank", 1);
        assert_eq!((u.len(), u.config().name.as_str()), (120, "Tank"));
    }

    #[test]
    fn bad_folders_are_refused_with_reasons() {
        let err = |name: &str, m: &str, e: &str| Template::from_folder(name, m, e).unwrap_err();
        assert!(matches!(
            err("../etc", MANIFEST, ENTITIES),
            TemplateError::Name(_)
        ));
        assert!(matches!(
            err("Garden", MANIFEST, ENTITIES),
            TemplateError::Name(_)
        ));
        assert!(matches!(
            err("g", "{", ENTITIES),
            TemplateError::Json {
                file: "manifest.json",
                ..
            }
        ));
        assert!(matches!(
            err("g", MANIFEST, "[{}]"),
            TemplateError::Json {
                file: "entities.json",
                ..
            }
        ));
        assert!(matches!(
            err("g", r#"{"title":"x","size":[0,1]}"#, "[]"),
            TemplateError::Invalid(_)
        ));
        assert!(matches!(
            err("g", r#"{"title":"x","size":[1,1],"tick_rate":0}"#, "[]"),
            TemplateError::Invalid(_)
        ));
        assert!(matches!(
            err(
                "g",
                MANIFEST,
                r#"[{"kind":"a","position":{"x":1,"y":1},"colour":1,"size":-1}]"#
            ),
            TemplateError::Invalid(_)
        ));
        assert!(matches!(
            err("g", r#"{"title":"x","size":[1,1],"owner":"me"}"#, "[]"),
            TemplateError::Json { .. }
        ));
    }

    #[test]
    fn world_names() {
        assert_eq!(normalize_world_name("  My tank ").unwrap(), "My tank");
        assert_eq!(normalize_world_name("   "), Err(NameError::Empty));
        assert_eq!(normalize_world_name(".."), Err(NameError::Dot));
        assert_eq!(
            normalize_world_name("../x"),
            Err(NameError::BadCharacter('/'))
        );
        assert_eq!(
            normalize_world_name("a/b"),
            Err(NameError::BadCharacter('/'))
        );
        assert_eq!(
            normalize_world_name("a\\b"),
            Err(NameError::BadCharacter('\\'))
        );
        assert_eq!(
            normalize_world_name("a\nb"),
            Err(NameError::BadCharacter('\n'))
        );
        assert_eq!(
            normalize_world_name(&"x".repeat(65)),
            Err(NameError::TooLong(64))
        );
        assert!(normalize_world_name("Ünïcode wörld 🐟").is_ok());
    }
}
