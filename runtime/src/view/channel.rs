//! The channel a hostile guest has to its researcher before any checker looked: every fact of
//! the [researcher view](super::researcher) that the guest's behaviour can change, how many
//! values it can take, and so how many bits one job can signal through it.
//!
//! The count follows the view's types: a job ends in one of [`JobState::ENDS`]; its end
//! becomes visible at a whole second no later than the wall limit plus [`CHECK_ALLOWANCE`]
//! after it started; it leaves at most `export_max_files` requests, each showing one of the
//! output kinds, an outcome and, where the policy shows them, the set of checks of that kind
//! ([`checks_for`]) that did not pass. Everything else a researcher sees is the researcher's
//! own input, the checkers' decisions, or host bookkeeping the guest cannot touch (ids, the
//! project, the submission time). `max_jobs_per_day` then bounds the bits a day.

use ringfence_sdk::manifest::OutputKind;
use serde::Serialize;

use super::JobState;
use crate::disclosure::checks_for;
use crate::policy::{Disclosure, Limits};

/// The seconds allowed, on top of the wall limit, for storing and checking a job's outputs
/// before its end becomes visible. The checks of the largest output the default caps allow take
/// a few seconds (see the README's performance section); this is what the bound assumes, not a
/// deadline the host enforces.
pub const CHECK_ALLOWANCE: u64 = 60;

/// One fact of the researcher view a guest can steer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    /// What the researcher sees.
    pub fact: &'static str,
    /// How many values it can take, in words.
    pub values: String,
    /// log₂ of that number: the bits a guest can signal through it.
    pub bits: f64,
}

/// What one job can signal to its researcher before review, and what a day's jobs can.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bound {
    /// Each steerable fact.
    pub facts: Vec<Fact>,
    /// Their sum: the bits one job can signal (B).
    pub bits_per_job: f64,
    /// Jobs one user may submit to the project in 24 hours (Q).
    pub jobs_per_day: u32,
    /// B × Q.
    pub bits_per_day: f64,
}

/// How many different things a researcher can see of one request: the kinds, and per kind
/// `pass` with nothing listed or `review`/`fail` with a non-empty set of its checks listed (or
/// just the outcomes when names are hidden); besides, any structured output can show
/// `free_form` or `stored_file` alone, and any output `check_error` alone.
pub fn request_views(show_check_names: bool) -> u64 {
    OutputKind::ALL
        .iter()
        .map(|&kind| {
            let structured = kind != OutputKind::File;
            match (structured, show_check_names) {
                (true, true) => 1 + 2 * ((1u64 << checks_for(kind).len()) - 1) + 3,
                (true, false) => 3,
                // `review` with `free_form`, or `fail` with `check_error`.
                (false, _) => 2,
            }
        })
        .sum()
}

/// log₂ of 1 + r + r² + … + rⁿ, without overflowing for large n.
fn log2_geometric(r: f64, n: u64) -> f64 {
    if r <= 1.0 {
        return ((n as f64) + 1.0).log2();
    }
    let tail: f64 = (0..=n.min(64)).map(|j| r.powi(-(j as i32))).sum();
    n as f64 * r.log2() + tail.log2()
}

impl Bound {
    /// The bound for jobs run under `limits` and `disclosure`.
    pub fn of(limits: &Limits, disclosure: &Disclosure) -> Bound {
        let ends = JobState::ENDS.len() as f64;
        let seconds = limits.wall.as_secs().saturating_add(CHECK_ALLOWANCE).saturating_add(1);
        let per_request = request_views(disclosure.show_check_names);
        let files = limits.export_max_files;
        let facts = vec![
            Fact { fact: "how the job ended", values: format!("{ends} states"), bits: ends.log2() },
            Fact {
                fact: "when its end became visible",
                values: format!("{seconds} whole seconds (wall limit + {CHECK_ALLOWANCE} s for the checks)"),
                bits: (seconds as f64).log2(),
            },
            Fact {
                fact: "its requests: how many, and each one's kind, outcome and not-passed checks",
                values: format!("0 to {files} requests of {per_request} views each"),
                bits: log2_geometric(per_request as f64, files),
            },
        ];
        let bits_per_job = facts.iter().map(|f| f.bits).sum::<f64>();
        let jobs_per_day = limits.max_jobs_per_day;
        Bound { facts, bits_per_job, jobs_per_day, bits_per_day: bits_per_job * f64::from(jobs_per_day) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_shows_one_of_a_counted_number_of_views() {
        // frequency 1 + 2·31 + 3, magnitude 1 + 2·511 + 3, quantiles 1 + 2·63 + 3,
        // regression 1 + 2·7 + 3, file 2.
        assert_eq!(request_views(true), 66 + 1026 + 130 + 18 + 2);
        assert_eq!(request_views(false), 4 * 3 + 2);
    }

    #[test]
    fn the_geometric_sum_is_exact_where_it_can_be_and_finite_where_it_cannot() {
        assert!((log2_geometric(2.0, 3) - 15f64.log2()).abs() < 1e-12);
        assert!((log2_geometric(1.0, 7) - 3.0).abs() < 1e-12);
        let huge = log2_geometric(1234.0, 1000);
        assert!(huge.is_finite() && (huge - 1000.0 * 1234f64.log2()).abs() < 0.01);
    }
}
