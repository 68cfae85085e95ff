//! In-process event bus: one unbounded queue per group, shared by that group's consumers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{Acker, BusError, Delivery, Event, EventBus, Subscription};

type Queued = (Event, bool);
type Shared = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>>;
type Group = (mpsc::UnboundedSender<Queued>, Shared);

#[derive(Default)]
pub struct InProcessBus {
    groups: Mutex<HashMap<String, Group>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Settles one delivery. A delivery dropped without `ack` or `nack` (its consumer failed or
/// stopped mid-way) is handed back like a nack, as RabbitMQ does when a consumer goes away.
struct Requeue {
    tx: mpsc::UnboundedSender<(Event, bool)>,
    event: Event,
    settled: AtomicBool,
}

#[async_trait]
impl Acker for Requeue {
    async fn ack(&self) -> Result<(), BusError> {
        self.settled.store(true, Ordering::SeqCst);
        Ok(())
    }
    async fn nack(&self) -> Result<(), BusError> {
        self.settled.store(true, Ordering::SeqCst);
        self.tx.send((self.event.clone(), true)).map_err(|_| BusError::Unavailable("bus closed".into()))
    }
}

impl Drop for Requeue {
    fn drop(&mut self) {
        if !self.settled.load(Ordering::SeqCst) {
            let _ = self.tx.send((self.event.clone(), true));
        }
    }
}

struct InProcessSubscription {
    tx: mpsc::UnboundedSender<(Event, bool)>,
    rx: Shared,
}

#[async_trait]
impl Subscription for InProcessSubscription {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        let (event, redelivered) = self.rx.lock().await.recv().await?;
        let acker = Box::new(Requeue { tx: self.tx.clone(), event: event.clone(), settled: AtomicBool::new(false) });
        Some(Ok(Delivery { event, redelivered, acker }))
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if groups.is_empty() {
            return Err(BusError::Unroutable(event.id.to_string()));
        }
        for (tx, _) in groups.values() {
            tx.send((event.clone(), false)).map_err(|_| BusError::Unavailable("bus closed".into()))?;
        }
        Ok(())
    }

    async fn subscribe(&self, group: &str) -> Result<Box<dyn Subscription>, BusError> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let (tx, rx) = groups
            .entry(group.to_string())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                (tx, Arc::new(tokio::sync::Mutex::new(rx)))
            })
            .clone();
        Ok(Box::new(InProcessSubscription { tx, rx }))
    }

    async fn subscribe_broadcast(&self) -> Result<Box<dyn Subscription>, BusError> {
        self.subscribe(&format!("tmp-{}", crate::ids::new_id())).await
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "in-process"
    }
}
