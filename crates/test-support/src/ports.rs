//! Loopback ports that no other test can be handed while this one uses them.
//!
//! The usual trick, binding port 0 and passing the number to a child process, races: between the
//! release and the child's bind, the kernel may give the same number to any outgoing connection
//! or any other test's `bind(0)`, because both draw from the ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`, 32768–60999 by default). On a busy machine running
//! hundreds of tests in parallel that happens.
//!
//! [`reserve_port`] draws instead from [`RANGE`], below the ephemeral range, where the kernel never
//! hands out ports by itself, and claims each number with an exclusive lock on a file named after
//! it in a folder every test process shares. The lock lives as long as the process (nextest runs
//! each test in a process of its own), so two tests can never hold the same port, however they
//! interleave; the bind check skips ports that something outside the tests listens on.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;

/// Ports handed out: below the kernel's default ephemeral range, above the well-known ports and
/// the usual fixed ones of the services the tests talk to (5000, 5432, 5672, 6379, 15672).
pub const RANGE: std::ops::Range<u16> = 20_000..32_000;

/// The lock files this process holds: dropping one would free its port for others.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("trellis-test-ports")
}

/// A loopback TCP port that is free now and that no other test process can reserve until this
/// process exits. Panics only when every port of [`RANGE`] is taken.
pub fn reserve_port() -> u16 {
    let dir = lock_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let span = u32::from(RANGE.end - RANGE.start);
    // Start at a point that differs between processes, then walk the range once.
    let seed = uuid::Uuid::new_v4().as_u128() as u32;
    for i in 0..span {
        let port = RANGE.start + ((seed.wrapping_add(i)) % span) as u16;
        let Ok(file) = File::options().create(true).truncate(false).write(true).open(dir.join(port.to_string())) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue;
        }
        // Nobody else in the tests has it; make sure nothing else on the machine listens there.
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
        return port;
    }
    panic!("every port in {RANGE:?} is reserved or in use ({} lock files)", dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_distinct_bindable_and_outside_the_ephemeral_range() {
        let ports: Vec<u16> = (0..20).map(|_| reserve_port()).collect();
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for p in ports {
            assert!(RANGE.contains(&p));
            TcpListener::bind(("127.0.0.1", p)).unwrap_or_else(|e| panic!("{p} is not bindable: {e}"));
        }
    }

    #[test]
    fn a_port_held_by_another_process_is_not_handed_out() {
        // Another process's lock on a port file is seen as taken (flock locks are per open file
        // description, so a second open in this process stands in for another process).
        let port = reserve_port();
        let other = File::options().write(true).open(lock_dir().join(port.to_string())).unwrap();
        assert!(other.try_lock().is_err(), "the reservation of {port} is not exclusive");
    }
}
