//! What the canvas shows: one pane per subscribed universe, each with its mirror, camera and
//! smoothing state. A plain struct fed by the net task and read by the renderer; no signals
//! per entity.

use std::collections::{BTreeSet, HashMap};

use multiverse_core::ids::UniverseId;
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
    /// The universe in the second pane, if the layout has one.
    pub second: Option<UniverseId>,
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
                universe,
                mode,
                interaction,
            } => {
                let pane = Pane {
                    mirror: StreamCache::with_default_cap(universe.id),
                    info: universe,
                    mode,
                    interaction,
                    camera: None,
                    sent_viewport: None,
                    motion: HashMap::new(),
                    ripples: Vec::new(),
                };
                self.panes.insert(pane.info.id, pane);
            }
            ServerMessage::Snapshot(s) => {
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
                self.panes.remove(&universe);
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

    fn named(&self, id: UniverseId) -> Option<String> {
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

    /// Id of the second universe, if one is wanted.
    pub fn second_id(&self) -> Option<UniverseId> {
        self.second
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
