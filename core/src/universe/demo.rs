//! Built-in universes that visibly live: used by the peer at start-up, by tests and benches.

use super::{
    Entity, Physics, Rect, Renderable, Shape, TerrainPatch, Universe, UniverseConfig, Vec2,
};
use crate::ids::UniverseId;
use crate::rng::Rng;

/// The built-in kinds of universe, each visibly different when streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DemoKind {
    /// Bright mixed shapes wandering over a grid of soft patches.
    Sandbox,
    /// Fish (triangles) drifting through blue water with weed beds.
    Aquarium,
    /// Slow stars (diamonds) in a dark sky.
    Galaxy,
}

impl DemoKind {
    /// The universe's display name.
    pub fn name(self) -> &'static str {
        match self {
            DemoKind::Sandbox => "sandbox",
            DemoKind::Aquarium => "aquarium",
            DemoKind::Galaxy => "galaxy",
        }
    }
}

/// Builds a demo universe of `kind` with `count` entities in a `size`×`size` world.
pub fn demo_universe(
    kind: DemoKind,
    id: UniverseId,
    count: usize,
    size: f32,
    seed: u64,
) -> Universe {
    let (max_speed, wander_rate) = match kind {
        DemoKind::Sandbox => (60.0, 0.6),
        DemoKind::Aquarium => (35.0, 0.3),
        DemoKind::Galaxy => (8.0, 0.05),
    };
    let config = UniverseConfig {
        id,
        name: kind.name().to_owned(),
        time_scale: 1.0,
        tick_rate: 20,
        physics: Physics {
            bounds: Rect::new(0.0, 0.0, size, size),
            gravity: 0.0,
            friction: 0.0,
            max_speed,
            wander_rate,
        },
        seed,
    };
    let mut universe = Universe::new(config);
    let mut rng = Rng::new(seed ^ 0x5EED);
    universe.set_terrain(terrain(kind, size, &mut rng));
    for i in 0..count {
        let position = Vec2::new(rng.range(0.0, size), rng.range(0.0, size));
        let mut entity = entity(kind, i, position, &mut rng);
        let heading = rng.range(0.0, std::f32::consts::TAU);
        let speed = rng.range(0.25, 1.0) * max_speed;
        entity.velocity = Vec2::new(heading.cos() * speed, heading.sin() * speed);
        universe
            .spawn(entity)
            .expect("demo universes stay under the entity limit");
    }
    universe
}

fn entity(kind: DemoKind, i: usize, position: Vec2, rng: &mut Rng) -> Entity {
    const SANDBOX: [u32; 6] = [0xff6b6b, 0xffd93d, 0x6bcb77, 0x4d96ff, 0xc77dff, 0xff9f45];
    match kind {
        DemoKind::Sandbox => {
            let shapes = [
                Shape::Circle,
                Shape::Square,
                Shape::Triangle,
                Shape::Diamond,
            ];
            let shape = shapes[i % shapes.len()];
            let colour = SANDBOX[rng.below(SANDBOX.len() as u32) as usize];
            let kind_name = ["ball", "block", "dart", "gem"][i % 4];
            let tag = if colour == 0xff6b6b || colour == 0xff9f45 {
                "warm"
            } else {
                "cool"
            };
            Entity::new(
                kind_name,
                position,
                Renderable {
                    shape,
                    colour,
                    size: rng.range(6.0, 14.0),
                },
            )
            .with_tags(&[tag])
        }
        DemoKind::Aquarium => {
            let colour = [0xffa94d, 0xffe066, 0x74c0fc, 0xf783ac][rng.below(4) as usize];
            Entity::new(
                "fish",
                position,
                Renderable {
                    shape: Shape::Triangle,
                    colour,
                    size: rng.range(8.0, 18.0),
                },
            )
            .with_tags(&["swimmer"])
        }
        DemoKind::Galaxy => {
            let colour = [0xffffff, 0xfff3bf, 0xa5d8ff, 0xffc9c9][rng.below(4) as usize];
            Entity::new(
                "star",
                position,
                Renderable {
                    shape: Shape::Diamond,
                    colour,
                    size: rng.range(3.0, 9.0),
                },
            )
            .with_tags(&["luminous"])
        }
    }
}

fn terrain(kind: DemoKind, size: f32, rng: &mut Rng) -> Vec<TerrainPatch> {
    let cell = size / 8.0;
    match kind {
        DemoKind::Sandbox => (0..64)
            .filter(|i| (i / 8 + i % 8) % 2 == 0)
            .map(|i| TerrainPatch {
                rect: Rect::new((i % 8) as f32 * cell, (i / 8) as f32 * cell, cell, cell),
                colour: 0x1b2340,
            })
            .collect(),
        DemoKind::Aquarium => (0..10)
            .map(|_| {
                let w = rng.range(cell * 0.3, cell * 0.8);
                let h = rng.range(cell * 0.6, cell * 2.0);
                TerrainPatch {
                    rect: Rect::new(rng.range(0.0, size - w), size - h, w, h),
                    colour: 0x1f5f3f,
                }
            })
            .collect(),
        DemoKind::Galaxy => Vec::new(),
    }
}
