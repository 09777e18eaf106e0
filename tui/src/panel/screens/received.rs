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

/// One line describing a received image.
pub fn describe(e: &ReceivedEntry) -> String {
    let t = humantime::format_rfc3339_seconds(e.at).to_string();
    let time = t.get(11..19).unwrap_or(&t).to_owned();
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
                        Span::raw(format!(
                            "  {} file{}, {}, by {}",
                            r.pages,
                            if r.pages == 1 { "" } else { "s" },
                            crate::panel::screens::progress::human_bytes(r.bytes),
                            peer_name(&r.user)
                        )),
                    ]),
                    Line::styled(
                        format!("  from {}", peer_name(&r.sender.name)),
                        ctx.theme.dim(),
                    ),
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
}
