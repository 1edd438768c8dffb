//! The canvas renderer: a plain struct that draws the scene's panes in a layout, called from
//! requestAnimationFrame.

use std::f64::consts::TAU;

use multiverse_core::ids::EntityId;
use multiverse_core::universe::{Shape, Vec2};
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

use crate::scene::{Camera, Pane, Scene};

/// How two universes share the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// The main universe fills the canvas.
    #[default]
    Full,
    /// The second universe in a small window in a corner.
    PictureInPicture,
    /// Side by side: main (local) left, second right.
    Split,
    /// The second universe seen through a round portal inside the main one.
    Portal,
}

impl Layout {
    /// Every layout, in button order.
    pub const ALL: [Layout; 4] = [
        Layout::Full,
        Layout::PictureInPicture,
        Layout::Split,
        Layout::Portal,
    ];

    /// Button label and test id suffix.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Full => "full",
            Layout::PictureInPicture => "pip",
            Layout::Split => "split",
            Layout::Portal => "portal",
        }
    }

    /// Whether the layout shows a second universe.
    pub fn needs_second(self) -> bool {
        self != Layout::Full
    }
}

/// A pane's place on the canvas, in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
    /// Drawn as a circle inscribed in the rectangle (portal).
    pub round: bool,
}

impl Area {
    /// Whether a canvas point falls inside.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        if self.round {
            let (cx, cy, r) = (
                self.x + self.w / 2.0,
                self.y + self.h / 2.0,
                self.w.min(self.h) / 2.0,
            );
            (x - cx).powi(2) + (y - cy).powi(2) <= r * r
        } else {
            x >= self.x && x <= self.x + self.w && y >= self.y && y <= self.y + self.h
        }
    }
}

/// Where the main and the second pane go for a canvas of `w`×`h`.
pub fn areas(layout: Layout, w: f32, h: f32) -> (Area, Option<Area>) {
    let full = Area {
        x: 0.0,
        y: 0.0,
        w,
        h,
        round: false,
    };
    match layout {
        Layout::Full => (full, None),
        Layout::PictureInPicture => {
            let (pw, ph) = (w * 0.3, h * 0.3);
            (
                full,
                Some(Area {
                    x: w - pw - 12.0,
                    y: h - ph - 12.0,
                    w: pw,
                    h: ph,
                    round: false,
                }),
            )
        }
        Layout::Split => {
            let half = w / 2.0;
            (
                Area {
                    w: half - 2.0,
                    ..full
                },
                Some(Area {
                    x: half + 2.0,
                    y: 0.0,
                    w: half - 2.0,
                    h,
                    round: false,
                }),
            )
        }
        Layout::Portal => {
            let d = w.min(h) * 0.42;
            (
                full,
                Some(Area {
                    x: w * 0.72 - d / 2.0,
                    y: h / 2.0 - d / 2.0,
                    w: d,
                    h: d,
                    round: true,
                }),
            )
        }
    }
}

/// What is drawn over the panes: the others' cursors, and an entity being carried.
#[derive(Debug, Default)]
pub struct Overlay {
    /// The other members' pointers in the main universe: (name, colour, where).
    pub cursors: Vec<(String, u32, Vec2)>,
    /// An entity of the main pane being dragged (towards the second pane), and the pointer
    /// (canvas pixels).
    pub carried: Option<(EntityId, (f32, f32))>,
    /// Names, our highlight, speaking rings and video bubbles over the avatars.
    pub avatars: crate::avatar_draw::AvatarOverlay,
}

/// Draws scenes on one canvas.
pub struct Renderer {
    canvas: HtmlCanvasElement,
    ctx: CanvasRenderingContext2d,
    size: (f32, f32),
}

impl Renderer {
    /// A renderer for `canvas`, if it has a 2-D context.
    pub fn new(canvas: HtmlCanvasElement) -> Option<Renderer> {
        let ctx = canvas
            .get_context("2d")
            .ok()??
            .dyn_into::<CanvasRenderingContext2d>()
            .ok()?;
        Some(Renderer {
            canvas,
            ctx,
            size: (0.0, 0.0),
        })
    }

