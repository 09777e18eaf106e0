//! A job's queue file (`sendq/qN` while it is queued or active, `doneq/qN` once it is done):
//! `tag:value` lines, a trailing backslash continuing a line (HylaFAX's sendq(5)).

/// The largest queue file read, in bytes (a real one is about 1 KiB).
pub const MAX_QFILE: usize = 64 * 1024;

/// A job's scheduling state (sendq(5) `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// 1: suspended, not being scheduled (a job not submitted yet).
    Suspended,
    /// 2: waiting for the time to send.
    Pending,
    /// 3: waiting for a scheduled timeout (a requeued job).
    Sleeping,
    /// 4: blocked by concurrent activity to the same destination.
    Blocked,
    /// 5: ready, waiting for a free modem.
    Ready,
    /// 6: being processed: dialling or sending.
    Active,
    /// 7: completed with success.
    Done,
    /// 8: completed with a failure.
    Failed,
}

impl JobState {
    /// The state of a queue file's `state` number.
    pub fn from_number(n: u32) -> Option<JobState> {
        Some(match n {
            1 => JobState::Suspended,
            2 => JobState::Pending,
            3 => JobState::Sleeping,
            4 => JobState::Blocked,
            5 => JobState::Ready,
            6 => JobState::Active,
            7 => JobState::Done,
            8 => JobState::Failed,
            _ => return None,
        })
    }

    /// The name `JPARM STATE` answers with.
    pub fn name(self) -> &'static str {
        match self {
            JobState::Suspended => "SUSPENDED",
            JobState::Pending => "PENDING",
            JobState::Sleeping => "SLEEPING",
            JobState::Blocked => "BLOCKED",
            JobState::Ready => "READY",
            JobState::Active => "ACTIVE",
            JobState::Done => "DONE",
            JobState::Failed => "FAILED",
        }
    }

    /// Whether the job is finished (done or failed).
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed)
    }
}

/// What the driver reads from a queue file. Strings are raw server text: escape them
/// before showing them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFile {
    /// `state`, when present and known.
    pub state: Option<JobState>,
    /// `npages`: pages sent.
    pub npages: usize,
    /// `totpages`: pages to send (0 until faxq has prepared the job).
    pub totpages: usize,
    /// `totdials`: calls placed.
    pub totdials: u32,
    /// `tottries`: attempts to send.
    pub tottries: u32,
    /// `status`: why the last attempt failed, or the job's end.
    pub status: String,
    /// `statuscode`: the numeric form of `status` (HylaFAX 6), when present.
    pub statuscode: Option<u16>,
    /// `csi`: the answering station's ID, once a call was answered.
    pub csi: String,
    /// `signalrate`: e.g. `14400 bit/s`.
    pub signalrate: String,
    /// `dataformat`: e.g. `1-D MH`, `2-D MMR`.
    pub dataformat: String,
    /// `commid`: the communication ID of the last call (its session log).
    pub commid: String,
}

impl JobFile {
    /// Parses a queue file; unknown tags are skipped, and a file without a known `state`
    /// (read while faxq was rewriting it) has `state: None`.
    pub fn parse(text: &str) -> JobFile {
        let mut job = JobFile::default();
        let mut logical = String::new();
        for raw in text.lines() {
            if let Some(head) = raw.strip_suffix('\\') {
                logical.push_str(head);
                continue;
            }
            logical.push_str(raw);
            job.take(&logical);
            logical.clear();
        }
        if !logical.is_empty() {
            job.take(&logical);
        }
        job
    }

    fn take(&mut self, line: &str) {
        let Some((tag, value)) = line.split_once(':') else {
            return;
        };
        let value = value.trim();
        match tag {
            "state" => self.state = value.parse().ok().and_then(JobState::from_number),
            "npages" => self.npages = value.parse().unwrap_or(0),
            "totpages" => self.totpages = value.parse().unwrap_or(0),
            "totdials" => self.totdials = value.parse().unwrap_or(0),
            "tottries" => self.tottries = value.parse().unwrap_or(0),
            "status" => self.status = value.to_owned(),
            "statuscode" => self.statuscode = value.parse().ok(),
            "csi" => self.csi = value.to_owned(),
            "signalrate" => self.signalrate = value.to_owned(),
            "dataformat" => self.dataformat = value.to_owned(),
            "commid" => self.commid = value.to_owned(),
            _ => {}
        }
    }

    /// The signalling rate in bit/s, when `signalrate` starts with a number.
    pub fn bit_rate(&self) -> Option<u32> {
        let digits: String = self
            .signalrate
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok().filter(|&r| r > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of a `doneq/q2` written by HylaFAX 6.0.7 (Debian 12).
    const DONE: &str = "tts:1795786061\nkilltime:10800\nstate:8\nnpages:0\ntotpages:0\n\
ntries:0\nndials:0\ntotdials:0\nmaxdials:1\ntottries:0\nmaxtries:1\n\
number:5550100\nsender:test\njobid:2\nmodem:any\ncsi:\nsignalrate:\ndataformat:\n\
status:Kill time expired\nstatuscode:325\nreturned:0\nnotify:none\ntiff:0::docq/doc2.tif.2\n";

    #[test]
    fn reads_a_real_queue_file() {
        let job = JobFile::parse(DONE);
        assert_eq!(job.state, Some(JobState::Failed));
        assert_eq!(job.status, "Kill time expired");
        assert_eq!(job.statuscode, Some(325));
        assert_eq!((job.npages, job.totpages, job.totdials), (0, 0, 0));
        assert_eq!(job.bit_rate(), None);
    }

    #[test]
    fn joins_continued_lines_and_tolerates_a_torn_file() {
        let job = JobFile::parse(
            "state:7\nstatus:first \\\npart\ncsi: +1 555 0100\nsignalrate:14400 bit/s\n",
        );
        assert_eq!(job.state, Some(JobState::Done));
        assert_eq!(job.status, "first part");
        assert_eq!(job.csi, "+1 555 0100");
        assert_eq!(job.bit_rate(), Some(14400));
        let torn = JobFile::parse("tts:1795786061\nkillti");
        assert_eq!(torn.state, None);
        assert_eq!(JobFile::parse("state:42\n").state, None);
    }
}
