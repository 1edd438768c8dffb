//! What the canvas shows: one pane per subscribed universe, each with its mirror, camera and
//! smoothing state. A plain struct fed by the net task and read by the renderer; no signals
//! per entity.
//!
//! Universes of linked peers are listed by the peer as `<peer name>/<universe name>` and
//! watched through portals (view only, streamed whole); [`Scene::is_local`] tells them apart.

use std::collections::{BTreeSet, HashMap};

use multiverse_core::ids::{EntityId, UniverseId};
use multiverse_core::stream::{
    InteractionMode, MirrorError, StreamCache, StreamConfiguration, ViewMode,
};
use multiverse_core::universe::{Rect, UniverseEvent, UniverseInfo, Vec2};
use multiverse_core::wire::{ClientMessage, ServerMessage};

/// How far ahead of its last known position an entity is drawn, at most (seconds).
const MAX_EXTRAPOLATION: f64 = 0.25;
/// Time constant with which a correction after an update fades out (milliseconds).
const CORRECTION_FADE_MS: f64 = 80.0;
/// How long a ripple stays visible (milliseconds).
const RIPPLE_MS: f64 = 700.0;
/// How far outside its drawn shape an entity can still be grabbed (pixels).
const GRAB_SLACK_PX: f32 = 8.0;

/// The visible part of a universe: centre and scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// World point at the centre of the pane.
    pub centre: Vec2,
    /// Pixels per world unit.
    pub zoom: f32,
}

impl Camera {
    /// A camera showing all of `bounds` in a `w`×`h` pixel pane.
    pub fn fit(bounds: Rect, w: f32, h: f32) -> Camera {
        let zoom = (w / bounds.width).min(h / bounds.height) * 0.96;
        Camera {
            centre: bounds.centre(),
            zoom: zoom.max(1e-3),
        }
    }

    /// World → pane pixels.
    pub fn to_screen(self, p: Vec2, w: f32, h: f32) -> (f64, f64) {
        (
            f64::from((p.x - self.centre.x) * self.zoom + w / 2.0),
            f64::from((p.y - self.centre.y) * self.zoom + h / 2.0),
        )
    }

    /// Pane pixels → world.
    pub fn to_world(self, x: f32, y: f32, w: f32, h: f32) -> Vec2 {
        Vec2::new(
            (x - w / 2.0) / self.zoom + self.centre.x,
            (y - h / 2.0) / self.zoom + self.centre.y,
        )
    }

    /// The world rectangle visible in a `w`×`h` pane.
    pub fn viewport(self, w: f32, h: f32) -> Rect {
        let (vw, vh) = (w / self.zoom, h / self.zoom);
        Rect::new(self.centre.x - vw / 2.0, self.centre.y - vh / 2.0, vw, vh)
    }
}

/// Smoothing state of one entity.
#[derive(Debug, Clone, Copy)]
struct Motion {
    /// When its mirrored position last changed (ms).
    since: f64,
    /// Drawn minus mirrored position at that moment; fades out.
    offset: Vec2,
}

/// One universe on screen.
#[derive(Debug)]
pub struct Pane {
    /// The universe.
    pub info: UniverseInfo,
    /// Its mirror.
    pub mirror: StreamCache,
    /// Observe or participate.
    pub mode: ViewMode,
    /// What the peer lets us do here.
    pub interaction: InteractionMode,
    /// What is visible; `None` until the pane has a size.
    pub camera: Option<Camera>,
    /// The viewport last sent to the peer.
    pub sent_viewport: Option<Rect>,
    motion: HashMap<u32, Motion>,
    ripples: Vec<(Vec2, f64)>,
}

impl Pane {
    fn new(info: UniverseInfo, mode: ViewMode, interaction: InteractionMode) -> Pane {
        Pane {
            mirror: StreamCache::with_default_cap(info.id),
            info,
            mode,
            interaction,
            camera: None,
            sent_viewport: None,
            motion: HashMap::new(),
            ripples: Vec::new(),
        }
    }

