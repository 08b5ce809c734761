//! The researcher's view: what someone who submitted a job (or shares its project) may see of
//! it before a checker released anything. Every field holds a host-made fact from a closed set
//! of values, a time to the whole second, or text the researcher typed; nothing the guest wrote.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use ringfence_sdk::manifest::OutputKind;
use serde::{Deserialize, Serialize};

use crate::disclosure::{Check, Outcome};
use crate::queue::{ExportRequest, JobRow, Status};
use crate::sandbox::JobStatus;

/// A moment to the whole second (truncated): all a researcher sees of when something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WholeSecond(DateTime<Utc>);

impl WholeSecond {
    /// The whole second of a stored RFC 3339 time; `None` when it does not parse.
    pub fn of(stored: &str) -> Option<WholeSecond> {
        let at = DateTime::parse_from_rfc3339(stored).ok()?.with_timezone(&Utc);
        Some(WholeSecond(at.trunc_subsecs(0)))
    }

    /// The moment.
    pub fn at(self) -> DateTime<Utc> {
        self.0
    }
}

impl fmt::Display for WholeSecond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

impl Serialize for WholeSecond {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WholeSecond {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        WholeSecond::of(&text).ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time")))
    }
}

/// A limit that stopped a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `limits.memory_mb`.
    Memory,
    /// `limits.cpu_seconds`.
    Cpu,
    /// `limits.wall_seconds`.
    WallClock,
    /// `limits.export_max_bytes` or `limits.export_max_files`.
    Export,
}

/// Where a job stands, as a researcher sees it: one of a closed set of words. A guest that
/// exits with a code or traps shows as `failed` (the code and the trap are for checkers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for a worker or for one of the user's running jobs to end.
    Queued,
    /// Running, or ended with its outputs still being checked.
    Running,
    /// The guest finished normally.
    Succeeded,
    /// The guest exited with an error or trapped.
    Failed,
    /// A limit stopped the guest.
    Stopped(Limit),
    /// The host stopped while the job ran (it did not finish).
    Interrupted,
    /// It could not start: the policy expired or no longer allows it, or its data changed.
    Refused,
    /// The host failed while running it.
    HostError,
}

impl JobState {
    /// Every state a job can end in: what a guest's behaviour can choose among.
    pub const ENDS: [JobState; 9] = [
        JobState::Succeeded,
        JobState::Failed,
        JobState::Stopped(Limit::Memory),
        JobState::Stopped(Limit::Cpu),
        JobState::Stopped(Limit::WallClock),
        JobState::Stopped(Limit::Export),
        JobState::Interrupted,
        JobState::Refused,
        JobState::HostError,
    ];

    /// The state of a job whose row says `status`.
    pub fn of(status: &str) -> JobState {
        match status {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "interrupted" => JobState::Interrupted,
            "refused" => JobState::Refused,
            "host_error" => JobState::HostError,
            other => match other.parse::<JobStatus>() {
                Ok(JobStatus::Succeeded) => JobState::Succeeded,
                Ok(JobStatus::Exited(_) | JobStatus::Trap(_)) => JobState::Failed,
                Ok(JobStatus::MemoryLimit) => JobState::Stopped(Limit::Memory),
                Ok(JobStatus::CpuLimit) => JobState::Stopped(Limit::Cpu),
                Ok(JobStatus::WallClockLimit) => JobState::Stopped(Limit::WallClock),
                Ok(JobStatus::ExportLimit) => JobState::Stopped(Limit::Export),
                Err(_) => JobState::HostError,
            },
        }
    }

    /// Whether the job has ended.
    pub fn has_ended(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Stopped(Limit::Memory) => "stopped: memory_limit",
            JobState::Stopped(Limit::Cpu) => "stopped: cpu_limit",
            JobState::Stopped(Limit::WallClock) => "stopped: wall_clock_limit",
            JobState::Stopped(Limit::Export) => "stopped: export_limit",
            JobState::Interrupted => "interrupted",
            JobState::Refused => "refused",
            JobState::HostError => "host_error",
        })
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<JobState, String> {
        [JobState::Queued, JobState::Running]
            .into_iter()
            .chain(JobState::ENDS)
            .find(|state| state.to_string() == s)
            .ok_or_else(|| format!("unknown job state {s:?}"))
    }
}

impl Serialize for JobState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JobState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A checker's decision as the researcher sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResearcherDecision {
    /// The checker.
    pub checker: String,
    /// `approve`, `reject` or `request_changes`.
    pub decision: String,
    /// The checker's reason.
    pub reason: String,
    /// When.
    pub at: Option<WholeSecond>,
}

