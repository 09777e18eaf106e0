//! A real-time session's progress: demanded, accepted, page k of n printed, ended; or
//! rejected, not online, busy, broken, with the reason and which pages arrived. The same
//! screen follows a session this panel accepted: the pages printed here, Start sends the
//! ADF's pages back, Reset says this panel is done.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::{chrome, peer_name, peer_text, wrap};
use crate::panel::app::{Action, Ctx};
use crate::panel::jobs::relay::{DoneSending, News, SendBack};
use crate::panel::keys::Key;

/// Which end this panel is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Side {
    /// This panel demanded: it sends the ADF's pages.
    Demander,
    /// This panel accepted a demand.
    Target,
}

/// Where the session is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Scanning the ADF.
    Scanning,
    /// The connection demand waits for the answer.
    Demanded,
    /// The session is open.
    Open,
    /// It ended as it should.
    Ended(String),
    /// It was refused or broke, with the reason.
    Failed(String),
}

/// The session screen's state.
#[derive(Debug)]
pub struct RealTime {
    /// Which end this panel is.
    pub side: Side,
    /// The other terminal's name.
    pub peer: String,
    /// The user logged in there, when known.
    pub peer_user: String,
    /// The session's number, once open.
    pub session: Option<u64>,
    /// Where it is.
    pub stage: Stage,
    /// Pages this panel sends (files), once scanned.
    pub sending: u64,
    /// This panel's pages printed at the other end, from the first.
    pub printed: u64,
    /// Pages of the peer's printed here.
    pub received: u64,
    /// The peer sends no more.
    pub peer_done: bool,
    /// This panel (the target) said it sends no more.
    pub done_sending: bool,
}

impl RealTime {
    /// The screen of a send to `peer`, before the scan.
    pub fn demander(peer: &str) -> Self {
        Self::new(Side::Demander, peer, "", Stage::Scanning)
    }

    /// The screen of a session this panel accepted.
    pub fn target(session: u64, peer: &str, user: &str) -> Self {
        let mut s = Self::new(Side::Target, peer, user, Stage::Open);
        s.session = Some(session);
        s
    }

    fn new(side: Side, peer: &str, user: &str, stage: Stage) -> Self {
        Self {
            side,
            peer: peer.to_owned(),
            peer_user: user.to_owned(),
            session: None,
            stage,
            sending: 0,
            printed: 0,
            received: 0,
            peer_done: false,
            done_sending: false,
        }
    }

    /// True once it ended or failed.
    pub fn over(&self) -> bool {
        matches!(self.stage, Stage::Ended(_) | Stage::Failed(_))
    }

