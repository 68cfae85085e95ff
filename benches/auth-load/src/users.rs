//! The users-service scenarios, in the shapes of docs/PERFORMANCE.md S2 ("hot read") and S3 ("cold read"):
//!
//! * **U2** (S2 shape): the authenticated `GET /api/users/me` through the gateway, open loop at fixed rates,
//!   then a short closed-loop sweep over connection counts for the maximum. The users service has no cache:
//!   each read is a primary-key select, an AES-256-GCM unwrap of the user's data key and the decryption of
//!   the email and the name.
//! * **U3** (S3 shape): `GET /api/users/{id}` by an administrator, for ids drawn at random over a seeded
//!   population, open loop, then a closed loop for the maximum. An administrator reading someone else's
//!   personal data also writes a `users.profile_viewed` event to the outbox (docs/SECURITY.md GD-3), so this read
//!   carries a write.
//! * **U4**: `GET /api/users?q=<prefix>&limit=20` by an administrator over the same population, prefixes
//!   of 2–5 characters cut from the seeded names, open loop at a modest rate, then a closed loop.
//!
//! Each open-loop phase is compared with a floor measured right before it in the same run: `GET /healthz`
//! through the same listener at the same rate (the HTTP stack, router and middleware of the server, without
//! the edge policies, the token check, the database or the cryptography).
//!
//! The population is seeded through the users service's internal route (`POST /internal/users` with the
//! internal token), not through registration, which is bcrypt-bound at a few accounts per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::load::{Summary, closed_loop, open_loop};
use crate::scenarios::{Account, Target};

/// A request's URL as a pure function of its index, so that the open and closed loops can share it.
pub(crate) type Pick = Arc<dyn Fn(u64) -> Arc<str> + Send + Sync>;

/// The phases' lengths and bounds, common to U2–U4.
pub struct UsersOptions {
    pub warmup: Duration,
    pub duration: Duration,
    pub floor_duration: Duration,
    pub sweep_duration: Duration,
    pub max_in_flight: usize,
}

/// One open-loop phase and its floor, measured back to back at the same rate.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub rate: f64,
    /// `GET /healthz` at the same rate, right before.
    pub floor: Summary,
    pub measured: Summary,
    /// `measured / floor`, p50 and p99.
    pub p50_over_floor: f64,
    pub p99_over_floor: f64,
    /// `measured − floor`, p50 and p99, ms: what the endpoint adds to the floor. Open-loop latencies include
    /// the generator's timer lag (tokio's timer has millisecond granularity), which the floor carries too, so
    /// at sub-millisecond latencies the difference says more than the ratio.
    pub p50_minus_floor_ms: f64,
    pub p99_minus_floor_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct U2 {
    pub what: &'static str,
    pub steps: Vec<Step>,
    /// Closed loop, one phase per connection count (service times, not CO-corrected).
    pub sweep: Vec<Summary>,
    /// The best achieved ok/s over the sweep.
    pub max_per_s: f64,
}

/// How the population was made.
#[derive(Debug, Clone, Serialize)]
pub struct Seeding {
    pub users: usize,
    pub concurrency: usize,
    pub elapsed_s: f64,
    pub per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct U3 {
    pub what: &'static str,
    pub population: usize,
    pub step: Step,
    pub closed: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct U4 {
    pub what: &'static str,
    pub population: usize,
    pub prefixes: &'static str,
    /// Mean number of users per answer over a sample of the queries (checked before the load).
    pub mean_items: f64,
    /// Share of the sampled answers that were a full page (20 users and a cursor).
    pub full_pages: f64,
    pub step: Step,
    pub closed: Summary,
}

/// The seeded users: their ids, in the order of their names (user `k` is named `name_of(name_seed, k)`).
pub struct Population {
    pub ids: Vec<String>,
    pub name_seed: u64,
    pub seeding: Seeding,
}

// ------------------------------------------------------------------------------------------------------------
// Deterministic choices

/// SplitMix64: a request's random choice is a function of the run's seed and its index, with no shared state.
pub(crate) fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        return t.as_nanos() as u64;
    }
    u64::from_le_bytes(b)
}

