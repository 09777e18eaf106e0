//! FIG. 11: the way of specifying images: Mark sheet (scanned from the ADF) or Entering image
//! ID (the 8-digit box I). Used by Distribute file, Take out image and Process stored image.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::chrome;
use crate::panel::app::{Action, Ctx};
use crate::panel::jobs::{Job, Purpose};
use crate::panel::keys::Key;
use crate::panel::strings;
use crate::store::ImageId;

/// FIG. 11's state.
#[derive(Debug)]
pub struct SpecifyImage {
    /// What the image is for.
    pub purpose: Purpose,
    /// 0: mark sheet, 1: image ID.
    pub way: usize,
    /// Digits typed into the image ID box.
    pub id: String,
    /// The last complaint.
    pub error: Option<String>,
}

impl SpecifyImage {
    /// The dialog.
    pub fn new(purpose: Purpose) -> Self {
        Self {
            purpose,
            way: 0,
            id: String::new(),
            error: None,
        }
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        match key {
            Key::Digit(d) if self.way == 1 => {
                if self.id.len() < 8 {
                    self.id.push(char::from(b'0' + d));
                }
                self.error = None;
            }
            Key::Digit(1) | Key::Pick(0) => self.way = 0,
            Key::Digit(2) | Key::Pick(1) => self.way = 1,
            Key::Up | Key::Down | Key::Tab | Key::BackTab => self.way = 1 - self.way,
            Key::Backspace => {
                self.id.pop();
            }
            Key::Start => {
                if self.way == 0 {
                    return Action::Run(Job::ReadMarkSheet(self.purpose));
                }
                match self.id.parse::<ImageId>() {
                    Ok(id) => return Action::Run(Job::UseImage(id, self.purpose)),
                    Err(e) => self.error = Some(e.to_string()),
                }
            }
            Key::Reset => return Action::Back,
            _ => {}
        }
        Action::None
    }

    /// Draws the dialog.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let title = match self.purpose {
            Purpose::Distribute => strings::SPECIFY_TITLE.to_owned(),
            Purpose::TakeOut => {
                format!("Take out image: {}", strings::SPECIFY_TITLE.to_lowercase())
            }
            Purpose::Process => format!(
                "Process stored image: {}",
                strings::SPECIFY_TITLE.to_lowercase()
            ),
        };
        let hint = if self.way == 0 {
            "Mark sheet in the ADF, then Start. 2: type an ID."
        } else {
            "Type the 8-digit ID, then Start. Up: mark sheet."
        };
        let body = chrome(f, area, ctx, &title, hint);
        let row = |i: usize, text: String| {
            let style = if self.way == i {
                ctx.theme.focus()
            } else {
                ctx.theme.text()
            };
            Line::styled(format!("{}: {text}", i + 1), style)
        };
        let mut lines = vec![
            row(0, strings::SPECIFY_WAYS[0].to_owned()),
            row(1, strings::SPECIFY_WAYS[1].to_owned()),
            Line::raw(""),
            Line::from(vec![
                Span::raw(format!("{}  ", strings::IMAGE_ID)),
                Span::styled(
                    format!("[{:<8}]", self.id),
                    if self.way == 1 {
                        ctx.theme.focus()
                    } else {
                        ctx.theme.text()
                    },
                ),
            ]),
        ];
        if let Some(e) = &self.error {
            lines.push(Line::raw(""));
            lines.push(Line::styled(e.clone(), ctx.theme.error()));
        }
        super::hit_rows(
            ctx,
            Rect {
                height: 2.min(body.height),
                ..body
            },
            0,
            2,
        );
        f.render_widget(Paragraph::new(lines), body);
    }
}
