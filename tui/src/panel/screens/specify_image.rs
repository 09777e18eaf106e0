//! FIG. 11: the way of specifying images: Mark sheet (scanned from the ADF) or Entering image
//! ID (the 8-digit box I). Used by Distribute file, Take out image and Process stored image.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::chrome;
use crate::panel::app::{Action, Ctx};
use crate::panel::jobs::paper::ReadMarkSheet;
use crate::panel::jobs::server::FetchGroups;
use crate::panel::jobs::stored::{Process, TakeOut, UseImage};
use crate::panel::jobs::{GroupsFor, ImageSource};
use crate::panel::keys::Key;
use crate::panel::strings;
use crate::store::ImageId;

/// What a stored image is wanted for: FIG. 7 and FIG. 8 lead here for three reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Distribute file (FIG. 8): on to FIG. 9 for this image.
    Distribute,
    /// Take out image (FIG. 7): print it.
    TakeOut,
    /// Process stored image (FIG. 7): copy it to removable media.
    Process,
    /// Fax stored image (FIG. 7 mode 4): on to the fax destination screen for this image.
    Fax,
}

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
    /// The dialog, mark sheet highlighted.
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
                    return Action::run(ReadMarkSheet);
                }
                match self.id.parse::<ImageId>() {
                    Ok(id) => return Action::run(UseImage(id)),
                    Err(e) => self.error = Some(e.to_string()),
                }
            }
            Key::Reset => return Action::Back,
            _ => {}
        }
        Action::None
    }

    /// The image was found (by its mark sheet or its ID): on to what it is for.
    pub fn chosen(&self, id: ImageId) -> Action {
        match self.purpose {
            Purpose::Distribute => Action::run(FetchGroups {
                purpose: GroupsFor::Distribute(ImageSource::Stored(id)),
            }),
            Purpose::TakeOut => Action::run(TakeOut(id)),
            Purpose::Process => Action::run(Process(id)),
            Purpose::Fax => Action::run(crate::panel::jobs::fax::FetchFax {
                source: crate::panel::jobs::fax::FaxSource::Stored(id),
            }),
        }
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
            Purpose::Fax => format!(
                "Fax stored image: {}",
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
        // Messages wrap at spaces instead of running off the LCD's edge.
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::jobs::Job;

    #[test]
    fn an_unknown_image_id_is_said_under_the_box() {
        let mut a = logged_in();
        keys(&mut a, &[Key::Digit(3), Key::Digit(2)]);
        for _ in 0..8 {
            a.key(Key::Digit(7));
        }
        a.key(Key::Start);
        assert!(matches!(the_job(&mut a), Job::UseImage(_)));
        a.event(crate::panel::app::AppEvent::Job(
            crate::panel::jobs::JobResult::ImageRefused(
                "no image with ID 77777777 in the image store".into(),
            ),
        ));
        assert!(matches!(
            a.screen(),
            crate::panel::screens::Screen::SpecifyImage(_)
        ));
        assert!(screen(&mut a).contains("no image with ID 77777777 in the image store"));
    }
    use crate::panel::test_support::{keys, logged_in, screen, the_job};

    #[test]
    fn image_id_box_takes_eight_digits() {
        let mut a = logged_in();
        keys(&mut a, &[Key::Digit(6), Key::Digit(2), Key::Digit(2)]);
        keys(
            &mut a,
            &[Key::Digit(1), Key::Digit(2), Key::Digit(3), Key::Start],
        );
        assert!(screen(&mut a).contains("exactly 8 digits"));
        keys(
            &mut a,
            &[
                Key::Digit(4),
                Key::Digit(5),
                Key::Digit(6),
                Key::Digit(7),
                Key::Digit(8),
                Key::Digit(9),
            ],
        );
        a.key(Key::Start);
        match the_job(&mut a) {
            Job::UseImage(UseImage(id)) => assert_eq!(id.to_string(), "12345678"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_chosen_image_goes_where_it_was_wanted() {
        let id = ImageId::new(12_345_678).unwrap();
        let chosen = |purpose| match SpecifyImage::new(purpose).chosen(id) {
            Action::Run(job) => job,
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            chosen(Purpose::Distribute),
            Job::FetchGroups(FetchGroups {
                purpose: GroupsFor::Distribute(ImageSource::Stored(i)),
            }) if i == id
        ));
        assert!(matches!(chosen(Purpose::TakeOut), Job::TakeOut(TakeOut(i)) if i == id));
        assert!(matches!(chosen(Purpose::Process), Job::Process(Process(i)) if i == id));
        assert!(matches!(
            chosen(Purpose::Fax),
            Job::FetchFax(crate::panel::jobs::fax::FetchFax {
                source: crate::panel::jobs::fax::FaxSource::Stored(i),
            }) if i == id
        ));
    }

    #[test]
    fn fig11_at_80x24() {
        let mut a = logged_in();
        keys(
            &mut a,
            &[
                Key::Digit(6),
                Key::Digit(2),
                Key::Digit(2),
                Key::Digit(0),
                Key::Digit(6),
                Key::Digit(0),
                Key::Digit(6),
            ],
        );
        insta::assert_snapshot!("fig11_specify_image", screen(&mut a));
    }
}