// Names whose first two letters differ from those of the fixed words of the other accounts and of the emails
// (`administrator`, `load`, `generator`, `bench`, `admin`, `example`, `com`, `u<n>`, `x<hex>`), so that a
// prefix finds seeded users (and at most the two other accounts, through the random hex of their emails).
const FIRST: [&str; 40] = [
    "Amelia", "Bruno", "Carla", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Luca", "Maya",
    "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara", "Vera", "Wim", "Yara", "Zeno", "Anouk", "Bodil",
    "Chiara", "Dario", "Emil", "Freya", "Gil", "Hana", "Ivo", "Jana", "Kofi", "Lena", "Mateo", "Nora", "Otto", "Pia",
];
const LAST: [&str; 40] = [
    "Almeida",
    "Bauer",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quintero",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Varga",
    "Weber",
    "Yilmaz",
    "Zimmermann",
    "Abara",
    "Brandt",
    "Czerny",
    "Delgado",
    "Engel",
    "Ferreira",
    "Gruber",
    "Horvat",
    "Ibsen",
    "Jovanovic",
    "Keller",
    "Laine",
    "Meyer",
    "Novak",
    "Oliveira",
    "Peters",
];

/// The name of seeded user `k` (deterministic: U4 draws its prefixes from it without keeping the names).
fn name_of(seed: u64, k: u64) -> (&'static str, &'static str) {
    let r = mix(seed, k);
    (FIRST[(r % FIRST.len() as u64) as usize], LAST[((r >> 16) % LAST.len() as u64) as usize])
}

/// The prefix U4 sends as its request `i`: a word of a seeded user's name cut to 2–5 characters, lowercase.
fn prefix_of(seed: u64, population: u64, i: u64) -> String {
    let r = mix(seed ^ 0x005E_A2C4, i);
    let (first, last) = name_of(seed, r % population.max(1));
    let word = if (r >> 32) & 1 == 0 { first } else { last };
    let len = 2 + ((r >> 40) % 4) as usize;
    word.chars().take(len).collect::<String>().to_lowercase()
}

/// A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits.
fn uuid_v7(unix_ms: u64, random: [u8; 10]) -> String {
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    b[6..].copy_from_slice(&random);
    b[6] = 0x70 | (b[6] & 0x0F);
    b[8] = 0x80 | (b[8] & 0x3F);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

fn new_id() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    let mut r = [0u8; 10];
    if aws_lc_rs::rand::fill(&mut r).is_err() {
        r[..8].copy_from_slice(&random_u64().to_le_bytes());
    }
    uuid_v7(ms, r)
}

// ------------------------------------------------------------------------------------------------------------
// Phases

pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

pub(crate) fn open_get(
    t: &Target,
    rate: f64,
    d: Duration,
    max_in_flight: usize,
    auth: Option<Arc<str>>,
    pick: &Pick,
) -> impl Future<Output = Summary> {
    let (t, pick) = (t.clone(), pick.clone());
    open_loop(rate, d, max_in_flight, move |i| {
        let (t, url, auth) = (t.clone(), pick(i), auth.clone());
        async move { t.get_once(url, auth).await }
    })
}

pub(crate) fn closed_get(
    t: &Target,
    concurrency: usize,
    d: Duration,
    auth: Option<Arc<str>>,
    pick: &Pick,
) -> impl Future<Output = Summary> {
    let (t, pick) = (t.clone(), pick.clone());
    closed_loop(concurrency, d, move |i| {
        let (t, url, auth) = (t.clone(), pick(i), auth.clone());
        async move { t.get_once(url, auth).await }
    })
}

pub(crate) fn log(label: &str, s: &Summary) {
    eprintln!(
        "    {label}: ok {:.0}/s  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  errors {}",
        s.achieved_ok_per_s, s.ok_latency.p50_ms, s.ok_latency.p99_ms, s.ok_latency.max_ms, s.errors
    );
}

/// The floor, then the measured load, each after its own warm-up, at the same rate.
pub(crate) async fn step(t: &Target, rate: f64, o: &UsersOptions, auth: &Arc<str>, pick: &Pick) -> Step {
    step_with(t, rate, o, |d| open_get(t, rate, d, o.max_in_flight, Some(auth.clone()), pick)).await
}

/// [`step`] with any measured load: `measure(d)` runs it at `rate` for `d` (once as warm-up, once measured).
pub(crate) async fn step_with<M, Fut>(t: &Target, rate: f64, o: &UsersOptions, measure: M) -> Step
where
    M: Fn(Duration) -> Fut,
    Fut: Future<Output = Summary>,
{
    let health: Arc<str> = format!("{}/healthz", t.base).into();
    let floor_pick: Pick = Arc::new(move |_| health.clone());
    let _ = open_get(t, rate, o.warmup, o.max_in_flight, None, &floor_pick).await;
    let floor = open_get(t, rate, o.floor_duration, o.max_in_flight, None, &floor_pick).await;
    log("floor GET /healthz", &floor);
    let _ = measure(o.warmup).await;
    let measured = measure(o.duration).await;
    log("measured", &measured);
    Step {
        rate,
        p50_over_floor: ratio(measured.ok_latency.p50_ms, floor.ok_latency.p50_ms),
        p99_over_floor: ratio(measured.ok_latency.p99_ms, floor.ok_latency.p99_ms),
        p50_minus_floor_ms: measured.ok_latency.p50_ms - floor.ok_latency.p50_ms,
        p99_minus_floor_ms: measured.ok_latency.p99_ms - floor.ok_latency.p99_ms,
        floor,
        measured,
    }
}

