//! A fax's progress, number by number (issue 12): queued, dialling via which gateway, page k
//! of n, sent, busy and retrying, failed; fed by the supervisor's fax events
//! ([`FaxEvent::Progress`]) for this job.

use imagecast_shared::client::Event;
use imagecast_shared::fax::{FaxEvent, FaxNumberStatus};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::{chrome, peer_name, peer_text};
use crate::panel::app::{Action, Ctx};
use crate::panel::keys::Key;

/// The screen's state.
#[derive(Debug, Default)]
pub struct FaxProgress {
    /// The job, once the supervisor has it.
    pub job: Option<String>,
    /// Files sent.
    pub files: usize,
    /// Each number's latest state.
    pub rows: Vec<FaxNumberStatus>,
    /// Why the fax was not accepted.
    pub failed: Option<String>,
}

impl FaxProgress {
    /// Scanning and sending, nothing known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The supervisor has job `job` for `numbers`.
    pub fn accepted(&mut self, job: String, numbers: Vec<String>, files: usize) {
        self.rows = numbers
            .into_iter()
            .map(|number| FaxNumberStatus {
                job: job.clone(),
                number,
                state: "queued".to_owned(),
                done: false,
                gateway: String::new(),
                pages_sent: 0,
                pages_total: 0,
                dials: 0,
                detail: String::new(),
            })
            .collect();
        self.job = Some(job);
        self.files = files;
    }

    /// The fax was not accepted.
    pub fn refused(&mut self, why: String) {
        self.failed = Some(why);
    }

    /// A server event: this job's numbers' progress.
    pub fn server_event(&mut self, event: &Event) {
        let Event::Fax(FaxEvent::Progress(st)) = event else {
            return;
        };
        if self.job.as_deref() != Some(st.job.as_str()) {
            return;
        }
        match self.rows.iter_mut().find(|r| r.number == st.number) {
            Some(row) => *row = st.clone(),
            None => self.rows.push(st.clone()),
        }
    }

    /// True when every number is sent or failed (or the fax was refused).
    pub fn over(&self) -> bool {
        self.failed.is_some() || (self.job.is_some() && self.rows.iter().all(|r| r.done))
    }

    /// Handles a key: OK goes back to mode selection once the supervisor has the job
    /// (sending goes on without the screen).
    pub fn key(&mut self, key: Key) -> Action {
        match key {
            Key::Start | Key::Reset if self.failed.is_some() => Action::Back,
            Key::Start | Key::Reset if self.job.is_some() => Action::Home,
            Key::Down | Key::Up => Action::None,
            _ => Action::None,
        }
    }

    /// One number's line.
    pub fn describe(r: &FaxNumberStatus) -> String {
        let number = peer_name(&r.number);
        let via = if r.gateway.is_empty() {
            String::new()
        } else {
            format!(" via {}", peer_name(&r.gateway))
        };
        let detail = peer_text(&r.detail);
        match r.state.as_str() {
            "sent" => format!("{number}: sent {} page(s){via}", r.pages_sent),
            "failed" => format!("{number}: failed: {detail}"),
            // The supervisor's own words: "dialling via GW", "sending page 2 of 4 via GW".
            "dialling" if !detail.is_empty() => format!("{number}: {detail}"),
            "dialling" if r.pages_total > 0 => format!(
                "{number}: dialling{via}, page {} of {}",
                (r.pages_sent + 1).min(r.pages_total),
                r.pages_total
            ),
            "dialling" => format!("{number}: dialling{via}"),
            "queued" if !detail.is_empty() => format!("{number}: queued: {detail}"),
            other => format!("{number}: {}", peer_name(other)),
        }
    }