    /// The entity drawn nearest to the pane point `(x, y)` (pixels, in a `w`×`h` pane) at
    /// time `now`, if one is within grabbing distance of it.
    pub fn entity_at(&self, x: f32, y: f32, w: f32, h: f32, now: f64) -> Option<EntityId> {
        let camera = self.camera?;
        let mut best: Option<(f32, EntityId)> = None;
        for e in self.mirror.entities() {
            let Some(p) = self.drawn_position(e.id.index, now) else {
                continue;
            };
            let (sx, sy) = camera.to_screen(p, w, h);
            let d = (sx as f32 - x).hypot(sy as f32 - y);
            let reach = (e.renderable.size * camera.zoom / 2.0).max(1.5) + GRAB_SLACK_PX;
            if d <= reach && best.is_none_or(|(nearest, _)| d < nearest) {
                best = Some((d, e.id));
            }
        }
        best.map(|(_, id)| id)
    }

    /// Whether clicks in this pane become interactions.
    pub fn interactive(&self) -> bool {
        self.mode == ViewMode::Participate && self.interaction >= InteractionMode::Limited
    }

    /// Where to draw an entity at time `now` (ms): its mirrored position, carried forward by
    /// its velocity for a moment, plus a fading correction.
    pub fn drawn_position(&self, index: u32, now: f64) -> Option<Vec2> {
        let e = self.mirror.get(index)?;
        let base = e.position();
        let Some(m) = self.motion.get(&index) else {
            return Some(base);
        };
        let dt = ((now - m.since) / 1000.0).clamp(0.0, MAX_EXTRAPOLATION) as f32;
        let fade = (-(now - m.since).max(0.0) / CORRECTION_FADE_MS).exp() as f32;
        let v = e.velocity();
        Some(Vec2::new(
            base.x + v.x * dt + m.offset.x * fade,
            base.y + v.y * dt + m.offset.y * fade,
        ))
    }

    /// Ripples still visible at `now`, with their age in 0..1.
    pub fn ripples(&self, now: f64) -> impl Iterator<Item = (Vec2, f64)> + '_ {
        self.ripples
            .iter()
            .map(move |(at, t)| (*at, (now - t) / RIPPLE_MS))
            .filter(|(_, age)| (0.0..1.0).contains(age))
    }

    /// Drawn position, mirrored position and velocity of every entity, before a frame.
    fn remember(&self, now: f64) -> HashMap<u32, (Vec2, Vec2, Vec2)> {
        self.mirror
            .entities()
            .filter_map(|e| {
                Some((
                    e.id.index,
                    (
                        self.drawn_position(e.id.index, now)?,
                        e.position(),
                        e.velocity(),
                    ),
                ))
            })
            .collect()
    }

    /// After a frame: entities whose position or velocity changed restart their smoothing
    /// from where they were drawn, so nothing jumps; the others keep going.
    fn settle(&mut self, before: &HashMap<u32, (Vec2, Vec2, Vec2)>, now: f64) {
        let mut motion = HashMap::with_capacity(self.mirror.len());
        for e in self.mirror.entities() {
            let index = e.id.index;
            let (base, velocity) = (e.position(), e.velocity());
            let m = match (before.get(&index), self.motion.get(&index)) {
                (Some((_, old_base, old_v)), Some(m))
                    if *old_base == base && *old_v == velocity =>
                {
                    *m
                }
                (Some((drawn, _, _)), _) => Motion {
                    since: now,
                    offset: Vec2::new(drawn.x - base.x, drawn.y - base.y),
                },
                (None, _) => Motion {
                    since: now,
                    offset: Vec2::default(),
                },
            };
            motion.insert(index, m);
        }
        self.motion = motion;
        self.ripples.retain(|(_, t)| now - t < RIPPLE_MS);
    }
}

