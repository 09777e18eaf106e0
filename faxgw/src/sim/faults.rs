//! Faults set on a number from the command line (`imagecast-faxgw pstn fault …`), kept in
//! `faults/NUMBER.toml` and re-read (and used up) by every call to that number.

use serde::{Deserialize, Serialize};

/// One fault to set on a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Calls find the number busy: the next `times` calls, or every call when `None`.
    Busy {
        /// How many calls; `None` for every call until cleared.
        times: Option<u32>,
    },
    /// Calls ring out unanswered: the next `times` calls, or every call when `None`.
    NoAnswer {
        /// How many calls; `None` for every call until cleared.
        times: Option<u32>,
    },
    /// The data of the `page`-th page of the next `times` connected calls (once by default)
    /// is damaged on the line, so the receiver's check rejects it.
    PageError {
        /// 1-based page number within the call.
        page: u32,
        /// How many connected calls; `None` means once.
        times: Option<u32>,
    },
    /// The line drops after the `page`-th page of the next `times` connected calls (once by
    /// default) was confirmed.
    HangUpAfter {
        /// 1-based page number within the call.
        page: u32,
        /// How many connected calls; `None` means once.
        times: Option<u32>,
    },
}

/// A fault repeated for a number of calls, or for every call when `times` is absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repeat {
    /// Calls left; absent for every call until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

/// A fault on one page of a call, for a number of calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageFault {
    /// 1-based page number within the call.
    pub page: u32,
    /// Calls left.
    pub times: u32,
}

/// Every fault set on one number: the content of `faults/NUMBER.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    /// See [`Fault::Busy`].
    #[serde(default)]
    pub busy: Option<Repeat>,
    /// See [`Fault::NoAnswer`].
    #[serde(default)]
    pub no_answer: Option<Repeat>,
    /// See [`Fault::PageError`].
    #[serde(default)]
    pub page_error: Option<PageFault>,
    /// See [`Fault::HangUpAfter`].
    #[serde(default)]
    pub hang_up_after: Option<PageFault>,
}

/// What the network does to one call before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ring {
    /// No fault: ring the number.
    Normal,
    /// Busy tone.
    Busy,
    /// Ring out unanswered.
    NoAnswer,
}

/// What the network does to a connected call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OnLine {
    /// Damage this page (1-based within the call).
    pub page_error: Option<u32>,
    /// Drop the line after this page (1-based within the call) was confirmed.
    pub hang_up_after: Option<u32>,
}

fn use_repeat(slot: &mut Option<Repeat>) -> bool {
    let Some(repeat) = slot else { return false };
    match repeat.times {
        None => {}
        Some(n) if n <= 1 => *slot = None,
        Some(n) => repeat.times = Some(n - 1),
    }
    true
}

fn use_page(slot: &mut Option<PageFault>) -> Option<u32> {
    let fault = (*slot)?;
    if fault.times <= 1 {
        *slot = None;
    } else {
        *slot = Some(PageFault {
            times: fault.times - 1,
            ..fault
        });
    }
    Some(fault.page)
}

impl Faults {
    /// True when no fault is set.
    pub fn is_empty(&self) -> bool {
        *self == Faults::default()
    }

    /// Adds `fault`, replacing a fault of the same kind.
    pub fn set(&mut self, fault: Fault) {
        match fault {
            Fault::Busy { times } => self.busy = Some(Repeat { times }),
            Fault::NoAnswer { times } => self.no_answer = Some(Repeat { times }),
            Fault::PageError { page, times } => {
                self.page_error = Some(PageFault {
                    page,
                    times: times.unwrap_or(1),
                })
            }
            Fault::HangUpAfter { page, times } => {
                self.hang_up_after = Some(PageFault {
                    page,
                    times: times.unwrap_or(1),
                })
            }
        }
    }

    /// Uses up what happens to a call as it rings: busy first, then no answer.
    pub(crate) fn take_ring(&mut self) -> Ring {
        if use_repeat(&mut self.busy) {
            Ring::Busy
        } else if use_repeat(&mut self.no_answer) {
            Ring::NoAnswer
        } else {
            Ring::Normal
        }
    }

    /// Uses up what happens to a call once it is connected.
    pub(crate) fn take_on_line(&mut self) -> OnLine {
        OnLine {
            page_error: use_page(&mut self.page_error),
            hang_up_after: use_page(&mut self.hang_up_after),
        }
    }

    /// One line per fault, for `pstn faults` and logs.
    pub fn describe(&self) -> Vec<String> {
        let times =
            |t: Option<u32>| t.map_or("every call".to_string(), |n| format!("{n} more calls"));
        let mut out = Vec::new();
        if let Some(r) = self.busy {
            out.push(format!("busy ({})", times(r.times)));
        }
        if let Some(r) = self.no_answer {
            out.push(format!("no answer ({})", times(r.times)));
        }
        if let Some(p) = self.page_error {
            out.push(format!(
                "page error at page {} ({})",
                p.page,
                times(Some(p.times))
            ));
        }
        if let Some(p) = self.hang_up_after {
            out.push(format!(
                "hang up after page {} ({})",
                p.page,
                times(Some(p.times))
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_run_out_and_uncounted_ones_stay() {
        let mut f = Faults::default();
        f.set(Fault::Busy { times: Some(2) });
        assert_eq!(f.take_ring(), Ring::Busy);
        assert_eq!(f.take_ring(), Ring::Busy);
        assert_eq!(f.take_ring(), Ring::Normal);
        f.set(Fault::NoAnswer { times: None });
        for _ in 0..5 {
            assert_eq!(f.take_ring(), Ring::NoAnswer);
        }
        f.set(Fault::PageError {
            page: 2,
            times: None,
        });
        assert_eq!(f.take_on_line().page_error, Some(2));
        assert_eq!(f.take_on_line().page_error, None);
        let text = toml::to_string(&f).unwrap();
        assert_eq!(toml::from_str::<Faults>(&text).unwrap(), f);
    }
}
