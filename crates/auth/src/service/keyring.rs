//! The signing-key ring: which key signs, which keys the JWKS publishes, and their lifecycle.
//!
//! A key is made on first start, then on schedule (`KeySettings::rotation`), when the configured
//! algorithm differs from the newest key's, and by `trellis keys rotate`. A new key is published at
//! once but signs only from `active_from` (`KeySettings::activation_delay` later, when every
//! replica publishes it and every verifier can fetch it). The key it replaces stays published until
//! it stopped signing + the access-token lifetime + [`RETIRE_LEEWAY`], so every token it signed
//! verifies to its expiry; then it is retired and leaves the JWKS.
//!
//! Every replica runs [`spawn_key_maintenance`]: it reloads the ring from the database, retires
//! what is due and rotates when due. Rotation is a conditional insert serialized by the store, so
//! of replicas deciding at once exactly one rotates.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use api::ApiError;
use api::auth::Jwks;
use platform::bus::Event;
use platform::identity::UNKNOWN_KID_REFETCH;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::AuthService;
use crate::keys::{self, SigningAlgorithm, SigningKey};
use crate::ports::StoredKey;

/// Past the end of the last token a key signed, how long it stays published: covers the
/// verifiers' 30 s `exp` leeway and clock skew between machines.
pub const RETIRE_LEEWAY: Duration = Duration::from_secs(120);

/// A key whose algorithm differs from the configured one is replaced at once, unless it is
/// younger than this: during a rolling update that changes the algorithm, old and new replicas
/// would otherwise replace each other's keys at every check.
pub const ALGORITHM_SWITCH_HOLD: Duration = Duration::from_secs(3600);

/// Settings of the key ring.
#[derive(Debug, Clone, Copy)]
pub struct KeySettings {
    pub algorithm: SigningAlgorithm,
    /// How long a key signs before the scheduled rotation replaces it.
    pub rotation: Duration,
    /// How often each replica reloads the ring, retires and checks whether a rotation is due.
    pub check_interval: Duration,
}

impl Default for KeySettings {
    fn default() -> Self {
        KeySettings {
            algorithm: SigningAlgorithm::RS256,
            rotation: Duration::from_secs(30 * 86_400),
            check_interval: Duration::from_secs(60),
        }
    }
}

impl KeySettings {
    /// How long after its creation a rotated-in key starts signing: every replica has reloaded it
    /// within one check interval, and a verifier that fetched the JWKS just before may refetch for
    /// an unknown kid [`UNKNOWN_KID_REFETCH`] later; one more interval is margin. So no verifier
    /// ever sees a token of a kid it cannot fetch.
    pub fn activation_delay(&self) -> Duration {
        self.check_interval * 2 + UNKNOWN_KID_REFETCH
    }
}

/// Why a key was made (recorded in its event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationReason {
    /// No key existed.
    Initial,
    Scheduled,
    AlgorithmChanged,
    /// `trellis keys rotate`.
    Manual,
}

impl RotationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationReason::Initial => "initial",
            RotationReason::Scheduled => "scheduled",
            RotationReason::AlgorithmChanged => "algorithm_changed",
            RotationReason::Manual => "manual",
        }
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// Signs new tokens.
    Current,
    /// Replaced; published until the tokens it signed have expired.
    Previous,
    /// Out of the JWKS; tokens it signed are rejected.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Previous => "previous",
            KeyState::Retired => "retired",
        }
    }
}

/// A key as `trellis keys list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub created_at: OffsetDateTime,
    pub active_from: OffsetDateTime,
    pub state: KeyState,
    /// When it was or will be retired, once it has been replaced.
    pub retires_at: Option<OffsetDateTime>,
}

/// The lifecycle times of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Times {
    created_at: OffsetDateTime,
    active_from: OffsetDateTime,
}

/// When the key at `i` (of keys newest first) stopped signing: the earliest `active_from` of a
/// newer key that is active by `now`. None while it is current or not yet signing.
fn superseded_at(times: &[Times], i: usize, now: OffsetDateTime) -> Option<OffsetDateTime> {
    times[..i].iter().map(|t| t.active_from).filter(|a| *a <= now).min()
}

/// The state of the key at `i` (of unretired keys newest first) and its retirement time.
fn state_at(times: &[Times], i: usize, now: OffsetDateTime, overlap: Duration) -> (KeyState, Option<OffsetDateTime>) {
    match superseded_at(times, i, now) {
        Some(at) => {
            let retires = at + overlap;
            (if retires <= now { KeyState::Retired } else { KeyState::Previous }, Some(retires))
        }
        None if times[i].active_from <= now => (KeyState::Current, None),
        // Not signing yet; if no key signs at all (cannot happen after the first key), it signs.
        None if times.iter().all(|t| t.active_from > now) && i == 0 => (KeyState::Current, None),
        None => (KeyState::Next, None),
    }
}

struct RingKey {
    key: Arc<SigningKey>,
    times: Times,
}

/// The keys loaded in this process, newest first.
#[derive(Default)]
pub struct KeyRing {
    keys: RwLock<Vec<RingKey>>,
}