/// Every pane, and what the peer told us about universes.
#[derive(Debug, Default)]
pub struct Scene {
    /// The peer's universes (from `universe_list`).
    pub universes: Vec<UniverseInfo>,
    /// Subscribed universes.
    pub panes: HashMap<UniverseId, Pane>,
    /// The last error the peer reported, for the status line.
    pub last_error: Option<String>,
    /// Name of the universe in the main pane.
    pub main: String,
    /// The main pane's universe when it was chosen by id (the universe picker, or a world
    /// room's own universe); wins over `main`, since two universes may share a name.
    pub main_pin: Option<UniverseId>,
    /// Whether the layout shows a second pane.
    pub wants_second: bool,
    /// The universe chosen for the second pane (the portal picker, or `?portal=` in the
    /// link); without one, the first listed universe other than the main one.
    pub second_pin: Option<UniverseId>,
    /// Universes we asked to stream (subscribed, or the answer is on its way).
    requested: BTreeSet<UniverseId>,
}

impl Scene {
    /// Applies a message from the peer at time `now` (ms); returns requests to send back.
    pub fn handle(&mut self, message: ServerMessage, now: f64) -> Vec<ClientMessage> {
        match message {
            ServerMessage::UniverseList { universes } => {
                self.universes = universes;
                if let Some(name) = self.main_pin.and_then(|id| self.named(id)) {
                    self.main = name;
                }
                return self.sync_subscriptions();
            }
            ServerMessage::Subscribed {
                mut universe,
                mode,
                interaction,
            } => {
                // A portal's owner names the universe without its peer: keep the listed name.
                if let Some(name) = self.named(universe.id) {
                    universe.name = name;
                }
                let pane = Pane::new(universe, mode, interaction);
                self.panes.insert(pane.info.id, pane);
            }
            ServerMessage::Snapshot(s) => {
                // Joining a portal stream another viewer here already watches brings a
                // snapshot but no `subscribed`: start the pane from the listing, view only.
                if !self.panes.contains_key(&s.universe) && self.requested.contains(&s.universe) {
                    if let Some(info) = self.universes.iter().find(|u| u.id == s.universe) {
                        let pane =
                            Pane::new(info.clone(), ViewMode::Observe, InteractionMode::None);
                        self.panes.insert(s.universe, pane);
                    }
                }
                if let Some(pane) = self.panes.get_mut(&s.universe) {
                    let before = pane.remember(now);
                    if let Err(e) = pane.mirror.apply_snapshot(&s) {
                        self.last_error = Some(format!("snapshot refused: {e}"));
                        return vec![ClientMessage::Resync {
                            universe: s.universe,
                        }];
                    }
                    pane.settle(&before, now);
                    add_ripples(pane, &s.events, now);
                }
            }
            ServerMessage::Update(u) => {
                if let Some(pane) = self.panes.get_mut(&u.universe) {
                    let before = pane.remember(now);
                    match pane.mirror.apply_update(&u) {
                        Ok(()) => {
                            pane.settle(&before, now);
                            add_ripples(pane, &u.events, now);
                        }
                        Err(MirrorError::AwaitingSnapshot) => {}
                        Err(e) => {
                            leptos::logging::warn!(
                                "stream of {} out of step ({e}); resyncing",
                                pane.info.name
                            );
                            return vec![ClientMessage::Resync {
                                universe: u.universe,
                            }];
                        }
                    }
                }
            }
            ServerMessage::Unsubscribed { universe, .. } => {
                // Also when the peer ended it (a portal whose peer went away): the next
                // universe list subscribes again if the universe is still wanted and listed.
                self.panes.remove(&universe);
                self.requested.remove(&universe);
            }
            ServerMessage::Error { code, message } => {
                leptos::logging::warn!("peer refused a request ({code:?}): {message}");
                self.last_error = Some(message);
            }
            _ => {}
        }
        Vec::new()
    }

    /// A scene whose main pane shows the universe called `main`.
    pub fn showing(main: String) -> Scene {
        Scene {
            main,
            ..Scene::default()
        }
    }