    /// Draws the screen.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let (title, hint) = if let Some(why) = &self.failed {
            let body = chrome(f, area, ctx, "Fax not sent", "Start or Reset: back");
            f.render_widget(
                Paragraph::new(Line::styled(peer_text(why).into_owned(), ctx.theme.error()))
                    .wrap(Wrap { trim: true }),
                body,
            );
            super::hit(ctx, body, Key::Start);
            return;
        } else if self.job.is_none() {
            (
                "Facsimile transmission: scanning and sending",
                "Stop (x) cancels",
            )
        } else if self.over() {
            ("Facsimile transmission: done", "Start: OK")
        } else {
            (
                "Facsimile transmission: in progress",
                "Start: OK (sending goes on)",
            )
        };
        let body = chrome(f, area, ctx, title, hint);
        let mut lines = Vec::new();
        if let Some(job) = &self.job {
            lines.push(Line::styled(
                format!("Job {} ({} file(s))", peer_name(job), self.files),
                ctx.theme.dim(),
            ));
        }
        for r in &self.rows {
            let style = match r.state.as_str() {
                "failed" => ctx.theme.error(),
                "sent" => ctx.theme.text(),
                _ => ctx.theme.focus(),
            };
            lines.push(Line::styled(Self::describe(r), style));
        }
        super::hit(ctx, body, Key::Start);
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::app::{App, AppEvent};
    use crate::panel::jobs::JobResult;
    use crate::panel::screens::Screen;
    use crate::panel::test_support::{logged_in, screen};

    fn status(
        number: &str,
        state: &str,
        gateway: &str,
        sent: u32,
        total: u32,
        detail: &str,
    ) -> FaxNumberStatus {
        FaxNumberStatus {
            job: "j1".into(),
            number: number.into(),
            state: state.into(),
            done: matches!(state, "sent" | "failed"),
            gateway: gateway.into(),
            pages_sent: sent,
            pages_total: total,
            dials: 1,
            detail: detail.into(),
        }
    }

    fn sending() -> App {
        let mut a = logged_in();
        a.apply(Action::Push(Screen::FaxProgress(FaxProgress::new())));
        a.event(AppEvent::Job(JobResult::FaxAccepted {
            job: "j1".into(),
            numbers: vec!["0665550199".into(), "0355550102".into(), "0120".into()],
            files: 2,
        }));
        a
    }

    #[test]
    fn progress_follows_the_supervisors_events_and_ok_goes_home() {
        let mut a = sending();
        let ev = |s| AppEvent::Server(Event::Fax(FaxEvent::Progress(s)));
        a.event(ev(status(
            "0665550199",
            "dialling",
            "fax1.hqs.mei.co.jp",
            1,
            2,
            "",
        )));
        a.event(ev(status(
            "0355550102",
            "queued",
            "fax2.hqs.mei.co.jp",
            0,
            2,
            "busy; dialling again in 180 s",
        )));
        // Another job's news changes nothing.
        a.event(ev(FaxNumberStatus {
            job: "other".into(),
            ..status("0120", "sent", "g", 9, 9, "")
        }));
        let text = screen(&mut a);
        assert!(
            text.contains("0665550199: dialling via fax1.hqs.mei.co.jp, page 2 of 2"),
            "{text}"
        );
        assert!(
            text.contains("0355550102: queued: busy; dialling again in 180 s"),
            "{text}"
        );
        assert!(text.contains("0120: queued"), "{text}");
        assert!(text.contains("in progress"), "{text}");
        // The supervisor's words while sending.
        a.event(ev(status(
            "0665550199",
            "dialling",
            "fax1.hqs.mei.co.jp",
            1,
            2,
            "sending page 2 of 2 via fax1.hqs.mei.co.jp",
        )));
        assert!(
            screen(&mut a).contains("0665550199: sending page 2 of 2 via fax1.hqs.mei.co.jp"),
            "the server's detail is shown"
        );
        a.event(ev(status(
            "0665550199",
            "sent",
            "fax1.hqs.mei.co.jp",
            2,
            2,
            "",
        )));
        a.event(ev(status(
            "0355550102",
            "failed",
            "fax2.hqs.mei.co.jp",
            0,
            2,
            "busy after 12 dials",
        )));
        a.event(ev(status(
            "0120",
            "failed",
            "",
            0,
            2,
            "no answer after 3 dials",
        )));
        insta::assert_snapshot!("fax_progress_done", screen(&mut a));
        a.key(Key::Start);
        assert!(matches!(a.screen(), Screen::ModeSelect(_)));
    }

    #[test]
    fn a_refusal_names_the_servers_reason() {
        let mut a = logged_in();
        a.apply(Action::Push(Screen::FaxProgress(FaxProgress::new())));
        a.event(AppEvent::Job(JobResult::FaxFailed(
            "user 1001 may not send faxes: the competence send-fax was revoked".into(),
        )));
        insta::assert_snapshot!("fax_refused", screen(&mut a));
        a.key(Key::Start);
        assert!(!matches!(a.screen(), Screen::FaxProgress(_)));
    }
}
