//! HylaFAX's job states and status codes mapped to the gateway's call progress and results.
//!
//! | HylaFAX | gateway |
//! |---|---|
//! | state ACTIVE (first seen) | `CallProgress::Dialling` |
//! | `npages` grows to k | `PageConfirmed` for each page up to k, `SendingPage` for k + 1 |
//! | DONE | `CallResult::Sent` |
//! | FAILED, status 1 (`Busy signal detected`) | `Busy` |
//! | FAILED, status 3 (`No answer from remote`), 11 (ringback, no answer) | `NoAnswer` |
//! | FAILED, status 130–133 (`Unable to transmit page ...`) | `PageError` at the first page not sent |
//! | FAILED, anything else | `Failed` with HylaFAX's status text |
//!
//! Status codes are HylaFAX 6's (faxd/STATUS.txt); a server without `statuscode` is mapped
//! by the status text's start.

use crate::coding::Coding;
use crate::sim::{CallProgress, CallResult};

use super::qfile::{JobFile, JobState};
use super::reply::shown;

/// The coding a `dataformat` names, when it is one of the gateway's (`1-D MH`, `2-D MMR`).
pub fn coding_of(dataformat: &str) -> Option<Coding> {
    let f = dataformat.to_ascii_uppercase();
    if f.contains("MMR") {
        Some(Coding::G4)
    } else if f.contains("MH") {
        Some(Coding::Mh)
    } else {
        None
    }
}

/// How a finished job (DONE or FAILED) ended, for a call that sent the document from
/// `first_page` (1-based).
pub fn result_of(job: &JobFile, first_page: usize) -> CallResult {
    if job.state == Some(JobState::Done) {
        return CallResult::Sent;
    }
    let text = job.status.trim();
    let reason = if text.is_empty() {
        match job.statuscode {
            Some(code) => format!("HylaFAX status {code}"),
            None => "HylaFAX gave no reason".to_owned(),
        }
    } else {
        shown(text)
    };
    let starts = |p: &str| text.to_ascii_lowercase().starts_with(p);
    let busy = job.statuscode == Some(1) || starts("busy signal detected");
    let no_answer = matches!(job.statuscode, Some(3 | 11))
        || starts("no answer from remote")
        || starts("ringback detected");
    let page = matches!(job.statuscode, Some(130..=133)) || starts("unable to transmit page");
    if busy {
        CallResult::Busy
    } else if no_answer {
        CallResult::NoAnswer
    } else if page {
        CallResult::PageError {
            page: first_page + job.npages,
            reason,
        }
    } else {
        CallResult::Failed(reason)
    }
}

/// Turns successive readings of a job's queue file into progress steps.
#[derive(Debug, Clone)]
pub struct Tracker {
    first_page: usize,
    of: usize,
    active: bool,
    confirmed: usize,
}

impl Tracker {
    /// A tracker for a call that sends pages `first_page..=of` of a document (1-based).
    pub fn new(first_page: usize, of: usize) -> Tracker {
        Tracker {
            first_page,
            of,
            active: false,
            confirmed: 0,
        }
    }

    /// The steps `job` shows that were not reported yet.
    pub fn update(&mut self, job: &JobFile) -> Vec<CallProgress> {
        let mut steps = Vec::new();
        let sending = job.state == Some(JobState::Active) || job.npages > self.confirmed;
        if sending && !self.active {
            self.active = true;
            steps.push(CallProgress::Dialling);
        }
        let last = self.of.saturating_sub(self.first_page) + 1;
        let npages = job.npages.min(last);
        if npages > self.confirmed {
            for k in self.confirmed + 1..=npages {
                let page = self.first_page + k - 1;
                steps.push(CallProgress::PageConfirmed { page });
            }
            self.confirmed = npages;
            if npages < last && job.state == Some(JobState::Active) {
                steps.push(CallProgress::SendingPage {
                    page: self.first_page + npages,
                    of: self.of,
                });
            }
        }
        steps
    }

    /// Pages confirmed so far.
    pub fn confirmed(&self) -> usize {
        self.confirmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(code: Option<u16>, status: &str, npages: usize) -> JobFile {
        JobFile {
            state: Some(JobState::Failed),
            status: status.into(),
            statuscode: code,
            npages,
            ..JobFile::default()
        }
    }

    #[test]
    fn maps_hylafax_results() {
        let done = JobFile {
            state: Some(JobState::Done),
            ..JobFile::default()
        };
        assert_eq!(result_of(&done, 1), CallResult::Sent);
        assert_eq!(
            result_of(&failed(Some(1), "Busy signal detected", 0), 1),
            CallResult::Busy
        );
        assert_eq!(
            result_of(
                &failed(None, "Busy signal detected; too many attempts to dial", 0),
                1
            ),
            CallResult::Busy
        );
        assert_eq!(
            result_of(&failed(Some(3), "No answer from remote", 0), 1),
            CallResult::NoAnswer
        );
        assert_eq!(
            result_of(
                &failed(Some(11), "Ringback detected, no answer without CED", 0),
                1
            ),
            CallResult::NoAnswer
        );
        assert_eq!(
            result_of(
                &failed(
                    Some(130),
                    "Unable to transmit page (giving up after RTN)",
                    2
                ),
                3
            ),
            CallResult::PageError {
                page: 5,
                reason: "Unable to transmit page (giving up after RTN)".into()
            }
        );
        assert_eq!(
            result_of(&failed(Some(345), "Job aborted by request", 0), 1),
            CallResult::Failed("Job aborted by request".into())
        );
        assert_eq!(
            result_of(&failed(Some(4), "No local dialtone\u{1b}[2J", 0), 1),
            CallResult::Failed("No local dialtone\\u{1b}[2J".into())
        );
        assert_eq!(
            result_of(&failed(Some(6), "", 0), 1),
            CallResult::Failed("HylaFAX status 6".into())
        );
        assert_eq!(coding_of("1-D MH"), Some(Coding::Mh));
        assert_eq!(coding_of("2-D MMR"), Some(Coding::G4));
        assert_eq!(coding_of("2-D MR"), None);
    }

    #[test]
    fn reports_progress_once() {
        let mut t = Tracker::new(2, 4);
        let mut job = JobFile {
            state: Some(JobState::Ready),
            ..JobFile::default()
        };
        assert!(t.update(&job).is_empty());
        job.state = Some(JobState::Active);
        assert_eq!(t.update(&job), vec![CallProgress::Dialling]);
        assert!(t.update(&job).is_empty());
        job.npages = 1;
        assert_eq!(
            t.update(&job),
            vec![
                CallProgress::PageConfirmed { page: 2 },
                CallProgress::SendingPage { page: 3, of: 4 }
            ]
        );
        job.npages = 3;
        job.state = Some(JobState::Done);
        assert_eq!(
            t.update(&job),
            vec![
                CallProgress::PageConfirmed { page: 3 },
                CallProgress::PageConfirmed { page: 4 }
            ]
        );
        assert_eq!(t.confirmed(), 3);
    }
}
