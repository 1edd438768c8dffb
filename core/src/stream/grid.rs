//! A uniform spatial grid over the world bounds, rebuilt once per tick, so a viewport query
//! touches only the entities in the cells it overlaps.

use crate::universe::{Rect, Universe, Vec2};

/// Cells per side.
const SIDE: usize = 64;

/// Entity slot indices bucketed by cell. Entities outside the bounds land in edge cells.
#[derive(Debug, Default)]
pub(crate) struct Grid {
    origin: Vec2,
    cell_w: f32,
    cell_h: f32,
    cells: Vec<Vec<u32>>,
}

impl Grid {
    /// Re-buckets every live entity.
    pub(crate) fn rebuild(&mut self, universe: &Universe) {
        let b = universe.config().physics.bounds;
        self.origin = Vec2::new(b.x, b.y);
        self.cell_w = (b.width / SIDE as f32).max(f32::MIN_POSITIVE);
        self.cell_h = (b.height / SIDE as f32).max(f32::MIN_POSITIVE);
        self.cells.resize_with(SIDE * SIDE, Vec::new);
        self.cells.iter_mut().for_each(Vec::clear);
        for (id, e) in universe.iter() {
            let (cx, cy) = self.cell_of(e.position);
            self.cells[cy * SIDE + cx].push(id.index);
        }
    }

    /// Appends the indices of every entity in a cell overlapping `r` (a superset of those
    /// inside `r`; callers test exactly).
    pub(crate) fn query(&self, r: &Rect, out: &mut Vec<u32>) {
        if self.cells.is_empty() {
            return;
        }
        let (x0, y0) = self.cell_of(Vec2::new(r.x, r.y));
        let (x1, y1) = self.cell_of(Vec2::new(r.x + r.width, r.y + r.height));
        for cy in y0..=y1 {
            for cx in x0..=x1 {
                out.extend_from_slice(&self.cells[cy * SIDE + cx]);
            }
        }
    }

    fn cell_of(&self, p: Vec2) -> (usize, usize) {
        let clamp = |v: f32| {
            if v.is_nan() {
                0
            } else {
                (v.max(0.0) as usize).min(SIDE - 1)
            }
        };
        (
            clamp((p.x - self.origin.x) / self.cell_w),
            clamp((p.y - self.origin.y) / self.cell_h),
        )
    }
}
