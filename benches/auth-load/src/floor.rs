//! The physical floors, measured in the same run on the same machine, single-threaded on the generator's
//! core while the server is not running: one bcrypt cost-12 verify (S6/S7) and one RS256 signature with a
//! 3072-bit key through aws-lc-rs (S8), the same primitives and sizes the auth service uses.

use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    /// What was timed.
    pub what: &'static str,
    pub iterations: usize,
    /// Median time of one operation, ms.
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// `cores / median`: the most operations per second this machine could do if every core did nothing else.
    pub theoretical_per_s: f64,
}

fn summarize(what: &'static str, mut times: Vec<Duration>, cores: usize) -> Floor {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = times[times.len() / 2];
    Floor {
        what,
        iterations: times.len(),
        median_ms: ms(median),
        min_ms: ms(times[0]),
        max_ms: ms(times[times.len() - 1]),
        theoretical_per_s: cores as f64 / median.as_secs_f64(),
    }
}

/// bcrypt cost 12 verify of a 44-character input: the server verifies bcrypt over base64(HMAC-SHA-256(pepper,
/// password)), which is always 44 characters.
pub fn bcrypt_verify(cores: usize, iterations: usize) -> anyhow::Result<Floor> {
    let input = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycA=="; // 44 chars, like base64 of 32 bytes
    debug_assert_eq!(input.len(), 44);
    let hash = bcrypt::hash(input, 12).map_err(|e| anyhow::anyhow!("bcrypt hash: {e}"))?;
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        let ok = bcrypt::verify(input, &hash).map_err(|e| anyhow::anyhow!("bcrypt verify: {e}"))?;
        times.push(t.elapsed());
        if !ok {
            anyhow::bail!("bcrypt verify of the right input answered false");
        }
    }
    Ok(summarize("bcrypt cost-12 verify (44-char input)", times, cores))
}

/// One RS256 (PKCS#1 v1.5, SHA-256) signature with a 3072-bit key, over a message the size of a JWT signing
/// input.
pub fn rs256_sign(cores: usize, iterations: usize) -> anyhow::Result<Floor> {
    let key = KeyPair::generate(KeySize::Rsa3072).map_err(|e| anyhow::anyhow!("RSA key generation: {e}"))?;
    let rng = SystemRandom::new();
    let message = vec![b'x'; 400];
    let mut sig = vec![0u8; key.public_modulus_len()];
    // Warm-up: first use pays one-time costs (lazy tables, page faults).
    for _ in 0..10 {
        key.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut sig).map_err(|e| anyhow::anyhow!("sign: {e}"))?;
    }
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        key.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut sig).map_err(|e| anyhow::anyhow!("sign: {e}"))?;
        times.push(t.elapsed());
    }
    Ok(summarize("RS256 sign, RSA-3072, aws-lc-rs", times, cores))
}