/// An export request as a researcher sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResearcherRequest {
    /// The request's number.
    pub id: i64,
    /// The project.
    pub project: String,
    /// The job that made it.
    pub job: String,
    /// The researcher who submitted the job.
    pub submitted_by: String,
    /// What kind of output it is.
    pub kind: OutputKind,
    /// Where it stands in review.
    pub status: Status,
    /// The automatic checks' overall outcome.
    pub outcome: Option<Outcome>,
    /// The checks it did not pass; `None` when the project's policy does not show them.
    pub not_passed: Option<Vec<Check>>,
    /// The description the researcher typed.
    pub description: String,
    /// The justification the researcher typed.
    pub justification: String,
    /// How many different checkers must approve.
    pub reviews_required: u32,
    /// The checkers' decisions so far.
    pub decisions: Vec<ResearcherDecision>,
    /// When it was created.
    pub created_at: Option<WholeSecond>,
    /// When it last changed.
    pub updated_at: Option<WholeSecond>,
    /// The file's name, once released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl ResearcherRequest {
    /// `request` as a researcher sees it.
    pub fn new(request: &ExportRequest) -> ResearcherRequest {
        let not_passed = request.show_check_names.then(|| {
            let mut failed: Vec<Check> = request
                .report
                .iter()
                .flat_map(|r| &r.results)
                .filter(|r| r.outcome != Outcome::Pass)
                .map(|r| r.check)
                .collect();
            failed.sort();
            failed.dedup();
            failed
        });
        ResearcherRequest {
            id: request.id,
            project: request.project.clone(),
            job: request.job.clone(),
            submitted_by: request.submitted_by.clone(),
            kind: request.kind,
            status: request.status,
            outcome: request.outcome,
            not_passed,
            description: request.description.clone(),
            justification: request.justification.clone(),
            reviews_required: request.reviews_required,
            decisions: request
                .decisions
                .iter()
                .map(|d| ResearcherDecision {
                    checker: d.checker.clone(),
                    decision: d.decision.clone(),
                    reason: d.reason.clone(),
                    at: WholeSecond::of(&d.at),
                })
                .collect(),
            created_at: WholeSecond::of(&request.created_at),
            updated_at: WholeSecond::of(&request.updated_at),
            file: (request.status == Status::Released).then(|| request.file.clone()),
        }
    }
}

/// A job as a researcher sees it. A job whose outputs are still being checked shows as
/// `running`, with no outputs: its end and its checks become visible at one moment, so their
/// timing is one fact, not two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResearcherJob {
    /// The job's id.
    pub id: String,
    /// Its project.
    pub project: String,
    /// The researcher who submitted it.
    pub user: String,
    /// Where it stands.
    pub state: JobState,
    /// When it was submitted.
    pub submitted_at: Option<WholeSecond>,
    /// When it ended, once that is visible.
    pub ended_at: Option<WholeSecond>,
    /// Its place in the queue (1 = next) while queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// Its export requests, once it has ended and they are checked.
    pub exports: Vec<ResearcherRequest>,
}

impl ResearcherJob {
    /// `job` (at `position` while queued, with the requests made from its outputs) as a
    /// researcher sees it.
    pub fn new(job: &JobRow, position: Option<u64>, requests: &[ExportRequest]) -> ResearcherJob {
        let mut state = JobState::of(&job.status);
        let checking = requests.iter().any(|r| r.status == Status::Pending);
        if state.has_ended() && checking {
            state = JobState::Running;
        }
        let ended = state.has_ended();
        ResearcherJob {
            id: job.id.clone(),
            project: job.project.clone(),
            user: job.user.clone(),
            state,
            submitted_at: WholeSecond::of(&job.submitted_at),
            ended_at: if ended { job.finished_at.as_deref().and_then(WholeSecond::of) } else { None },
            position: if state == JobState::Queued { position } else { None },
            exports: if ended { requests.iter().map(ResearcherRequest::new).collect() } else { Vec::new() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guest_ending_maps_to_a_closed_word() {
        for (status, state) in [
            ("succeeded", "succeeded"),
            ("exit: 77", "failed"),
            ("trap: unreachable_code_reached", "failed"),
            ("memory_limit", "stopped: memory_limit"),
            ("export_limit", "stopped: export_limit"),
            ("interrupted", "interrupted"),
            ("nonsense", "host_error"),
        ] {
            assert_eq!(JobState::of(status).to_string(), state);
            assert_eq!(state.parse::<JobState>(), Ok(JobState::of(status)));
        }
    }

    #[test]
    fn times_are_cut_to_the_whole_second() {
        let at = WholeSecond::of("2026-12-02T09:22:14.987654Z").expect("parses");
        assert_eq!(at.to_string(), "2026-12-02T09:22:14Z");
        assert_eq!(serde_json::to_string(&at).expect("json"), "\"2026-12-02T09:22:14Z\"");
    }
}
