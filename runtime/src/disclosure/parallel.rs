//! Work split over the machine's cores: the checks recompute an output while its researcher
//! waits, so a long pass runs as one contiguous part per core, whose results come back in
//! order for the caller to fold together.

use std::ops::Range;

/// `f` of each of up to one part per core of `0..items` (fewer when there are fewer items),
/// the parts contiguous and their results in order; one part runs on the calling thread.
pub(super) fn in_parts<T: Send>(items: usize, f: impl Fn(Range<usize>) -> T + Sync) -> Vec<T> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parts = cores.min(items).max(1);
    let share = items.div_ceil(parts);
    let part = |at: usize| at * share..items.min((at + 1) * share);
    std::thread::scope(|scope| {
        let f = &f;
        let later: Vec<_> = (1..parts).map(|at| scope.spawn(move || f(part(at)))).collect();
        let first = f(part(0));
        let later = later.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        std::iter::once(first).chain(later).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_every_item_once_in_order() {
        for items in [0, 1, 2, 3, 17] {
            let parts = in_parts(items, |range| range.collect::<Vec<_>>());
            assert_eq!(parts.concat(), (0..items).collect::<Vec<_>>());
        }
    }
}