    /// The canvas size in CSS pixels (after the last [`Renderer::draw`]).
    pub fn size(&self) -> (f32, f32) {
        self.size
    }

    /// The canvas element.
    pub fn canvas(&self) -> &HtmlCanvasElement {
        &self.canvas
    }

    fn fit_to_element(&mut self) {
        let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio());
        let (w, h) = (
            self.canvas.client_width().max(1) as f32,
            self.canvas.client_height().max(1) as f32,
        );
        let (pw, ph) = ((f64::from(w) * dpr) as u32, (f64::from(h) * dpr) as u32);
        if self.canvas.width() != pw || self.canvas.height() != ph {
            self.canvas.set_width(pw);
            self.canvas.set_height(ph);
        }
        let _ = self.ctx.set_transform(dpr, 0.0, 0.0, dpr, 0.0, 0.0);
        self.size = (w, h);
    }

    /// Draws the main universe and (if the layout wants one) the second, at time `now` ms,
    /// with the overlay on top.
    pub fn draw(&mut self, scene: &mut Scene, layout: Layout, now: f64, overlay: &Overlay) {
        let (main, second) = (scene.main_id(), scene.second_id());
        self.fit_to_element();
        let (w, h) = self.size;
        self.ctx.set_fill_style_str("#070a16");
        self.ctx.fill_rect(0.0, 0.0, f64::from(w), f64::from(h));
        let (main_area, second_area) = areas(layout, w, h);
        match main.and_then(|id| scene.panes.get_mut(&id)) {
            Some(pane) => {
                self.draw_pane(pane, main_area, now);
                if let Some(camera) = pane.camera {
                    let avatars = &overlay.avatars;
                    crate::avatar_draw::draw(&self.ctx, pane, camera, main_area, now, avatars);
                    self.draw_cursors(camera, main_area, &overlay.cursors);
                }
            }
            None => self.caption(main_area, "Waiting for the universe…"),
        }
        if let Some(area) = second_area {
            match second.and_then(|id| scene.panes.get_mut(&id)) {
                Some(pane) => self.draw_pane(pane, area, now),
                None => self.caption(area, "No second universe"),
            }
        }
        let main_pane = main.and_then(|id| scene.panes.get(&id));
        if let (Some((entity, to)), Some(pane)) = (overlay.carried, main_pane) {
            self.draw_carried(pane, main_area, second_area, entity, to, now);
        }
    }

    /// An entity on its way to the second pane: a line from it to the pointer, its shape at
    /// the pointer, and the target pane's rim lit while the pointer is over it.
    fn draw_carried(
        &self,
        pane: &Pane,
        a: Area,
        target: Option<Area>,
        entity: EntityId,
        to: (f32, f32),
        now: f64,
    ) {
        let (Some(camera), Some(e)) = (pane.camera, pane.mirror.get(entity.index)) else {
            return;
        };
        let Some(p) = pane
            .drawn_position(entity.index, now)
            .filter(|_| e.id == entity)
        else {
            return;
        };
        let (x, y) = camera.to_screen(p, a.w, a.h);
        let (x, y) = (x + f64::from(a.x), y + f64::from(a.y));
        let (tx, ty) = (f64::from(to.0), f64::from(to.1));
        let ctx = &self.ctx;
        ctx.set_stroke_style_str("rgba(255,204,102,0.8)");
        ctx.set_line_width(2.0);
        ctx.begin_path();
        ctx.move_to(x, y);
        ctx.line_to(tx, ty);
        ctx.stroke();
        ctx.set_global_alpha(0.75);
        ctx.set_fill_style_str(&colour(e.renderable.colour));
        let r = f64::from((e.renderable.size * camera.zoom / 2.0).max(4.0));
        shape(ctx, e.renderable.shape, tx, ty, r, 0.0);
        ctx.set_global_alpha(1.0);
        if let Some(t) = target.filter(|t| t.contains(to.0, to.1)) {
            ctx.set_stroke_style_str("#ffcc66");
            ctx.set_line_width(4.0);
            ctx.begin_path();
            if t.round {
                let _ = ctx.arc(
                    f64::from(t.x + t.w / 2.0),
                    f64::from(t.y + t.h / 2.0),
                    f64::from(t.w.min(t.h) / 2.0 + 4.0),
                    0.0,
                    TAU,
                );
            } else {
                ctx.rect(
                    f64::from(t.x),
                    f64::from(t.y),
                    f64::from(t.w),
                    f64::from(t.h),
                );
            }
            ctx.stroke();
        }
    }

    fn caption(&self, a: Area, text: &str) {
        self.ctx.set_fill_style_str("#98a2c8");
        self.ctx.set_font("16px system-ui, sans-serif");
        let _ = self
            .ctx
            .fill_text(text, f64::from(a.x + 16.0), f64::from(a.y + a.h / 2.0));
    }

    fn draw_pane(&self, pane: &mut Pane, a: Area, now: f64) {
        let camera = *pane
            .camera
            .get_or_insert_with(|| Camera::fit(pane.info.bounds, a.w, a.h));
        let ctx = &self.ctx;
        ctx.save();
        ctx.begin_path();
        if a.round {
            let _ = ctx.arc(
                f64::from(a.x + a.w / 2.0),
                f64::from(a.y + a.h / 2.0),
                f64::from(a.w.min(a.h) / 2.0),
                0.0,
                TAU,
            );
        } else {
            ctx.rect(
                f64::from(a.x),
                f64::from(a.y),
                f64::from(a.w),
                f64::from(a.h),
            );
        }
        ctx.clip();
        ctx.set_fill_style_str(background(&pane.info.name));
        ctx.fill_rect(
            f64::from(a.x),
            f64::from(a.y),
            f64::from(a.w),
            f64::from(a.h),
        );
        let to_screen = |p| {
            let (x, y) = camera.to_screen(p, a.w, a.h);
            (x + f64::from(a.x), y + f64::from(a.y))
        };
        for patch in pane.mirror.terrain() {
            let (x0, y0) = to_screen(Vec2::new(patch.rect.x, patch.rect.y));
            ctx.set_fill_style_str(&colour(patch.colour));
            ctx.fill_rect(
                x0,
                y0,
                f64::from(patch.rect.width * camera.zoom),
                f64::from(patch.rect.height * camera.zoom),
            );
        }
        let b = pane.info.bounds;
        let (bx, by) = to_screen(Vec2::new(b.x, b.y));
        ctx.set_stroke_style_str("#2c3763");
        ctx.set_line_width(1.0);
        ctx.stroke_rect(
            bx,
            by,
            f64::from(b.width * camera.zoom),
            f64::from(b.height * camera.zoom),
        );
        for e in pane.mirror.entities() {
            let Some(p) = pane.drawn_position(e.id.index, now) else {
                continue;
            };
            let (x, y) = to_screen(p);
            let r = f64::from((e.renderable.size * camera.zoom / 2.0).max(1.5));
            ctx.set_fill_style_str(&colour(e.renderable.colour));
            let heading = f64::from(e.velocity().y).atan2(f64::from(e.velocity().x));
            shape(ctx, e.renderable.shape, x, y, r, heading);
        }
        for (at, age) in pane.ripples(now) {
            let (x, y) = to_screen(at);
            ctx.set_stroke_style_str(&format!("rgba(255,220,120,{:.2})", 1.0 - age));
            ctx.set_line_width(2.0);
            ctx.begin_path();
            let _ = ctx.arc(
                x,
                y,
                f64::from(multiverse_core::universe::RIPPLE_RADIUS * camera.zoom) * age,
                0.0,
                TAU,
            );
            ctx.stroke();
        }
        ctx.restore();
        self.frame(pane, a);
    }

    /// Ghost cursors: an arrow and a name label in each member's colour.
    fn draw_cursors(&self, camera: Camera, a: Area, cursors: &[(String, u32, Vec2)]) {
        let ctx = &self.ctx;
        ctx.set_font("600 12px system-ui, sans-serif");
        for (name, rgb, at) in cursors {
            let (x, y) = camera.to_screen(*at, a.w, a.h);
            let (x, y) = (x + f64::from(a.x), y + f64::from(a.y));
            ctx.set_fill_style_str(&colour(*rgb));
            ctx.begin_path();
            ctx.move_to(x, y);
            ctx.line_to(x + 4.0, y + 15.0);
            ctx.line_to(x + 7.5, y + 9.5);
            ctx.line_to(x + 14.0, y + 9.0);
            ctx.close_path();
            ctx.fill();
            ctx.set_stroke_style_str("#070a16");
            ctx.set_line_width(1.0);
            ctx.stroke();
            let _ = ctx.fill_text(name, x + 14.0, y + 22.0);
        }
    }

    /// Border, portal ring, name, entity count and mode indicator.
    fn frame(&self, pane: &Pane, a: Area) {
        let ctx = &self.ctx;
        ctx.begin_path();
        if a.round {
            ctx.set_stroke_style_str("#c77dff");
            ctx.set_line_width(5.0);
            let _ = ctx.arc(
                f64::from(a.x + a.w / 2.0),
                f64::from(a.y + a.h / 2.0),
                f64::from(a.w.min(a.h) / 2.0),
                0.0,
                TAU,
            );
        } else {
            ctx.set_stroke_style_str("#263061");
            ctx.set_line_width(2.0);
            ctx.rect(
                f64::from(a.x),
                f64::from(a.y),
                f64::from(a.w),
                f64::from(a.h),
            );
        }
        ctx.stroke();
        let mode = if pane.interactive() {
            "[Interactive]"
        } else {
            "[View Only]"
        };
        let label = format!(
            "{} · {} entities  {mode}",
            pane.info.name,
            pane.mirror.len()
        );
        ctx.set_font("600 13px system-ui, sans-serif");
        let (lx, ly) = if a.round {
            (a.x + a.w * 0.18, a.y + a.h + 18.0)
        } else {
            (a.x + 10.0, a.y + 20.0)
        };
        ctx.set_fill_style_str("rgba(7,10,22,0.7)");
        ctx.fill_rect(
            f64::from(lx - 4.0),
            f64::from(ly - 14.0),
            label.len() as f64 * 7.2,
            19.0,
        );
        ctx.set_fill_style_str(if pane.interactive() {
            "#ffcc66"
        } else {
            "#e8ecff"
        });
        let _ = ctx.fill_text(&label, f64::from(lx), f64::from(ly));
    }
}

