//! The communication records (issue 12; 002 FIG. 3 steps 203–206): one entry per call
//! attempt of this user's faxes, sent and received, newest first: time, direction, number,
//! station ID, pages, gateway, result and why.

use imagecast_shared::fax::FaxRecordInfo;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{ListItem, ListState, Paragraph};

use super::{chrome, peer_name, peer_text};
use crate::panel::app::{Action, Ctx};
use crate::panel::keys::Key;

/// The screen's state.
#[derive(Debug)]
pub struct FaxRecords {
    /// The records, oldest first (as the server sends them).
    pub records: Vec<FaxRecordInfo>,
    /// The highlighted row (0 = newest).
    pub list: ListState,
}

impl FaxRecords {
    /// The list, newest highlighted.
    pub fn new(records: Vec<FaxRecordInfo>) -> Self {
        let mut list = ListState::default();
        list.select(Some(0));
        Self { records, list }
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        match key {
            Key::Up => self.list.select_previous(),
            Key::Down
                if self
                    .list
                    .selected()
                    .is_some_and(|i| i + 1 < self.records.len()) =>
            {
                self.list.select_next();
            }
            Key::Pick(i) => self.list.select(Some(i)),
            Key::Reset | Key::Start => return Action::Back,
            _ => {}
        }
        Action::None
    }

    /// The two lines of one record.
    pub fn describe(r: &FaxRecordInfo) -> (String, String) {
        let t = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.at_ms.max(0) as u64),
        )
        .to_string();
        let time = t.get(11..19).unwrap_or(&t).to_owned();
        let dir = if r.direction == "receive" {
            "from"
        } else {
            "to"
        };
        let first = format!(
            "{time} {dir} {}: {}",
            peer_name(&r.number),
            peer_name(&r.result)
        );
        let mut second = format!(
            "  {} page(s) via {}",
            r.pages,
            if r.gateway.is_empty() {
                "-".into()
            } else {
                peer_name(&r.gateway)
            }
        );
        if !r.station.is_empty() {
            second.push_str(&format!(" \"{}\"", peer_name(&r.station)));
        }
        if !r.reason.is_empty() {
            second.push_str(&format!(": {}", peer_text(&r.reason)));
        }
        (first, second)
    }

    /// Draws the list.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let title = format!("Fax communication records ({})", self.records.len());
        let body = chrome(f, area, ctx, &title, "Up/Down move, Start or Reset back.");
        if self.records.is_empty() {
            f.render_widget(Paragraph::new("No fax sent or received yet."), body);
            return;
        }
        let items: Vec<ListItem> = self
            .records
            .iter()
            .rev()
            .map(|r| {
                let (a, b) = Self::describe(r);
                let style = if matches!(r.result.as_str(), "sent" | "received") {
                    ctx.theme.text()
                } else {
                    ctx.theme.error()
                };
                ListItem::new(vec![
                    Line::styled(a, style),
                    Line::styled(b, ctx.theme.dim()),
                ])
            })
            .collect();
        super::pick_list(f, ctx, body, items, &mut self.list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::app::{App, AppEvent};
    use crate::panel::jobs::fax::FaxSource;
    use crate::panel::jobs::{Job, JobResult};
    use crate::panel::screens::Screen;
    use crate::panel::screens::fax_dest::FaxDest;
    use crate::panel::test_support::{logged_in, screen};

    fn record(
        seq: i64,
        direction: &str,
        number: &str,
        result: &str,
        reason: &str,
    ) -> FaxRecordInfo {
        FaxRecordInfo {
            seq,
            at_ms: 1_790_000_000_000 + seq * 60_000,
            direction: direction.into(),
            job: "j1".into(),
            user: "1001".into(),
            terminal: "sale1.hqs.mei.co.jp".into(),
            gateway: "fax1.hqs.mei.co.jp".into(),
            number: number.into(),
            station: if result == "busy" {
                String::new()
            } else {
                "ACME TRADING OSAKA".into()
            },
            pages: if result == "busy" { 0 } else { 4 },
            duration_ms: 1200,
            coding: "G4".into(),
            speed: 14400,
            result: result.into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn hash_on_an_empty_number_opens_the_records_newest_first() {
        let mut a: App = logged_in();
        a.apply(Action::Push(Screen::FaxDest(FaxDest::new(
            FaxSource::Adf,
            vec![],
            1,
            1,
        ))));
        a.key(Key::Hash);
        assert!(matches!(a.take_jobs()[..], [Job::FetchFaxRecords(_)]));
        a.event(AppEvent::Job(JobResult::FaxRecords(vec![
            record(1, "send", "0665550199", "busy", "the line was busy"),
            record(2, "send", "0665550199", "sent", ""),
            record(3, "receive", "0665550199", "received", ""),
        ])));
        let text = screen(&mut a);
        let received = text.find("from 0665550199: received").expect(&text);
        let busy = text.find("to 0665550199: busy").expect(&text);
        assert!(received < busy, "newest first:\n{text}");
        insta::assert_snapshot!("fax_records", text);
        a.key(Key::Reset);
        assert!(matches!(a.screen(), Screen::FaxDest(_)));
    }
}