    /// True when `news` is about this screen's session (or, before it opened, this send).
    fn about(&self, session: Option<u64>) -> bool {
        match (self.session, session) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.side == Side::Demander,
            _ => false,
        }
    }

    /// Takes the session's news; false when it is about another session.
    pub fn news(&mut self, news: &News) -> bool {
        let session = match news {
            News::Accepted { session }
            | News::Printed { session, .. }
            | News::Received { session, .. }
            | News::SendingBack { session, .. }
            | News::PeerDone { session }
            | News::Ended { session, .. } => Some(*session),
            _ => None,
        };
        let about = match news {
            // The send's own steps come before it has a number.
            News::Accepted { .. } => self.side == Side::Demander && self.session.is_none(),
            _ => self.about(session),
        };
        if !about || self.over() {
            return false;
        }
        match news {
            News::Scanned { files, .. } => self.sending = *files as u64,
            News::Demanded => self.stage = Stage::Demanded,
            News::Accepted { session } => {
                self.session = Some(*session);
                self.stage = Stage::Open;
            }
            News::Printed { k, n, .. } => {
                self.printed = self.printed.max(*k);
                self.sending = self.sending.max(*n);
            }
            News::Received { .. } => self.received += 1,
            News::SendingBack { files, .. } => {
                self.sending += *files as u64;
                self.done_sending = true;
            }
            News::PeerDone { .. } => self.peer_done = true,
            News::Ended { ok, reason, .. } => {
                self.stage = if *ok {
                    Stage::Ended(reason.clone())
                } else {
                    Stage::Failed(reason.clone())
                };
            }
            _ => {}
        }
        true
    }

    /// The send ended (the job's answer).
    pub fn over_with(&mut self, ok: bool, reason: &str, printed: u64, n: u64) {
        self.printed = printed;
        self.sending = self.sending.max(n);
        self.stage = if ok {
            Stage::Ended(reason.to_owned())
        } else {
            Stage::Failed(reason.to_owned())
        };
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        match (&self.side, key) {
            // A send ends at mode selection, as a distribution does; a session accepted
            // gives back the screen it interrupted.
            (Side::Demander, Key::Start | Key::Reset) if self.over() => Action::Home,
            (Side::Target, Key::Start | Key::Reset) if self.over() => Action::Back,
            (Side::Target, Key::Start) if !self.done_sending => {
                self.done_sending = true;
                Action::run(SendBack)
            }
            (Side::Target, Key::Reset) => {
                if !self.done_sending {
                    self.done_sending = true;
                    return Action::run(DoneSending);
                }
                Action::Back
            }
            (Side::Demander, Key::Reset) => {
                Action::Note("Stop (x) ends the session; it closes when it is over.".into())
            }
            _ => Action::None,
        }
    }

    /// The screen's lines.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let peer = peer_name(&self.peer);
        match self.side {
            Side::Demander => {
                out.push(match self.stage {
                    Stage::Scanning => "Scanning the ADF...".to_owned(),
                    _ => format!("Scanned {} page file(s).", self.sending),
                });
                if self.stage != Stage::Scanning {
                    out.push(format!("Connection demand to {peer}: demanded."));
                }
                if let Some(s) = self.session {
                    out.push(format!("Accepted (session {s})."));
                }
            }
            Side::Target => {
                let user = if self.peer_user.is_empty() {
                    String::new()
                } else {
                    format!(" (user {})", peer_name(&self.peer_user))
                };
                out.push(format!(
                    "Accepted the connection demand from {peer}{user} (session {}).",
                    self.session.unwrap_or(0)
                ));
            }
        }
        if self.session.is_some() {
            if self.sending > 0 && self.printed == 0 && !self.over() {
                out.push(format!("Sending {} page file(s)...", self.sending));
            } else if self.sending > 0 {
                out.push(format!(
                    "Page {} of {} printed by {peer}.",
                    self.printed, self.sending
                ));
            }
            if self.received > 0 || self.side == Side::Target {
                out.push(format!(
                    "{} page file(s) from {peer} printed to the output tray (real time){}.",
                    self.received,
                    if self.peer_done { ", all sent" } else { "" }
                ));
            }
        }
        match &self.stage {
            Stage::Ended(r) => out.push(format!("Session ended: {}.", peer_text(r))),
            Stage::Failed(r) => {
                out.push(if self.session.is_some() {
                    format!("Session broke: {}.", peer_text(r))
                } else {
                    format!("Not sent: {}.", peer_text(r))
                });
                if self.session.is_some() {
                    out.push(if self.printed == 0 {
                        "No page arrived.".to_owned()
                    } else {
                        format!("Pages 1 to {} of {} arrived.", self.printed, self.sending)
                    });
                }
            }
            _ => {}
        }
        out
    }

    fn hint(&self) -> &'static str {
        match (&self.side, self.over()) {
            (_, true) => "Start or Reset: OK",
            (Side::Demander, false) => "Stop (x) ends the session.",
            (Side::Target, false) if self.done_sending => "The demander ends the session.",
            (Side::Target, false) => "Start sends the ADF's pages back; Reset: nothing to send.",
        }
    }

    /// Draws the screen.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let title = format!("Real time with {}", peer_name(&self.peer));
        let body = chrome(f, area, ctx, &title, self.hint());
        let width = body.width.max(1) as usize;
        let style = match self.stage {
            Stage::Failed(_) => ctx.theme.error(),
            Stage::Ended(_) => ctx.theme.ok(),
            _ => ctx.theme.text(),
        };
        let lines: Vec<Line> = self
            .lines()
            .iter()
            .flat_map(|l| wrap(l, width))
            .map(|l| Line::styled(l, style))
            .collect();
        f.render_widget(Paragraph::new(lines), body);
    }
}

#[cfg(test)]
mod tests {
    use imagecast_shared::client::Received;
    use imagecast_shared::msg::Destination;

    use super::*;
    use crate::panel::app::AppEvent;
    use crate::panel::jobs::{Job, JobResult};
    use crate::panel::screens::Screen;
    use crate::panel::test_support::{logged_in, screen};

    fn sending() -> crate::panel::app::App {
        let mut a = logged_in();
        a.apply(Action::run(crate::panel::jobs::relay::RealTimeSend {
            domain: "sale1.osk.mei.co.jp".into(),
            name: "Osaka sales".into(),
        }));
        let _ = a.take_jobs();
        a
    }

    fn news(a: &mut crate::panel::app::App, n: News) {
        a.event(AppEvent::Job(JobResult::RealTime(n)));
    }

