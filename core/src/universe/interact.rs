//! What participants' interactions do to a universe.

use super::{Entity, Renderable, Shape, Universe, UniverseError, UniverseEvent, Vec2};
use crate::ids::UserId;
use crate::stream::Interaction;

/// Radius, in world units, of the push a click gives.
pub const RIPPLE_RADIUS: f32 = 80.0;
/// Most entities one user may have spawned in a universe.
pub const SPAWN_LIMIT_PER_USER: usize = 50;

impl Universe {
    /// Applies a participant's interaction (the caller has checked it is permitted).
    pub fn interact(
        &mut self,
        viewer: Option<UserId>,
        interaction: &Interaction,
    ) -> Result<(), UniverseError> {
        match interaction {
            Interaction::Click { at } => {
                let at = self.checked_point(*at)?;
                self.ripple(at);
                Ok(())
            }
            Interaction::Command { name, at } => {
                let at = self.checked_point(*at)?;
                match name.as_str() {
                    "spawn" => self.spawn_for(viewer, at),
                    "clear_mine" => {
                        let mine: Vec<_> = self
                            .iter()
                            .filter(|(id, e)| {
                                viewer.is_some()
                                    && e.owner == viewer
                                    && e.avatar.is_none()
                                    && !self.is_hidden(*id)
                            })
                            .map(|(id, _)| id)
                            .collect();
                        for id in mine {
                            self.despawn(id)?;
                        }
                        Ok(())
                    }
                    other => Err(UniverseError::UnknownCommand(
                        other.chars().take(64).collect(),
                    )),
                }
            }
        }
    }

    /// `at` clamped into the world, or [`UniverseError::BadPoint`] if it is not finite.
    pub(super) fn checked_point(&self, at: Vec2) -> Result<Vec2, UniverseError> {
        if !at.is_finite() {
            return Err(UniverseError::BadPoint);
        }
        let b = self.config.physics.bounds;
        Ok(Vec2::new(
            at.x.clamp(b.x, b.x + b.width),
            at.y.clamp(b.y, b.y + b.height),
        ))
    }

    fn ripple(&mut self, at: Vec2) {
        let speed = self.config.physics.max_speed;
        let near: Vec<_> = self
            .iter()
            .filter(|(id, e)| {
                e.position.distance(at) < RIPPLE_RADIUS
                    && e.avatar.is_none()
                    && !self.is_hidden(*id)
            })
            .map(|(id, e)| (id, e.position))
            .collect();
        for (id, p) in near {
            let d = p.distance(at).max(0.001);
            let push = Vec2::new((p.x - at.x) / d * speed, (p.y - at.y) / d * speed);
            let _ = self.modify(id, |e| e.velocity = push);
        }
        self.emit(UniverseEvent::Custom {
            name: "ripple".into(),
            entity: None,
            at: Some(at),
        });
    }

    fn spawn_for(&mut self, viewer: Option<UserId>, at: Vec2) -> Result<(), UniverseError> {
        let owner = viewer.ok_or(UniverseError::AnonymousSpawn)?;
        let mine = self
            .iter()
            .filter(|(_, e)| e.owner == Some(owner) && e.avatar.is_none())
            .count();
        if mine >= SPAWN_LIMIT_PER_USER {
            return Err(UniverseError::SpawnLimit(SPAWN_LIMIT_PER_USER));
        }
        let colour = (owner.as_u128() as u32 & 0x7f7f7f) | 0x808080;
        let mut entity = Entity::new(
            "spawned",
            at,
            Renderable {
                shape: Shape::Circle,
                colour,
                size: 12.0,
            },
        )
        .with_tags(&["spawned"]);
        entity.owner = Some(owner);
        self.spawn(entity).map(drop)
    }
}
