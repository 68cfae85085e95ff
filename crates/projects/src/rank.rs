//! Lexicographic ranks for ordering tasks within a board column.
//!
//! A rank is a non-empty string over the base-36 digits `0-9a-z` (whose ASCII order is their
//! numeric order) that does not end in `0`. Ranks compare as plain byte strings, so the database
//! can index and sort them (PostgreSQL with `COLLATE "C"`), and between any two distinct ranks
//! there is always another one: reordering a task rewrites only that task's rank.
//!
//! - [`rank_after`] appends to the end of a column. It treats the first [`WIDTH`] digits as a
//!   fixed-width base-36 number and adds [`STEP`], so appended ranks are at most four characters
//!   long for the first 800,000 tasks of a column, with [`STEP`] worth of room between
//!   neighbours for later insertions.
//! - [`rank_between`] finds the shortest-ish rank strictly between two ranks (or before the
//!   first / after the last), digit by digit, for drag and drop.
//! - Repeated insertions into one gap make ranks longer (about one digit per five). A rank longer
//!   than [`MAX_LEN`] is not stored: the store rewrites that one column with [`spread`] instead,
//!   in the same transaction. This is rare (some 150 insertions into the same gap).

/// The rank digits, in order.
const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const BASE: u64 = 36;
/// Digits of the fixed-width prefix that [`rank_after`] increments.
pub const WIDTH: usize = 8;
/// How far apart consecutive appended ranks are, in units of the last prefix digit: 36^4.
pub const STEP: u64 = 36 * 36 * 36 * 36;
/// 36^WIDTH: the first value that no longer fits the prefix.
const LIMIT: u64 = 2_821_109_907_456;
/// The rank of the first task of an empty column: the middle of the range ("i"), so there is as
/// much room before it as after it.
const FIRST: u64 = LIMIT / 2;

fn digit(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'z' => Some(u64::from(b - b'a') + 10),
        _ => None,
    }
}

/// Whether `s` is a well-formed rank: non-empty, base-36 digits only, no trailing `0`.
pub fn is_valid_rank(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| digit(b).is_some()) && !s.ends_with('0')
}

/// The fixed-width prefix of `rank` as a number (missing digits count as `0`).
fn prefix_value(rank: &str) -> u64 {
    let mut digits = rank.bytes().map(|b| digit(b).unwrap_or(0)).chain(std::iter::repeat(0));
    (0..WIDTH).fold(0, |acc, _| acc * BASE + digits.next().unwrap_or(0))
}

/// `value` (< LIMIT) as WIDTH base-36 digits, without trailing zeros.
fn encode_prefix(mut value: u64) -> String {
    let mut out = [b'0'; WIDTH];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value % BASE) as usize];
        value /= BASE;
    }
    let end = out.iter().rposition(|&b| b != b'0').map_or(0, |i| i + 1);
    out[..end].iter().map(|&b| char::from(b)).collect()
}

/// A rank greater than `last` (the current maximum of a column), or the first rank of an empty
/// column when `last` is `None`.
///
/// `last` must be a valid rank; should it not be (a bug elsewhere), the answer is still greater
/// than it (`last` with a digit appended) so that order is kept.
pub fn rank_after(last: Option<&str>) -> String {
    let Some(last) = last else {
        return encode_prefix(FIRST);
    };
    if !is_valid_rank(last) {
        return format!("{last}i");
    }
    // The incremented prefix differs from `last` within the first WIDTH digits, at a digit
    // that is larger and non-zero, so it sorts after `last` even with trailing zeros stripped.
    match prefix_value(last).checked_add(STEP).filter(|v| *v < LIMIT) {
        Some(next) => encode_prefix(next),
        // The prefix space is used up (after ~800,000 appends): grow by digits instead.
        None => midpoint(last.as_bytes(), None),
    }
}

/// The longest rank a store keeps; a longer one makes it rebalance the column.
pub const MAX_LEN: usize = 32;

