//! In-process event bus: one unbounded queue per group, shared by that group's consumers, with a
//! delivery count per event and a dead-letter list per group; broadcast subscribers share one
//! bounded ring (`tokio::sync::broadcast`) and each loses its oldest events when it lags.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc};

use super::{
    Acker, BusError, DEFAULT_BROADCAST_CAPACITY, DEFAULT_DELIVERY_LIMIT, Delivery, Event, EventBus, NoAck,
    Subscription, record_dead_letter,
};

/// The most dead letters kept per group; the oldest go first (they were logged when they died).
const DEAD_LETTERS_KEPT: usize = 10_000;

/// An event waiting in a group's queue and how many times the group has had it delivered.
struct Queued {
    event: Event,
    deliveries: u32,
}

type Shared = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>>;
type DeadLetters = Arc<Mutex<VecDeque<Event>>>;

#[derive(Clone)]
struct Group {
    tx: mpsc::UnboundedSender<Queued>,
    rx: Shared,
    dead: DeadLetters,
}

#[derive(Default)]
struct State {
    groups: HashMap<String, Group>,
    /// Created at the first broadcast subscription.
    broadcast: Option<broadcast::Sender<Event>>,
}

pub struct InProcessBus {
    state: Mutex<State>,
    delivery_limit: u32,
    broadcast_capacity: usize,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            delivery_limit: DEFAULT_DELIVERY_LIMIT,
            broadcast_capacity: DEFAULT_BROADCAST_CAPACITY,
        }
    }
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Delivers an event at most `limit` times (at least once) to a group before dead-lettering it.
    pub fn with_delivery_limit(mut self, limit: u32) -> Self {
        self.delivery_limit = limit.max(1);
        self
    }

    /// Lets a broadcast subscriber lag by about `capacity` events (rounded up to a power of two)
    /// before it loses the oldest.
    pub fn with_broadcast_capacity(mut self, capacity: usize) -> Self {
        self.broadcast_capacity = capacity.clamp(1, usize::MAX / 4);
        self
    }

    /// The events `group` gave up on, oldest first (kept in memory, at most 10,000 per group).
    pub fn dead_letters(&self, group: &str) -> Vec<Event> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .groups
            .get(group)
            .map(|g| g.dead.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Settles one delivery. A delivery dropped without `ack` or `nack` (its consumer failed or
/// stopped mid-way) is handed back like a nack, as RabbitMQ does when a consumer goes away; a
/// handed-back event that has had its last delivery goes to the group's dead letters.
struct Requeue {
    group: String,
    tx: mpsc::UnboundedSender<Queued>,
    dead: DeadLetters,
    event: Event,
    deliveries: u32,
    limit: u32,
    settled: AtomicBool,
}

impl Requeue {
    fn hand_back(&self) -> Result<(), BusError> {
        if self.deliveries >= self.limit {
            let id = self.event.id.to_string();
            record_dead_letter(&self.group, &id, &self.event.event_type, self.deliveries);
            let mut dead = self.dead.lock().unwrap_or_else(|e| e.into_inner());
            if dead.len() >= DEAD_LETTERS_KEPT {
                dead.pop_front();
            }
            dead.push_back(self.event.clone());
            return Ok(());
        }
        self.tx
            .send(Queued { event: self.event.clone(), deliveries: self.deliveries })
            .map_err(|_| BusError::Unavailable("bus closed".into()))
    }
}

#[async_trait]
impl Acker for Requeue {
    async fn ack(&self) -> Result<(), BusError> {
        self.settled.store(true, Ordering::SeqCst);
        Ok(())
    }
    async fn nack(&self) -> Result<(), BusError> {
        if self.settled.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.hand_back()
    }
}

impl Drop for Requeue {
    fn drop(&mut self) {
        if !self.settled.swap(true, Ordering::SeqCst) {
            let _ = self.hand_back();
        }
    }
}

struct InProcessSubscription {
    group: String,
    inner: Group,
    limit: u32,
}

#[async_trait]
impl Subscription for InProcessSubscription {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        let Queued { event, deliveries } = self.inner.rx.lock().await.recv().await?;
        let acker = Box::new(Requeue {
            group: self.group.clone(),
            tx: self.inner.tx.clone(),
            dead: self.inner.dead.clone(),
            event: event.clone(),
            deliveries: deliveries + 1,
            limit: self.limit,
            settled: AtomicBool::new(false),
        });
        Some(Ok(Delivery { event, redelivered: deliveries > 0, acker }))
    }
}

struct BroadcastSubscription {
    rx: broadcast::Receiver<Event>,
}

#[async_trait]
impl Subscription for BroadcastSubscription {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        loop {
            match self.rx.recv().await {
                Ok(event) => return Some(Ok(Delivery { event, redelivered: false, acker: Box::new(NoAck) })),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "broadcast subscriber fell behind; its oldest events were dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let live = state.broadcast.as_ref().filter(|b| b.receiver_count() > 0);
        // As on RabbitMQ with the mandatory flag: routable when any group or broadcast
        // subscriber can receive it.
        if state.groups.is_empty() && live.is_none() {
            return Err(BusError::Unroutable(event.id.to_string()));
        }
        for group in state.groups.values() {
            group
                .tx
                .send(Queued { event: event.clone(), deliveries: 0 })
                .map_err(|_| BusError::Unavailable("bus closed".into()))?;
        }
        if let Some(live) = live {
            // Fails only when every receiver went away meanwhile: nothing to deliver to.
            let _ = live.send(event.clone());
        }
        Ok(())
    }

    async fn subscribe(&self, group: &str) -> Result<Box<dyn Subscription>, BusError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let inner = state
            .groups
            .entry(group.to_string())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                Group { tx, rx: Arc::new(tokio::sync::Mutex::new(rx)), dead: DeadLetters::default() }
            })
            .clone();
        Ok(Box::new(InProcessSubscription { group: group.to_string(), inner, limit: self.delivery_limit }))
    }

    async fn subscribe_broadcast(&self) -> Result<Box<dyn Subscription>, BusError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let capacity = self.broadcast_capacity;
        let rx = state.broadcast.get_or_insert_with(|| broadcast::channel(capacity).0).subscribe();
        Ok(Box::new(BroadcastSubscription { rx }))
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "in-process"
    }
}