    fn received(name: &str) -> Received {
        Received {
            delivery: imagecast_shared::DeliveryId(0),
            dist: imagecast_shared::DistributionId::new_random(),
            sender: Destination {
                domain: "sale1.osk.mei.co.jp".into(),
                name: "Osaka sales".into(),
            },
            user: "1002".into(),
            files: vec![name.into()],
            pages: 1,
            bytes: 10,
            duplicate: false,
        }
    }

    #[test]
    fn a_send_goes_from_demanded_to_printed_to_ended() {
        let mut a = sending();
        assert!(matches!(a.screen(), Screen::RealTime(_)));
        insta::assert_snapshot!("realtime_scanning", screen(&mut a));
        news(&mut a, News::Scanned { files: 2, pages: 3 });
        news(&mut a, News::Demanded);
        insta::assert_snapshot!("realtime_demanded", screen(&mut a));
        news(&mut a, News::Accepted { session: 4 });
        news(
            &mut a,
            News::Printed {
                session: 4,
                k: 1,
                n: 2,
            },
        );
        insta::assert_snapshot!("realtime_page_printed", screen(&mut a));
        // Reset does not leave a running session behind.
        a.key(Key::Reset);
        assert!(matches!(a.screen(), Screen::RealTime(_)));
        news(
            &mut a,
            News::Printed {
                session: 4,
                k: 2,
                n: 2,
            },
        );
        a.event(AppEvent::Job(JobResult::RealTimeOver {
            ok: true,
            reason: "done".into(),
            printed: 2,
            n: 2,
        }));
        assert!(a.busy.is_none());
        let s = screen(&mut a);
        insta::assert_snapshot!("realtime_ended", s);
        assert!(s.contains("Page 2 of 2 printed by Osaka sales."), "{s}");
        a.key(Key::Start);
        assert!(matches!(
            a.screen(),
            Screen::DistributionMode(_) | Screen::Terminals(_) | Screen::ModeSelect(_)
        ));
    }

    #[test]
    fn a_refusal_or_a_break_says_why_and_which_pages_arrived() {
        let mut a = sending();
        news(&mut a, News::Scanned { files: 3, pages: 3 });
        news(&mut a, News::Demanded);
        a.event(AppEvent::Job(JobResult::RealTimeOver {
            ok: false,
            reason: "sale1.osk.mei.co.jp rejected the connection demand: the operator rejected it"
                .into(),
            printed: 0,
            n: 3,
        }));
        let s = screen(&mut a);
        insta::assert_snapshot!("realtime_rejected", s);
        assert!(s.contains("rejected the connection"), "{s}");
        let mut b = sending();
        news(&mut b, News::Scanned { files: 3, pages: 3 });
        news(&mut b, News::Demanded);
        news(&mut b, News::Accepted { session: 9 });
        news(
            &mut b,
            News::Printed {
                session: 9,
                k: 1,
                n: 3,
            },
        );
        b.event(AppEvent::Job(JobResult::RealTimeOver {
            ok: false,
            reason: "the connection of sale1.osk.mei.co.jp ended: silent for 30 s".into(),
            printed: 1,
            n: 3,
        }));
        let s = screen(&mut b);
        insta::assert_snapshot!("realtime_broken", s);
        assert!(s.contains("Pages 1 to 1 of 3 arrived."), "{s}");
    }

    #[test]
    fn an_accepted_session_prints_marks_real_time_and_sends_back() {
        let mut a = logged_in();
        news(
            &mut a,
            News::Opened {
                session: 5,
                peer: Destination {
                    domain: "sale1.osk.mei.co.jp".into(),
                    name: "Osaka sales".into(),
                },
                user: "1002".into(),
            },
        );
        assert!(matches!(a.screen(), Screen::RealTime(_)));
        news(
            &mut a,
            News::Received {
                session: 5,
                k: 1,
                received: received("/tray/a.png"),
                pages: 1,
            },
        );
        assert_eq!(a.received.len(), 1);
        assert!(a.received[0].realtime);
        a.received[0].at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_700_000);
        let s = crate::panel::test_support::draw(&mut a, 120, 30);
        insta::assert_snapshot!("realtime_accepted_session", s);
        assert!(s.contains("real time"), "{s}");
        // Start sends the ADF back (beside any job), once.
        a.key(Key::Start);
        assert!(matches!(a.take_jobs().as_slice(), [Job::SendBack(_)]));
        a.key(Key::Start);
        assert!(a.take_jobs().is_empty());
        news(
            &mut a,
            News::Ended {
                session: 5,
                ok: true,
                reason: "sale1.osk.mei.co.jp ended the session: done".into(),
            },
        );
        assert!(screen(&mut a).contains("Session ended"));
        a.key(Key::Reset);
        assert!(matches!(a.screen(), Screen::ModeSelect(_)));
    }
}
