//! R1, a registration flood while logins run (issue 16, docs/SECURITY.md LG-7): logins at a steady rate alone,
//! then again while registrations of new addresses arrive far faster than the hash pool can take them. Every
//! registration is a new address from the harness's one client, so the harness lifts the registration budget
//! (`TRELLIS_AUTH__REGISTER_LIMIT`): this is the flood of many clients that a per-client budget cannot stop, and
//! what stands between it and the logins is the hash pool's reservation. Reported: each phase's latency
//! percentiles, and every status the logins and registrations got, counted (a login answered 503 is the
//! regression this scenario exists to show).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use crate::load::{Outcome, Summary, open_loop};
use crate::scenarios::{Account, Target};

#[derive(Debug, Clone, Serialize)]
pub struct R1 {
    pub login_rate: f64,
    pub register_rate: f64,
    pub logins_solo: Summary,
    pub login_statuses_solo: BTreeMap<String, u64>,
    pub logins_under_flood: Summary,
    pub login_statuses_under_flood: BTreeMap<String, u64>,
    pub registrations: Summary,
    pub registration_statuses: BTreeMap<String, u64>,
}

pub struct R1Options {
    pub login_rate: f64,
    pub register_rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub max_in_flight: usize,
}

/// Statuses (or transport failures) counted by kind.
#[derive(Clone, Default)]
struct Statuses(Arc<Mutex<BTreeMap<String, u64>>>);

impl Statuses {
    fn add(&self, kind: String) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(kind).or_default() += 1;
        }
    }

    fn take(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default()
    }
}

async fn post(t: &Target, path: &str, body: &Value, expected: StatusCode, seen: &Statuses) -> Outcome {
    match t.post_json(path, body).await {
        Ok((status, _)) => {
            seen.add(status.as_u16().to_string());
            if status == expected {
                Outcome::Ok
            } else if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
                Outcome::Refused
            } else {
                Outcome::Failed(format!("status {}", status.as_u16()))
            }
        }
        Err(kind) => {
            seen.add(kind.clone());
            Outcome::Failed(kind)
        }
    }
}

pub async fn r1(t: &Target, account: &Account, o: &R1Options) -> anyhow::Result<R1> {
    let body = Arc::new(json!({ "email": account.email, "password": account.password }));
    let logins = |d: Duration, seen: Statuses| {
        let body = body.clone();
        open_loop(o.login_rate, d, o.max_in_flight, move |_| {
            let (t, body, seen) = (t.clone(), body.clone(), seen.clone());
            async move { post(&t, "/auth/login", &body, StatusCode::OK, &seen).await }
        })
    };
    eprintln!(
        "R1: logins alone at {}/s: {} s warm-up, {} s measured",
        o.login_rate,
        o.warmup.as_secs(),
        o.duration.as_secs()
    );
    let _ = logins(o.warmup, Statuses::default()).await;
    let solo_seen = Statuses::default();
    let solo = logins(o.duration, solo_seen.clone()).await;
    eprintln!(
        "    p50 {:.1} ms  p99 {:.1} ms  statuses {:?}",
        solo.ok_latency.p50_ms, solo.ok_latency.p99_ms, solo_seen.0
    );

    eprintln!("R1: the same while registrations of new addresses arrive at {}/s", o.register_rate);
    let run = crate::server::random_suffix();
    let password: Arc<str> = format!("canary-flood-{}", crate::server::random_suffix()).into();
    let reg_seen = Statuses::default();
    let flood = {
        let reg_seen = reg_seen.clone();
        open_loop(o.register_rate, o.warmup + o.duration, o.max_in_flight, move |i| {
            let (t, seen) = (t.clone(), reg_seen.clone());
            let body = json!({ "email": format!("flood-{run}-{i}@example.com"), "password": &*password, "name": "Load Tester" });
            async move { post(&t, "/auth/register", &body, StatusCode::CREATED, &seen).await }
        })
    };
    let flood_seen = Statuses::default();
    let measured = async {
        tokio::time::sleep(o.warmup).await;
        logins(o.duration, flood_seen.clone()).await
    };
    let (registrations, under) = tokio::join!(flood, measured);
    eprintln!(
        "    p50 {:.1} ms  p99 {:.1} ms  statuses {:?}; registrations {:?}",
        under.ok_latency.p50_ms, under.ok_latency.p99_ms, flood_seen.0, reg_seen.0
    );
    Ok(R1 {
        login_rate: o.login_rate,
        register_rate: o.register_rate,
        logins_solo: solo,
        login_statuses_solo: solo_seen.take(),
        logins_under_flood: under,
        login_statuses_under_flood: flood_seen.take(),
        registrations,
        registration_statuses: reg_seen.take(),
    })
}

fn statuses(m: &BTreeMap<String, u64>) -> String {
    m.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
}

#[allow(clippy::print_stdout)]
pub fn print(r: &R1, lat_head: &str, lat_row: impl Fn(&str, &Summary) -> String) {
    println!();
    println!(
        "## R1: registration flood while logins run (logins {:.1}/s, registrations {:.1}/s)",
        r.login_rate, r.register_rate
    );
    println!();
    println!("{lat_head}");
    println!("{}", lat_row("logins alone", &r.logins_solo));
    println!("{}", lat_row("logins under the flood", &r.logins_under_flood));
    println!("{}", lat_row("registrations (the flood)", &r.registrations));
    println!();
    println!("| phase | statuses |\n|---|---|");
    println!("| logins alone | {} |", statuses(&r.login_statuses_solo));
    println!("| logins under the flood | {} |", statuses(&r.login_statuses_under_flood));
    println!("| registrations | {} |", statuses(&r.registration_statuses));
    let failed = r.login_statuses_under_flood.get("503").copied().unwrap_or(0);
    println!();
    println!("Logins answered 503 during the flood: **{failed}** (must be 0).");
}
