//! The diff at the heart of streaming: which entities a group should see now, and what changed
//! in them since the group's model of its members' mirrors was last brought up to date.

use std::collections::VecDeque;

use super::grid::Grid;
use super::server::{Group, Known, Scratch};
use super::state::{quantise, EntityChange, EntityState, Moves, StreamUpdate};
use super::MAX_EVENTS_PER_UPDATE;
use crate::universe::{Entity, Universe, UniverseEvent};

pub(super) fn ticks_per_update(tick_rate: u32, hz: u32) -> u64 {
    u64::from(tick_rate.max(1).div_ceil(hz.max(1))).max(1)
}

fn passes_filter(e: &Entity, interest: &super::server::Interest) -> bool {
    let f = &interest.config.filter;
    (f.kinds.is_empty() || f.kinds.contains(&e.kind))
        && (f.tags.is_empty() || f.tags.iter().any(|t| e.tags.binary_search(t).is_ok()))
        && (!f.owned_by_viewer || (interest.viewer.is_some() && e.owner == interest.viewer))
}

/// The entities a group should see now: (slot index, distance to the centre), ordered by
/// index, at most `max_entities` nearest. Hidden entities are never selected.
fn select(group: &Group, universe: &Universe, grid: &Grid, scratch: &mut Scratch) {
    let Scratch {
        selected,
        candidates,
        ..
    } = scratch;
    selected.clear();
    let interest = &group.interest;
    if !interest.config.include_entities {
        return;
    }
    let centre = interest
        .viewport
        .unwrap_or(universe.config().physics.bounds)
        .centre();
    let mut consider = |index: u32| {
        // Hidden entities (in transit to or arriving from another peer) are nobody's to see.
        let Some((_, e)) = universe
            .get_by_index(index)
            .filter(|_| !universe.is_hidden_at(index))
        else {
            return;
        };
        if interest.viewport.is_some_and(|v| !v.contains(e.position)) || !passes_filter(e, interest)
        {
            return;
        }
        selected.push((index, e.position.distance(centre)));
    };
    match &interest.viewport {
        Some(v) => {
            candidates.clear();
            grid.query(v, candidates);
            candidates.iter().for_each(|i| consider(*i));
        }
        None => (0..universe.slot_capacity() as u32).for_each(consider),
    }
    let max = interest.config.max_entities as usize;
    if selected.len() > max {
        let nearest_first =
            |a: &(u32, f32), b: &(u32, f32)| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0));
        selected.select_nth_unstable_by(max, nearest_first);
        selected.truncate(max);
    }
    selected.sort_unstable_by_key(|(i, _)| *i);
}

/// Diffs a group's model against the universe, updates the model, returns the changes.
/// `initial`: the group is new; everything is compared.
pub(super) fn compute_update(
    group: &mut Group,
    universe: &Universe,
    grid: &Grid,
    scratch: &mut Scratch,
    events: &VecDeque<(u64, UniverseEvent)>,
    initial: bool,
) -> StreamUpdate {
    select(group, universe, grid, scratch);
    let tick = universe.tick();
    let words = universe.slot_capacity().div_ceil(64);
    scratch.bits.clear();
    scratch.bits.resize(words, 0);
    for (i, _) in &scratch.selected {
        scratch.bits[*i as usize / 64] |= 1 << (i % 64);
    }
    let mut update = StreamUpdate::default();

    // Leavers: no longer selected, or their slot now holds another entity.
    scratch.gone.clear();
    for (index, k) in &group.known {
        let selected = scratch
            .bits
            .get(*index as usize / 64)
            .is_some_and(|w| w & (1 << (index % 64)) != 0);
        let same = universe
            .get_by_index(*index)
            .is_some_and(|(id, _)| id == k.state.id);
        if !selected || !same {
            scratch.gone.push(*index);
        }
    }
    // Sorted by slot index, so `left` is ordered by id (binary-searched for events below).
    scratch.gone.sort_unstable();
    for index in &scratch.gone {
        let k = group.known.remove(index).expect("collected from known");
        update.left.push(k.state.id);
    }

    let config = &group.interest.config;
    let rate_of = |distance: f32| {
        config
            .distance_rates
            .as_ref()
            .map_or(config.sync_hz, |r| r.hz_at(distance))
            .min(config.sync_hz)
    };
    let tick_rate = universe.config().tick_rate;
    let mut moves = Moves::default();
    let mut previous = 0u32;
    for (index, distance) in &scratch.selected {
        let (id, e) = universe
            .get_by_index(*index)
            .expect("selected entities are live");
        let Some(k) = group.known.get_mut(index) else {
            update.entered.push(EntityState::of(id, e));
            group.known.insert(
                *index,
                Known {
                    state: EntityState::of(id, e),
                    pos_tick: tick,
                },
            );
            continue;
        };
        if initial || universe.meta_tick(*index) >= group.last_sync_tick {
            let mut fresh = EntityState::of(id, e);
            (fresh.x, fresh.y) = (k.state.x, k.state.y);
            let deltas = k.state.diff(&fresh);
            if !deltas.is_empty() {
                update.changes.push(EntityChange { id, deltas });
                k.state = fresh;
            }
        }
        if tick.saturating_sub(k.pos_tick) >= ticks_per_update(tick_rate, rate_of(*distance)) {
            let (qx, qy) = (quantise(e.position.x), quantise(e.position.y));
            if (qx, qy) != (k.state.x, k.state.y) {
                moves.index_gaps.push(index - previous);
                moves.dx.push(qx.wrapping_sub(k.state.x));
                moves.dy.push(qy.wrapping_sub(k.state.y));
                previous = *index;
                (k.state.x, k.state.y) = (qx, qy);
            }
            k.pos_tick = tick;
        }
    }
    update.moves = moves;

    if config.include_events {
        let viewport = group.interest.viewport;
        let relevant = |e: &UniverseEvent| match e.entity() {
            Some(id) => {
                group.known.get(&id.index).is_some_and(|k| k.state.id == id)
                    || update.left.binary_search(&id).is_ok()
            }
            None => match e {
                UniverseEvent::Custom { at: Some(at), .. } => {
                    viewport.is_none_or(|v| v.contains(*at))
                }
                _ => true,
            },
        };
        update.events = events
            .iter()
            .filter(|(seq, e)| *seq > group.event_seq && relevant(e))
            .take(MAX_EVENTS_PER_UPDATE)
            .map(|(_, e)| e.clone())
            .collect();
    }
    group.event_seq = events
        .back()
        .map_or(group.event_seq, |(seq, _)| (*seq).max(group.event_seq));
    group.last_sync_tick = tick;
    update
}
