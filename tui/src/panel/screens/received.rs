//! Images received and printed to the output tray, newest first, with sender, pages and time.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{ListItem, ListState, Paragraph};

use super::{chrome, peer_name};
use crate::panel::app::{Action, Ctx, ReceivedEntry};
use crate::panel::jobs::paper::LoadPreview;
use crate::panel::keys::Key;
use crate::panel::strings;

/// The received list's state.
#[derive(Debug, Default)]
pub struct ReceivedList {
    /// The highlighted row (0 = newest).
    pub list: ListState,
}

/// Who sent a received fax: `NUMBER "STATION" via GATEWAY`, peer text escaped.
pub fn fax_sender(fax: &imagecast_shared::fax::FaxIncoming) -> String {
    let r = &fax.record;
    format!(
        "{} \"{}\" via {}",
        if r.number.is_empty() {
            "an unknown number".into()
        } else {
            peer_name(&r.number)
        },
        peer_name(&r.station),
        peer_name(&r.gateway)
    )
}

/// One line describing a received image.
pub fn describe(e: &ReceivedEntry) -> String {
    let t = humantime::format_rfc3339_seconds(e.at).to_string();
    let time = t.get(11..19).unwrap_or(&t).to_owned();
    if let Some(fax) = &e.fax {
        return format!("{time} fax from {} ({} pages)", fax_sender(fax), e.pages);
    }
    format!(
        "{time} {} ({} file{}){}",
        peer_name(&e.received.sender.name),
        e.received.pages,
        if e.received.pages == 1 { "" } else { "s" },
        if e.realtime { ", real time" } else { "" }
    )
}

impl ReceivedList {
    /// The list, newest highlighted.
    pub fn new() -> Self {
        let mut list = ListState::default();
        list.select(Some(0));
        Self { list }
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key, ctx: &Ctx) -> Action {
        let n = ctx.received.len();
        match key {
            Key::Up => self.list.select_previous(),
            Key::Down if self.list.selected().is_some_and(|i| i + 1 < n) => {
                self.list.select_next();
            }
            Key::Pick(i) => self.list.select(Some(i)),
            Key::Start | Key::Preview => {
                let Some(e) = self
                    .list
                    .selected()
                    .and_then(|i| ctx.received.iter().rev().nth(i))
                else {
                    return Action::None;
                };
                return Action::run(LoadPreview {
                    title: format!("From {}", peer_name(&e.received.sender.name)),
                    files: e.received.files.clone(),
                });
            }
            Key::Reset => return Action::Back,
            _ => {}
        }
        Action::None
    }

    /// Draws the list.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let title = format!("{} ({})", strings::RECEIVED_TITLE, ctx.received.len());
        let body = chrome(f, area, ctx, &title, "Start/p preview, Reset back.");
        if ctx.received.is_empty() {
            f.render_widget(Paragraph::new("Nothing received yet."), body);
            return;
        }
        let items: Vec<ListItem> = ctx
            .received
            .iter()
            .rev()
            .map(|e| {
                let r = &e.received;
                let t = humantime::format_rfc3339_seconds(e.at).to_string();
                ListItem::new(vec![
                    Line::from(vec![
                        Span::raw(t.get(11..19).unwrap_or(&t).to_owned()),
                        Span::raw(match &e.fax {
                            Some(fax) => format!(
                                "  {} page{}, {}, fax via {}",
                                e.pages,
                                if e.pages == 1 { "" } else { "s" },
                                crate::panel::screens::progress::human_bytes(r.bytes),
                                peer_name(&fax.record.gateway)
                            ),
                            None => format!(
                                "  {} file{}, {}, by {}",
                                r.pages,
                                if r.pages == 1 { "" } else { "s" },
                                crate::panel::screens::progress::human_bytes(r.bytes),
                                peer_name(&r.user)
                            ),
                        }),
                    ]),
                    match &e.fax {
                        Some(fax) => Line::styled(
                            format!(
                                "  FAX from {} \"{}\"",
                                peer_name(&fax.record.number),
                                peer_name(&fax.record.station)
                            ),
                            ctx.theme.title(),
                        ),
                        None => Line::styled(
                            format!("  from {}", peer_name(&r.sender.name)),
                            ctx.theme.dim(),
                        ),
                    },
                ])
            })
            .collect();
        let total = super::pick_list(f, ctx, body, items, &mut self.list);
        // Two rows per entry: a touch on either picks it.
        for i in 0..(body.height as usize / 2) {
            let entry = self.list.offset() + i;
            if entry >= total {
                break;
            }
            let row = Rect {
                y: body.y + 2 * i as u16,
                height: 2,
                ..body
            };
            super::hit(ctx, row, Key::Pick(entry));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::test_support::{logged_in, screen, two_received};

    #[test]
    fn received_list_at_80x24() {
        let mut a = logged_in();
        two_received(&mut a);
        a.key(Key::Received);
        insta::assert_snapshot!("received_list", screen(&mut a));
    }

    #[test]
    fn a_received_fax_is_marked_as_a_fax() {
        use crate::panel::app::AppEvent;
        use imagecast_shared::client::Received;
        use imagecast_shared::fax::{FaxIncoming, FaxRecordInfo};
        use imagecast_shared::msg::Destination;
        use imagecast_shared::{DeliveryId, DistributionId};
        let mut a = logged_in();
        two_received(&mut a);
        let dist = DistributionId::new_random();
        let record = FaxRecordInfo {
            seq: 7,
            at_ms: 0,
            direction: "receive".into(),
            job: String::new(),
            user: "1001".into(),
            terminal: String::new(),
            gateway: "fax1.hqs.mei.co.jp".into(),
            number: "0665550199".into(),
            station: "ACME TRADING OSAKA".into(),
            pages: 1,
            duration_ms: 900,
            coding: "G4".into(),
            speed: 14400,
            result: "received".into(),
            reason: String::new(),
        };
        a.event(AppEvent::Received {
            received: Received {
                delivery: DeliveryId(9),
                dist,
                sender: Destination {
                    domain: "fax1.hqs.mei.co.jp".into(),
                    name: "fax server 1 of the head office".into(),
                },
                user: String::new(),
                files: vec![],
                pages: 1,
                bytes: 2000,
                duplicate: false,
            },
            pages: 1,
            fax: Some(Box::new(FaxIncoming {
                dist,
                called: "0355550101".into(),
                record,
            })),
        });
        let home = screen(&mut a);
        assert!(
            home.contains("Printed a fax of 1 page(s) from 0665550199 \"ACME TRADING OSAKA\""),
            "{home}"
        );
        // A fixed time for the snapshot.
        if let Some(e) = a.received.last_mut() {
            e.at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000);
        }
        assert!(screen(&mut a).contains("1p FAX ACME"), "the pane marks it");
        a.key(Key::Received);
        let list = screen(&mut a);
        assert!(
            list.contains("FAX from 0665550199 \"ACME TRADING OSAKA\""),
            "{list}"
        );
        assert!(list.contains("fax via fax1.hqs.mei.co.jp"), "{list}");
        insta::assert_snapshot!("received_list_with_a_fax", list);
    }
}
