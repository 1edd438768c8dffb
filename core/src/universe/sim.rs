//! The demo simulation: wandering entities that bounce off the world's edges, and avatars
//! walking to where their members sent them.

use super::{Universe, Vec2};

/// Moves every entity by one tick of `dt` simulated seconds. Avatars only walk (see
/// [`Universe::walk_avatars`]): no wander, gravity, friction, speed limit or bounce.
pub(super) fn step(universe: &mut Universe, dt: f32) {
    let physics = universe.config.physics.clone();
    let tick = universe.tick;
    let turn_chance = (physics.wander_rate * dt).clamp(0.0, 1.0);
    let damping = (1.0 - physics.friction * dt).clamp(0.0, 1.0);
    let b = physics.bounds;
    let rng = &mut universe.rng;
    for slot in &mut universe.slots {
        if slot.hidden {
            // In transit or arriving: frozen where it was until it is back in the world.
            continue;
        }
        let Some(e) = slot.entity.as_mut().filter(|e| e.avatar.is_none()) else {
            continue;
        };
        let mut meta_changed = false;
        if e.wanders && rng.unit() < turn_chance {
            let heading = rng.range(0.0, std::f32::consts::TAU);
            let speed = rng.range(0.25, 1.0) * physics.max_speed;
            e.velocity = Vec2::new(heading.cos() * speed, heading.sin() * speed);
            meta_changed = true;
        }
        if physics.gravity != 0.0 || physics.friction != 0.0 {
            e.velocity.y += physics.gravity * dt;
            e.velocity.x *= damping;
            e.velocity.y *= damping;
            meta_changed |= e.velocity != Vec2::default();
        }
        let speed = e.velocity.length();
        if speed > physics.max_speed && speed > 0.0 {
            let k = physics.max_speed / speed;
            e.velocity = Vec2::new(e.velocity.x * k, e.velocity.y * k);
        }
        e.position.x += e.velocity.x * dt;
        e.position.y += e.velocity.y * dt;
        meta_changed |= bounce(&mut e.position.x, &mut e.velocity.x, b.x, b.x + b.width);
        meta_changed |= bounce(&mut e.position.y, &mut e.velocity.y, b.y, b.y + b.height);
        if meta_changed {
            slot.meta_tick = tick;
        }
    }
    universe.walk_avatars(dt);
}

/// Reflects a coordinate that left `[lo, hi]`; returns whether the velocity flipped.
fn bounce(p: &mut f32, v: &mut f32, lo: f32, hi: f32) -> bool {
    if *p < lo {
        *p = (2.0 * lo - *p).min(hi);
        *v = v.abs();
        true
    } else if *p > hi {
        *p = (2.0 * hi - *p).max(lo);
        *v = -v.abs();
        true
    } else {
        false
    }
}