/// `n` ranks in increasing order, spread evenly over the whole fixed-width range (at most
/// [`WIDTH`] characters each): a column's fresh ranks after a rebalance.
pub fn spread(n: usize) -> Vec<String> {
    let n = n as u64;
    // LIMIT * (k + 1) / (n + 1) for k in 0..n: distinct and increasing while n < LIMIT.
    (0..n).map(|k| encode_prefix(((LIMIT as u128 * u128::from(k + 1)) / u128::from(n + 1)) as u64)).collect()
}

/// A rank strictly between `before` and `after`; `None` stands for the start or the end of the
/// column. Returns `None` when no such rank exists: either bound is not a valid rank, or
/// `before >= after`.
pub fn rank_between(before: Option<&str>, after: Option<&str>) -> Option<String> {
    if before.is_some_and(|b| !is_valid_rank(b)) || after.is_some_and(|a| !is_valid_rank(a)) {
        return None;
    }
    match (before, after) {
        (Some(b), Some(a)) if b >= a => None,
        (_, None) => Some(rank_after(before)),
        (b, Some(a)) => Some(midpoint(b.unwrap_or("").as_bytes(), Some(a.as_bytes()))),
    }
}

/// The digit-wise midpoint of `a` (possibly empty, meaning the start) and `b` (`None` meaning
/// the end), for valid ranks with `a < b`. The answer never ends in `0`.
fn midpoint(a: &[u8], b: Option<&[u8]>) -> String {
    let mut out = Vec::new();
    let (mut a, mut b) = (a, b);
    loop {
        if let Some(bb) = b {
            // Copy the common prefix (with `a` padded by zeros).
            let n = bb.iter().enumerate().take_while(|&(i, &d)| a.get(i).copied().unwrap_or(b'0') == d).count();
            out.extend_from_slice(&bb[..n]);
            a = a.get(n..).unwrap_or(&[]);
            b = Some(&bb[n..]);
        }
        let da = a.first().and_then(|&d| digit(d)).unwrap_or(0);
        let db = b.and_then(|bb| bb.first()).and_then(|&d| digit(d)).unwrap_or(BASE);
        if db > da + 1 {
            // Room for a digit strictly between: done (it is > da >= 0, so not '0').
            out.push(DIGITS[((da + db) / 2) as usize]);
            break;
        }
        // Adjacent digits. If `b` goes on, its first digit alone is between `a` and `b`.
        if let Some(bb) = b.filter(|bb| bb.len() > 1) {
            out.push(bb[0]);
            break;
        }
        // Otherwise keep `a`'s digit and find something after the rest of `a`.
        out.push(DIGITS[da as usize]);
        a = a.get(1..).unwrap_or(&[]);
        b = None;
    }
    out.into_iter().map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_36_to_the_width() {
        assert_eq!(LIMIT, BASE.pow(WIDTH as u32));
    }

    #[test]
    fn first_rank_is_the_middle() {
        assert_eq!(rank_after(None), "i");
    }

    #[test]
    fn appended_ranks_increase_and_stay_short() {
        let mut last = rank_after(None);
        for _ in 0..10_000 {
            let next = rank_after(Some(&last));
            assert!(next > last, "{next} should sort after {last}");
            assert!(is_valid_rank(&next), "{next} is not a valid rank");
            assert!(next.len() <= WIDTH, "{next} is too long");
            last = next;
        }
        assert_eq!(rank_after(Some("i")), "i001");
    }

    #[test]
    fn rank_after_handles_ranks_shorter_and_longer_than_the_prefix() {
        for last in ["1", "zz", "i0001", "i0000001", "i00000001", "i0000000zzzz", "9zzzzzzzzzzz"] {
            let next = rank_after(Some(last));
            assert!(next.as_str() > last, "{next} should sort after {last}");
            assert!(is_valid_rank(&next));
        }
    }

    #[test]
    fn rank_after_grows_when_the_prefix_space_is_used_up() {
        for last in ["zzzzzzzz", "zzzzzzzy", "zzzzzzzzzz", "zzzzy"] {
            let next = rank_after(Some(last));
            assert!(next.as_str() > last, "{next} should sort after {last}");
            assert!(is_valid_rank(&next));
        }
        assert_eq!(rank_after(Some("zzzzzzzz")), "zzzzzzzzi");
    }

    #[test]
    fn rank_after_an_invalid_rank_still_sorts_after_it() {
        let next = rank_after(Some("A~"));
        assert!(next.as_str() > "A~");
    }

    #[test]
    fn between_two_ranks() {
        assert_eq!(rank_between(Some("a"), Some("c")).as_deref(), Some("b"));
        assert_eq!(rank_between(Some("a"), Some("b")).as_deref(), Some("ai"));
        assert_eq!(rank_between(Some("a"), Some("b1")).as_deref(), Some("b"));
        assert_eq!(rank_between(Some("a1"), Some("a2")).as_deref(), Some("a1i"));
        assert_eq!(rank_between(Some("az"), Some("b")).as_deref(), Some("azi"));
        assert_eq!(rank_between(None, Some("i")).as_deref(), Some("9"));
        assert_eq!(rank_between(None, Some("1")).as_deref(), Some("0i"));
        assert_eq!(rank_between(None, Some("01")).as_deref(), Some("00i"));
        assert_eq!(rank_between(None, None).as_deref(), Some("i"));
        assert_eq!(rank_between(Some("i"), None).as_deref(), Some("i001"));
    }

    #[test]
    fn spread_ranks_are_short_valid_and_increasing() {
        for n in [0, 1, 2, 35, 36, 1000, 50_000] {
            let ranks = spread(n);
            assert_eq!(ranks.len(), n);
            assert!(ranks.iter().all(|r| is_valid_rank(r) && r.len() <= WIDTH), "{n}");
            assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{n}");
        }
        assert_eq!(spread(1), vec!["i".to_string()]);
    }

    #[test]
    fn between_refuses_bad_bounds() {
        assert_eq!(rank_between(Some("b"), Some("a")), None);
        assert_eq!(rank_between(Some("b"), Some("b")), None);
        assert_eq!(rank_between(Some("a0"), Some("b")), None);
        assert_eq!(rank_between(Some(""), Some("b")), None);
        assert_eq!(rank_between(Some("A"), None), None);
        assert_eq!(rank_between(None, Some("b-")), None);
    }

    /// Repeatedly inserting at the same spot (the worst case for drag and drop) keeps order and
    /// validity; ranks grow by about one digit per five insertions.
    #[test]
    fn repeated_insertions_keep_strict_order() {
        for (lo, hi) in [(Some("i"), Some("i001")), (None, Some("i")), (Some("y"), Some("z"))] {
            let (lo, mut hi) = (lo.map(str::to_string), hi.map(str::to_string));
            // Always insert right after `lo`.
            for _ in 0..200 {
                let mid = rank_between(lo.as_deref(), hi.as_deref()).unwrap_or_default();
                assert!(is_valid_rank(&mid), "{mid} is not valid");
                assert!(lo.as_deref().is_none_or(|l| l < mid.as_str()), "{lo:?} < {mid}");
                assert!(hi.as_deref().is_none_or(|h| mid.as_str() < h), "{mid} < {hi:?}");
                hi = Some(mid);
            }
            assert!(hi.as_deref().is_some_and(|h| h.len() < 60), "{hi:?} grew too fast");
        }
    }

    #[test]
    fn insertions_at_alternating_ends_keep_strict_order() {
        let mut ranks = vec![rank_after(None)];
        for i in 0..300 {
            let at = if i % 3 == 0 { 0 } else { ranks.len() / 2 };
            let before = at.checked_sub(1).and_then(|j| ranks.get(j)).map(String::as_str);
            let after = ranks.get(at).map(String::as_str);
            let mid = rank_between(before, after).unwrap_or_default();
            ranks.insert(at, mid);
        }
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "ranks out of order");
        assert!(ranks.iter().all(|r| is_valid_rank(r)));
    }
}
