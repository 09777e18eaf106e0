//! A message the operator acknowledges with Start or Reset.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::chrome;
use crate::panel::app::{Action, Ctx};
use crate::panel::keys::Key;

/// A message dialog.
#[derive(Debug)]
pub struct Message {
    /// What happened, in a few words.
    pub title: String,
    /// The details, one line each.
    pub lines: Vec<String>,
    /// True for an error.
    pub error: bool,
}

impl Message {
    /// A message with good or neutral news.
    pub fn info(title: impl Into<String>, lines: Vec<String>) -> Self {
        Self {
            title: title.into(),
            lines,
            error: false,
        }
    }

    /// An error, in one sentence.
    pub fn error(title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            lines: vec![message.into()],
            error: true,
        }
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        match key {
            Key::Start | Key::Reset | Key::Space | Key::Pick(_) => Action::Back,
            _ => Action::None,
        }
    }

    /// Draws the dialog.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let body = chrome(f, area, ctx, &self.title, "Start or Reset: OK");
        let style = if self.error {
            ctx.theme.error()
        } else {
            ctx.theme.text()
        };
        // Errors quote the server's messages and reasons.
        let lines: Vec<Line> = self
            .lines
            .iter()
            .map(|l| Line::styled(super::peer_text(l).into_owned(), style))
            .collect();
        super::hit(ctx, body, Key::Start);
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), body);
    }
}