fn shape(ctx: &CanvasRenderingContext2d, shape: Shape, x: f64, y: f64, r: f64, heading: f64) {
    ctx.begin_path();
    match shape {
        Shape::Circle => {
            let _ = ctx.arc(x, y, r, 0.0, TAU);
        }
        Shape::Square => ctx.rect(x - r, y - r, 2.0 * r, 2.0 * r),
        Shape::Triangle => {
            let point =
                |a: f64, len: f64| (x + len * (heading + a).cos(), y + len * (heading + a).sin());
            let (p0, p1, p2) = (point(0.0, r * 1.3), point(2.5, r), point(-2.5, r));
            ctx.move_to(p0.0, p0.1);
            ctx.line_to(p1.0, p1.1);
            ctx.line_to(p2.0, p2.1);
            ctx.close_path();
        }
        Shape::Diamond => {
            ctx.move_to(x, y - r);
            ctx.line_to(x + r, y);
            ctx.line_to(x, y + r);
            ctx.line_to(x - r, y);
            ctx.close_path();
        }
    }
    ctx.fill();
}

fn colour(rgb: u32) -> String {
    format!("#{:06x}", rgb & 0x00ff_ffff)
}

/// A universe's backdrop, by its own name (a portal's `<peer>/<name>` by the `<name>`).
fn background(universe: &str) -> &'static str {
    match universe.rsplit('/').next().unwrap_or(universe) {
        "aquarium" => "#0b2a4a",
        "galaxy" => "#04050d",
        _ => "#10162c",
    }
}