// ------------------------------------------------------------------------------------------------------------
// Setup

/// The administrator the server creates at start (`TRELLIS_ADMIN_EMAIL` / `TRELLIS_ADMIN_PASSWORD`).
pub fn admin_account() -> Account {
    let suffix = crate::server::random_suffix();
    Account {
        email: format!("bench-admin-{suffix}@example.com"),
        // Like the load account's: long, random, not built from the email or the name, and a log canary.
        password: format!("canary-{}-battery-orbit-lantern", crate::server::random_suffix()),
    }
}

/// Creates `n` users through `POST /internal/users`, `concurrency` at a time, each call signed as the auth
/// service (`credential`). Every creation must answer 201.
pub async fn seed(
    t: &Target,
    credential: &Arc<crate::service_token::AuthCredential>,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Population> {
    let seed = random_u64();
    let run = crate::server::random_suffix();
    let url: Arc<str> = format!("{}/internal/users", t.base).into();
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (t, url, credential, next, run) = (t.clone(), url.clone(), credential.clone(), next.clone(), run.clone());
        workers.spawn(async move {
            let mut made = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n as u64 {
                    return Ok::<_, anyhow::Error>(made);
                }
                let id = new_id();
                let (first, last) = name_of(seed, k);
                let body = json!({
                    "id": id,
                    "email": format!("u{k}.x{run}@example.com"),
                    "name": format!("{first} {last}"),
                    "role": "user",
                });
                let res = t
                    .client
                    .post(&*url)
                    // One token per call: each is accepted once and lives 60 s.
                    .header("x-trellis-service", credential.sign("POST", "/internal/users"))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .context("POST /internal/users")?;
                let status = res.status();
                if status != StatusCode::CREATED {
                    let text = res.text().await.unwrap_or_default();
                    bail!("POST /internal/users answered {status}: {text}");
                }
                made.push((k, id));
            }
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(made) = workers.join_next().await {
        all.extend(made??);
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    // The k-th id belongs to the k-th name; U4 relies on `name_of(seed, k)` only, U3 on the ids.
    all.sort_by_key(|(k, _)| *k);
    let ids: Vec<String> = all.into_iter().map(|(_, id)| id).collect();
    Ok(Population {
        name_seed: seed,
        seeding: Seeding { users: ids.len(), concurrency, elapsed_s, per_s: ids.len() as f64 / elapsed_s.max(1e-9) },
        ids,
    })
}

pub(crate) async fn bearer(t: &Target, a: &Account) -> anyhow::Result<Arc<str>> {
    Ok(format!("Bearer {}", t.login_tokens(a).await?.access_token).into())
}

/// One GET that must answer 200 with JSON, for the checks before the load.
pub(crate) async fn get_json(t: &Target, url: &str, auth: &str) -> anyhow::Result<Value> {
    let res = t.client.get(url).header(reqwest::header::AUTHORIZATION, auth).send().await?;
    let status = res.status();
    let bytes = res.bytes().await?;
    if status != StatusCode::OK {
        bail!("GET {url} answered {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

// ------------------------------------------------------------------------------------------------------------
// The scenarios

pub async fn u2(t: &Target, account: &Account, rates: &[f64], sweep: &[usize], o: &UsersOptions) -> anyhow::Result<U2> {
    let auth = bearer(t, account).await?;
    let url: Arc<str> = format!("{}/api/users/me", t.base).into();
    let me = get_json(t, &url, &auth).await?;
    anyhow::ensure!(me["email"].as_str() == Some(account.email.as_str()), "GET /api/users/me is not the account: {me}");
    let pick: Pick = Arc::new(move |_| url.clone());
    let mut steps = Vec::new();
    for &rate in rates {
        eprintln!(
            "U2: GET /api/users/me at {rate}/s ({} s floor, {} s measured)",
            o.floor_duration.as_secs(),
            o.duration.as_secs()
        );
        steps.push(step(t, rate, o, &auth, &pick).await);
    }
    let mut closed = Vec::new();
    for &c in sweep {
        eprintln!("U2: closed loop, {c} connections, {} s", o.sweep_duration.as_secs());
        let s = closed_get(t, c.max(1), o.sweep_duration, Some(auth.clone()), &pick).await;
        log("closed", &s);
        closed.push(s);
    }
    let max_per_s = closed.iter().map(|s| s.achieved_ok_per_s).fold(0.0, f64::max);
    Ok(U2 {
        what: "GET /api/users/me, authenticated, through the gateway (PK select + data-key unwrap + 2 decryptions, no cache)",
        steps,
        sweep: closed,
        max_per_s,
    })
}

pub async fn u3(
    t: &Target,
    admin: &Account,
    pop: &Population,
    rate: f64,
    concurrency: usize,
    o: &UsersOptions,
) -> anyhow::Result<U3> {
    let auth = bearer(t, admin).await?;
    let urls: Arc<Vec<Arc<str>>> =
        Arc::new(pop.ids.iter().map(|id| format!("{}/api/users/{id}", t.base).into()).collect());
    anyhow::ensure!(!urls.is_empty(), "u3 needs a seeded population");
    let first = get_json(t, &urls[0], &auth).await?;
    anyhow::ensure!(first["email"].is_string(), "an admin's GET /api/users/{{id}} has no email: {first}");
    let seed = random_u64();
    let pick: Pick = Arc::new(move |i| urls[(mix(seed, i) % urls.len() as u64) as usize].clone());
    eprintln!("U3: GET /api/users/{{id}} by an admin, random ids over {} users, at {rate}/s", pop.ids.len());
    let step = step(t, rate, o, &auth, &pick).await;
    eprintln!("U3: closed loop, {concurrency} connections, {} s", o.sweep_duration.as_secs());
    let closed = closed_get(t, concurrency.max(1), o.sweep_duration, Some(auth), &pick).await;
    log("closed", &closed);
    Ok(U3 {
        what: "GET /api/users/{id} by an admin, uniformly random ids (PK select + unwrap + 2 decryptions + a users.profile_viewed outbox row)",
        population: pop.ids.len(),
        step,
        closed,
    })
}

pub async fn u4(
    t: &Target,
    admin: &Account,
    pop: &Population,
    rate: f64,
    concurrency: usize,
    o: &UsersOptions,
) -> anyhow::Result<U4> {
    let auth = bearer(t, admin).await?;
    let seed = pop.name_seed;
    let n = pop.ids.len() as u64;
    anyhow::ensure!(n > 0, "u4 needs a seeded population");
    let base = t.base.clone();
    let pick: Pick = Arc::new(move |i| format!("{base}/api/users?q={}&limit=20", prefix_of(seed, n, i)).into());
    // What the queries find: a sample, checked before the load (the load itself does not parse answers).
    let sample = 50u64;
    let (mut items, mut full) = (0usize, 0usize);
    for i in 0..sample {
        let page = get_json(t, &pick(i), &auth).await?;
        let k = page["items"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(k > 0, "the search for a seeded prefix found nobody: {}", pick(i));
        items += k;
        full += usize::from(k == 20 && page["next_cursor"].is_string());
    }
    eprintln!("U4: GET /api/users?q=<prefix>&limit=20 by an admin over {n} users, at {rate}/s");
    let step = step(t, rate, o, &auth, &pick).await;
    eprintln!("U4: closed loop, {concurrency} connections, {} s", o.sweep_duration.as_secs());
    let closed = closed_get(t, concurrency.max(1), o.sweep_duration, Some(auth), &pick).await;
    log("closed", &closed);
    Ok(U4 {
        what: "GET /api/users?q=<prefix>&limit=20 by an admin (search tokens + up to 21 rows unwrapped and decrypted)",
        population: pop.ids.len(),
        prefixes: "a word of a seeded name (40 first × 40 last names), cut to 2–5 characters, uniformly",
        mean_items: items as f64 / sample as f64,
        full_pages: full as f64 / sample as f64,
        step,
        closed,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn uuid_v7_has_its_version_variant_and_time() {
        let id = uuid_v7(0x0123_4567_89AB, [0xFF; 10]);
        assert_eq!(id, "01234567-89ab-7fff-bfff-ffffffffffff");
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "7");
        assert!("89ab".contains(&id[19..20]), "{id}");
    }

    #[test]
    fn prefixes_begin_seeded_names() {
        for i in 0..1000 {
            let p = prefix_of(42, 100, i);
            assert!((2..=5).contains(&p.chars().count()), "{p}");
            let found = (0..100).any(|k| {
                let (f, l) = name_of(42, k);
                f.to_lowercase().starts_with(&p) || l.to_lowercase().starts_with(&p)
            });
            assert!(found, "{p} begins no seeded name");
        }
    }

    #[test]
    fn seeded_names_avoid_the_other_accounts_words() {
        for w in FIRST.iter().chain(LAST.iter()) {
            let p = w[..2].to_lowercase();
            assert!(!["ad", "lo", "ge", "be", "ex", "co"].contains(&p.as_str()), "{w}");
            assert!(!p.starts_with('u') && !p.starts_with('x'), "{w}");
        }
    }
}