impl KeyRing {
    fn replace(&self, keys: Vec<RingKey>) {
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
    }

    fn times(keys: &[RingKey]) -> Vec<Times> {
        keys.iter().map(|k| k.times).collect()
    }

    /// The key that signs now.
    pub fn current(&self, now: OffsetDateTime, overlap: Duration) -> Option<Arc<SigningKey>> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let times = Self::times(&keys);
        (0..keys.len()).find(|&i| state_at(&times, i, now, overlap).0 == KeyState::Current).map(|i| keys[i].key.clone())
    }

    /// The JWKS: every key that is next, current or previous at `now`.
    pub fn published(&self, now: OffsetDateTime, overlap: Duration) -> Jwks {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let times = Self::times(&keys);
        let live = (0..keys.len()).filter(|&i| state_at(&times, i, now, overlap).0 != KeyState::Retired);
        keys::jwks(live.map(|i| keys[i].key.as_ref()))
    }
}

/// The outbox aggregate of a key: its `kid` when that is a UUID (every key made since
/// migration 6), else a UUID derived from it.
fn key_aggregate(kid: &str) -> Uuid {
    Uuid::parse_str(kid).unwrap_or_else(|_| {
        let digest = platform::crypto::sha256(kid.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::from_bytes(bytes)
    })
}

impl AuthService {
    fn key_aad(kid: &str) -> Vec<u8> {
        format!("auth_signing_keys:{kid}").into_bytes()
    }

    /// How long a replaced key stays published: the access-token lifetime plus the leeway.
    pub(super) fn key_overlap(&self) -> Duration {
        self.settings.access_token_ttl + RETIRE_LEEWAY
    }

    fn open_key(&self, stored: &StoredKey) -> anyhow::Result<RingKey> {
        let alg: SigningAlgorithm = stored
            .alg
            .parse()
            .map_err(|_| anyhow::anyhow!("signing key {} has an unknown algorithm {:?}", stored.kid, stored.alg))?;
        let der =
            self.settings.key_encryption_key.open(&stored.private_key, &Self::key_aad(&stored.kid)).map_err(|_| {
                anyhow::anyhow!("signing key {} cannot be opened: wrong key-encryption key?", stored.kid)
            })?;
        let key = SigningKey::from_pkcs8(&stored.kid, alg, &der)?;
        Ok(RingKey {
            key: Arc::new(key),
            times: Times { created_at: stored.created_at, active_from: stored.active_from },
        })
    }

    /// Reloads the ring from the database (keys made by another replica or the CLI appear here).
    pub(super) async fn load_keys(&self) -> anyhow::Result<()> {
        let mut loaded = Vec::new();
        for stored in self.store.active_keys().await? {
            loaded.push(self.open_key(&stored)?);
        }
        self.keys.replace(loaded);
        Ok(())
    }

    /// Generates a key of the configured algorithm and stores it sealed, unless another replica
    /// rotated since the ring was read; returns the new key's kid and when it starts signing.
    pub async fn rotate_key(&self, reason: RotationReason) -> anyhow::Result<Option<(String, OffsetDateTime)>> {
        let newest = self.store.active_keys().await?.into_iter().next();
        self.rotate_from(reason, newest).await
    }

    /// Rotates if `newest` (what the decision to rotate was taken on) is still the newest key.
    async fn rotate_from(
        &self,
        reason: RotationReason,
        newest: Option<StoredKey>,
    ) -> anyhow::Result<Option<(String, OffsetDateTime)>> {
        let alg = self.settings.keys.algorithm;
        let key = tokio::task::spawn_blocking(move || SigningKey::generate(alg)).await??;
        let now = self.clock.now();
        let now = now.replace_microsecond(now.microsecond()).unwrap_or(now);
        // The first key signs at once; a successor waits until every replica has published it.
        let active_from = match &newest {
            None => now,
            Some(_) => now + self.settings.keys.activation_delay(),
        };
        let stored = StoredKey {
            kid: key.kid.clone(),
            alg: alg.as_str().into(),
            private_key: self.settings.key_encryption_key.seal(&key.to_pkcs8()?, &Self::key_aad(&key.kid)),
            public_jwk: serde_json::to_string(&key.jwk)?,
            created_at: now,
            active_from,
            retired_at: None,
        };
        let event = Event::new(
            "auth.signing_key_rotated",
            key_aggregate(&key.kid),
            None,
            now,
            json!({
                "kid": key.kid,
                "alg": alg.as_str(),
                "reason": reason.as_str(),
                "replaces": newest.as_ref().map(|k| k.kid.clone()),
            }),
        );
        let expected = newest.as_ref().map(|k| k.kid.as_str());
        let inserted = self.store.insert_key(&stored, expected, &event).await?;
        if inserted {
            self.wake_relay();
            tracing::info!(kid = %key.kid, alg = alg.as_str(), reason = reason.as_str(), "generated a signing key");
        } else {
            tracing::info!(reason = reason.as_str(), "another replica rotated the signing key first");
        }
        self.load_keys().await?;
        Ok(inserted.then_some((key.kid.clone(), active_from)))
    }

    /// Why a rotation is due now, if it is, with the newest key it is due on.
    async fn rotation_due(&self) -> anyhow::Result<Option<(RotationReason, Option<StoredKey>)>> {
        let Some(newest) = self.store.active_keys().await?.into_iter().next() else {
            return Ok(Some((RotationReason::Initial, None)));
        };
        let age = self.clock.now() - newest.created_at;
        let reason = if newest.alg != self.settings.keys.algorithm.as_str() && age >= ALGORITHM_SWITCH_HOLD {
            RotationReason::AlgorithmChanged
        } else if age >= self.settings.keys.rotation {
            RotationReason::Scheduled
        } else {
            return Ok(None);
        };
        Ok(Some((reason, Some(newest))))
    }

    /// One maintenance pass: reload, retire what has expired (with its event), rotate if due.
    pub async fn maintain_keys(&self) -> anyhow::Result<()> {
        self.load_keys().await?;
        let (now, overlap) = (self.clock.now(), self.key_overlap());
        let active = self.store.active_keys().await?;
        let times: Vec<Times> =
            active.iter().map(|k| Times { created_at: k.created_at, active_from: k.active_from }).collect();
        let due = (0..active.len()).filter(|&i| state_at(&times, i, now, overlap).0 == KeyState::Retired);
        for kid in due.map(|i| active[i].kid.clone()).collect::<Vec<_>>() {
            let at = self.clock.now();
            let event = Event::new("auth.signing_key_retired", key_aggregate(&kid), None, at, json!({ "kid": kid }));
            if self.store.retire_key(&kid, at, &event).await? {
                self.wake_relay();
                tracing::info!(kid = %kid, "retired a signing key");
            }
        }
        if let Some((reason, newest)) = self.rotation_due().await? {
            self.rotate_from(reason, newest).await?;
        } else {
            self.load_keys().await?;
        }
        Ok(())
    }

    /// Every key with its state (retired ones too), newest first; for `trellis keys list`.
    pub async fn key_list(&self) -> anyhow::Result<Vec<KeyInfo>> {
        let now = self.clock.now();
        let overlap = self.key_overlap();
        let stored = self.store.all_keys().await?;
        let unretired: Vec<&StoredKey> = stored.iter().filter(|k| k.retired_at.is_none()).collect();
        let times: Vec<Times> =
            unretired.iter().map(|k| Times { created_at: k.created_at, active_from: k.active_from }).collect();
        let mut out = Vec::new();
        for k in &stored {
            let (state, retires_at) = match unretired.iter().position(|u| u.kid == k.kid) {
                Some(i) => state_at(&times, i, now, overlap),
                None => (KeyState::Retired, k.retired_at),
            };
            out.push(KeyInfo {
                kid: k.kid.clone(),
                alg: k.alg.clone(),
                created_at: k.created_at,
                active_from: k.active_from,
                state,
                retires_at,
            });
        }
        Ok(out)
    }

    pub(super) fn current_key(&self) -> Result<Arc<SigningKey>, ApiError> {
        self.keys
            .current(self.clock.now(), self.key_overlap())
            .ok_or_else(|| ApiError::Internal("no signing key".into()))
    }

    /// The JWKS: the public keys of every key that is next, current or previous.
    pub fn public_keys(&self) -> Jwks {
        self.keys.published(self.clock.now(), self.key_overlap())
    }
}

/// Runs [`AuthService::maintain_keys`] every `check_interval` until `stop`; a failed pass is
/// logged and retried at the next tick, the ring in memory staying as it was.
pub fn spawn_key_maintenance(
    svc: Arc<AuthService>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(svc.settings.keys.check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; start() already ran a pass
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = svc.maintain_keys().await {
                        tracing::warn!(error = %e, "signing-key maintenance failed; retrying at the next check");
                    }
                }
                _ = stop.changed() => break,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs)
    }

    #[test]
    fn a_replaced_key_stays_published_for_the_token_lifetime_plus_leeway() {
        let overlap = Duration::from_secs(1000);
        // newest first: k2 made at 500, signs from 620; k1 made at 0.
        let times = [Times { created_at: t(500), active_from: t(620) }, Times { created_at: t(0), active_from: t(0) }];
        assert_eq!(state_at(&times, 0, t(600), overlap), (KeyState::Next, None));
        assert_eq!(state_at(&times, 1, t(600), overlap), (KeyState::Current, None));
        assert_eq!(state_at(&times, 0, t(620), overlap), (KeyState::Current, None));
        assert_eq!(state_at(&times, 1, t(620), overlap), (KeyState::Previous, Some(t(1620))));
        assert_eq!(state_at(&times, 1, t(1619), overlap).0, KeyState::Previous);
        assert_eq!(state_at(&times, 1, t(1620), overlap).0, KeyState::Retired);
    }

    #[test]
    fn a_lone_pending_key_signs() {
        let times = [Times { created_at: t(0), active_from: t(100) }];
        assert_eq!(state_at(&times, 0, t(10), Duration::from_secs(5)).0, KeyState::Current);
    }
}
