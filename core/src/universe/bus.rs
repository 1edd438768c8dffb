//! The event bus of a universe (seed 001): subscribers pick the kinds of event they want and
//! receive exactly those, in the order the universe recorded them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::UniverseEvent;

/// The kinds of [`UniverseEvent`] one can subscribe to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    bitcode::Encode,
    bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// [`UniverseEvent::Spawned`].
    Spawned,
    /// [`UniverseEvent::Despawned`].
    Despawned,
    /// [`UniverseEvent::Changed`].
    Changed,
    /// [`UniverseEvent::Custom`] (ripples and other happenings).
    Custom,
}

impl UniverseEvent {
    /// Which kind of event this is.
    pub fn kind(&self) -> EventKind {
        match self {
            UniverseEvent::Spawned { .. } => EventKind::Spawned,
            UniverseEvent::Despawned { .. } => EventKind::Despawned,
            UniverseEvent::Changed { .. } => EventKind::Changed,
            UniverseEvent::Custom { .. } => EventKind::Custom,
        }
    }
}

/// Who wants which kinds of event. `S` names a subscriber (a session, a passage, a log).
#[derive(Debug, Clone)]
pub struct EventBus<S> {
    subscribers: BTreeMap<S, BTreeSet<EventKind>>,
}

impl<S> Default for EventBus<S> {
    fn default() -> Self {
        EventBus {
            subscribers: BTreeMap::new(),
        }
    }
}

impl<S: Ord + Clone> EventBus<S> {
    /// Sets what `subscriber` receives; an empty set unsubscribes it.
    pub fn subscribe(&mut self, subscriber: S, kinds: impl IntoIterator<Item = EventKind>) {
        let kinds: BTreeSet<EventKind> = kinds.into_iter().collect();
        if kinds.is_empty() {
            self.subscribers.remove(&subscriber);
        } else {
            self.subscribers.insert(subscriber, kinds);
        }
    }

    /// Forgets a subscriber.
    pub fn unsubscribe(&mut self, subscriber: &S) {
        self.subscribers.remove(subscriber);
    }

    /// Number of subscribers.
    pub fn len(&self) -> usize {
        self.subscribers.len()
    }

    /// Whether nobody listens.
    pub fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
    }

    /// For each subscriber with something to hear, the events it asked for, in order.
    pub fn publish(&self, events: &[UniverseEvent]) -> Vec<(S, Vec<UniverseEvent>)> {
        if events.is_empty() {
            return Vec::new();
        }
        self.subscribers
            .iter()
            .filter_map(|(s, kinds)| {
                let wanted: Vec<UniverseEvent> = events
                    .iter()
                    .filter(|e| kinds.contains(&e.kind()))
                    .cloned()
                    .collect();
                (!wanted.is_empty()).then(|| (s.clone(), wanted))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EntityId;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn each_subscriber_hears_exactly_its_kinds_in_order(
            events in proptest::collection::vec(any::<UniverseEvent>(), 0..40),
            subs in proptest::collection::btree_map(0u8..6, proptest::collection::btree_set(any::<EventKind>(), 0..4), 0..6),
        ) {
            let mut bus = EventBus::default();
            for (s, kinds) in &subs {
                bus.subscribe(*s, kinds.iter().copied());
            }
            let heard: BTreeMap<u8, Vec<UniverseEvent>> = bus.publish(&events).into_iter().collect();
            for (s, kinds) in &subs {
                let expected: Vec<_> = events.iter().filter(|e| kinds.contains(&e.kind())).cloned().collect();
                prop_assert_eq!(heard.get(s).cloned().unwrap_or_default(), expected);
            }
            prop_assert!(heard.keys().all(|s| subs.contains_key(s)));
        }
    }

    #[test]
    fn empty_set_unsubscribes() {
        let mut bus = EventBus::default();
        bus.subscribe(1, [EventKind::Spawned]);
        bus.subscribe(1, []);
        assert!(bus.is_empty());
        let e = UniverseEvent::Spawned {
            entity: EntityId {
                index: 0,
                generation: 0,
            },
        };
        assert!(bus.publish(&[e]).is_empty());
    }
}