    /// A new connection: the peer knows none of our subscriptions any more.
    pub fn reset(&mut self) {
        self.panes.clear();
        self.requested.clear();
    }

    /// Shows the universe `id` in the main pane (chosen by id rather than by name).
    pub fn show(&mut self, id: UniverseId) {
        self.main_pin = Some(id);
        if let Some(name) = self.named(id) {
            self.main = name;
        }
    }

    /// The listed name of universe `id`.
    pub fn named(&self, id: UniverseId) -> Option<String> {
        self.universes
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.name.clone())
    }

    /// Id of the main universe: the pinned one, else the one called `main` once listed.
    pub fn main_id(&self) -> Option<UniverseId> {
        self.main_pin
            .or_else(|| self.find(&self.main).map(|u| u.id))
    }

    /// Id of the second universe, if one is wanted: the chosen one once the peer lists it,
    /// else the first listed universe other than the main one.
    pub fn second_id(&self) -> Option<UniverseId> {
        if !self.wants_second {
            return None;
        }
        let main = self.main_id();
        match self.second_pin.filter(|pin| Some(*pin) != main) {
            Some(pin) => self.universes.iter().any(|u| u.id == pin).then_some(pin),
            None => self
                .universes
                .iter()
                .map(|u| u.id)
                .find(|id| Some(*id) != main),
        }
    }

    /// The universes in the main and the second pane.
    pub fn roles(&self) -> (Option<UniverseId>, Option<UniverseId>) {
        (self.main_id(), self.second_id())
    }

    /// After a change of universes: a pane that moved to the other role (main ↔ second)
    /// has its camera fitted again to its new place.
    pub fn refit_moved(&mut self, before: (Option<UniverseId>, Option<UniverseId>)) {
        let (main, second) = self.roles();
        for (now, was) in [(main, before.0), (second, before.1)] {
            if let Some(pane) = now
                .filter(|id| Some(*id) != was)
                .and_then(|id| self.panes.get_mut(&id))
            {
                pane.camera = None;
                pane.sent_viewport = None;
            }
        }
    }

    /// Whether `id` is listed as a universe this peer hosts itself (not one of a linked
    /// peer's, which the peer lists as `<peer>/<universe>`; local names never hold a `/`).
    pub fn is_local(&self, id: UniverseId) -> bool {
        self.universes
            .iter()
            .any(|u| u.id == id && !u.name.contains('/'))
    }

    /// Subscribes to wanted universes and unsubscribes from the others.
    pub fn sync_subscriptions(&mut self) -> Vec<ClientMessage> {
        let wanted: Vec<(UniverseId, ViewMode)> = [
            (self.main_id(), ViewMode::Participate),
            (self.second_id(), ViewMode::Observe),
        ]
        .into_iter()
        .filter_map(|(id, mode)| Some((id?, mode)))
        .collect();
        let mut out = Vec::new();
        for (universe, mode) in &wanted {
            if self.requested.insert(*universe) {
                let config = StreamConfiguration::default();
                out.push(ClientMessage::Subscribe {
                    universe: *universe,
                    config,
                    viewport: None,
                    mode: *mode,
                });
            }
        }
        let stale: Vec<UniverseId> = self
            .requested
            .iter()
            .filter(|id| !wanted.iter().any(|(w, _)| w == *id))
            .copied()
            .collect();
        for universe in stale {
            self.requested.remove(&universe);
            self.panes.remove(&universe);
            out.push(ClientMessage::Unsubscribe { universe });
        }
        out
    }

    /// The universe called `name`, if the peer hosts one.
    pub fn find(&self, name: &str) -> Option<&UniverseInfo> {
        self.universes.iter().find(|u| u.name == name)
    }
}

fn add_ripples(pane: &mut Pane, events: &[UniverseEvent], now: f64) {
    for e in events {
        if let UniverseEvent::Custom {
            name, at: Some(at), ..
        } = e
        {
            if name == "ripple" {
                pane.ripples.push((*at, now));
            }
        }
    }
}
