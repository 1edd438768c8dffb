//! Avatars on the canvas, over the universe's own drawing of them: a name label, a ring
//! marking our own, a green ring while someone speaks, and their camera in a round bubble
//! above their head.

use std::collections::HashMap;
use std::f64::consts::TAU;

use multiverse_core::ids::ClientId;
use web_sys::{CanvasRenderingContext2d, HtmlVideoElement};

use crate::canvas::Area;
use crate::scene::{Camera, Pane};

/// Radius of a video bubble (pixels).
const BUBBLE_R: f64 = 30.0;

/// A room member, as their avatar is labelled.
#[derive(Debug, Clone)]
pub struct Person {
    /// Display name.
    pub name: String,
    /// 0xRRGGBB.
    pub colour: u32,
    /// Whether their speaking light is on.
    pub speaking: bool,
}

/// What is drawn over the avatars of the main universe.
#[derive(Debug, Default)]
pub struct AvatarOverlay {
    /// Our client: our avatar is highlighted.
    pub me: Option<ClientId>,
    /// The room's members, by client.
    pub people: HashMap<ClientId, Person>,
    /// Cameras to show above avatars, by client.
    pub videos: Vec<(ClientId, HtmlVideoElement)>,
}

/// Draws the overlay for every avatar of `pane`, shown in area `a` through `camera`.
pub fn draw(
    ctx: &CanvasRenderingContext2d,
    pane: &Pane,
    camera: Camera,
    a: Area,
    now: f64,
    overlay: &AvatarOverlay,
) {
    ctx.save();
    ctx.begin_path();
    ctx.rect(
        f64::from(a.x),
        f64::from(a.y),
        f64::from(a.w),
        f64::from(a.h),
    );
    ctx.clip();
    ctx.set_text_align("center");
    ctx.set_font("600 12px system-ui, sans-serif");
    for e in pane.mirror.entities() {
        let (Some(client), Some(p)) = (e.avatar, pane.drawn_position(e.id.index, now)) else {
            continue;
        };
        let (x, y) = camera.to_screen(p, a.w, a.h);
        let (x, y) = (x + f64::from(a.x), y + f64::from(a.y));
        let r = f64::from((e.renderable.size * camera.zoom / 2.0).max(6.0));
        let mine = overlay.me == Some(client);
        let person = overlay.people.get(&client);
        let speaking = person.is_some_and(|p| p.speaking);
        let colour = person.map_or(e.renderable.colour, |p| p.colour);
        ring(
            ctx,
            x,
            y,
            r + 3.0,
            if mine { "#ffcc66" } else { "#e8ecff" },
            if mine { 3.0 } else { 1.5 },
        );
        if speaking {
            ring(ctx, x, y, r + 8.0, "#5be49b", 3.0);
        }
        let name = person.map_or("guest", |p| p.name.as_str());
        let label = if mine {
            format!("{name} (you)")
        } else {
            name.to_owned()
        };
        label_at(ctx, &label, x, y + r + 18.0, colour);
        if let Some((_, video)) = overlay.videos.iter().find(|(c, _)| *c == client) {
            bubble(ctx, video, x, y - r - BUBBLE_R - 10.0, speaking);
        }
    }
    ctx.restore();
}

fn ring(ctx: &CanvasRenderingContext2d, x: f64, y: f64, r: f64, style: &str, width: f64) {
    ctx.set_stroke_style_str(style);
    ctx.set_line_width(width);
    ctx.begin_path();
    let _ = ctx.arc(x, y, r, 0.0, TAU);
    ctx.stroke();
}

fn label_at(ctx: &CanvasRenderingContext2d, text: &str, x: f64, y: f64, colour: u32) {
    let w = ctx.measure_text(text).map_or(60.0, |m| m.width());
    ctx.set_fill_style_str("rgba(7,10,22,0.75)");
    ctx.fill_rect(x - w / 2.0 - 4.0, y - 12.0, w + 8.0, 16.0);
    ctx.set_fill_style_str(&format!("#{:06x}", colour & 0x00ff_ffff));
    let _ = ctx.fill_text(text, x, y);
}

/// A camera picture cropped to a circle centred at `(x, y)`.
fn bubble(ctx: &CanvasRenderingContext2d, video: &HtmlVideoElement, x: f64, y: f64, lit: bool) {
    let (vw, vh) = (
        f64::from(video.video_width()),
        f64::from(video.video_height()),
    );
    if vw <= 0.0 || vh <= 0.0 {
        return;
    }
    let side = vw.min(vh);
    ctx.save();
    ctx.begin_path();
    let _ = ctx.arc(x, y, BUBBLE_R, 0.0, TAU);
    ctx.clip();
    let _ = ctx.draw_image_with_html_video_element_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(
        video,
        (vw - side) / 2.0,
        (vh - side) / 2.0,
        side,
        side,
        x - BUBBLE_R,
        y - BUBBLE_R,
        2.0 * BUBBLE_R,
        2.0 * BUBBLE_R,
    );
    ctx.restore();
    ring(
        ctx,
        x,
        y,
        BUBBLE_R,
        if lit { "#5be49b" } else { "#e8ecff" },
        2.0,
    );
}
