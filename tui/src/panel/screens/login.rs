//! FIG. 6: user ID and password entry; Start logs in.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::chrome;
use crate::panel::app::{Action, Conn, Ctx};
use crate::panel::jobs::server::Login as LoginJob;
use crate::panel::keys::Key;
use crate::panel::strings;

/// Why the login dialog is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginPurpose {
    /// Starting a session.
    Session,
    /// Closing a kiosk: an administrator must log in.
    KioskQuit,
}

/// Which box has the cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The user ID box.
    User,
    /// The password box.
    Password,
}

/// FIG. 6's state.
#[derive(Debug)]
pub struct Login {
    /// Why the dialog is shown.
    pub purpose: LoginPurpose,
    /// Typed user ID.
    pub user: String,
    /// Typed password.
    pub password: String,
    /// The box with the cursor.
    pub focus: Field,
    /// The last refusal.
    pub error: Option<String>,
}

const MAX_LEN: usize = 32;

impl Login {
    /// An empty dialog.
    pub fn new(purpose: LoginPurpose) -> Self {
        Self {
            purpose,
            user: String::new(),
            password: String::new(),
            focus: Field::User,
            error: None,
        }
    }

    fn field(&mut self) -> &mut String {
        match self.focus {
            Field::User => &mut self.user,
            Field::Password => &mut self.password,
        }
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        match key {
            Key::Digit(d) => {
                // A prompt to type the ID goes once it is being typed.
                if self.focus == Field::User && self.user.is_empty() {
                    self.error = None;
                }
                let f = self.field();
                if f.len() < MAX_LEN {
                    f.push(char::from(b'0' + d));
                }
            }
            Key::Star | Key::Hash => {
                let c = if key == Key::Star { '*' } else { '#' };
                let f = self.field();
                if f.len() < MAX_LEN {
                    f.push(c);
                }
            }
            Key::Backspace => {
                self.field().pop();
            }
            Key::Tab | Key::BackTab | Key::Up | Key::Down => {
                self.focus = match self.focus {
                    Field::User => Field::Password,
                    Field::Password => Field::User,
                };
            }
            Key::Pick(0) => self.focus = Field::User,
            Key::Pick(1) => self.focus = Field::Password,
            Key::Start => {
                if self.user.is_empty() {
                    self.error = Some("Enter your user ID first.".into());
                    self.focus = Field::User;
                    return Action::None;
                }
                if self.focus == Field::User && self.password.is_empty() {
                    self.focus = Field::Password;
                    return Action::None;
                }
                self.error = None;
                return Action::run(LoginJob {
                    user: self.user.clone(),
                    password: self.password.clone(),
                    quit: self.purpose == LoginPurpose::KioskQuit,
                });
            }
            Key::Reset => {
                if self.purpose == LoginPurpose::KioskQuit {
                    return Action::Back;
                }
                *self = Self::new(self.purpose);
            }
            _ => {}
        }
        Action::None
    }

    /// Draws the dialog.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let title = match self.purpose {
            LoginPurpose::Session => strings::LOGIN_TITLE,
            LoginPurpose::KioskQuit => "Administrator login to close the panel",
        };
        let body = chrome(f, area, ctx, title, strings::LOGIN_HINT);
        let boxed = |label: &str, value: String, focused: bool| {
            let style = if focused {
                ctx.theme.focus()
            } else {
                ctx.theme.text()
            };
            let cursor = if focused { "_" } else { " " };
            Line::from(vec![
                Span::raw(format!("{label:<10}")),
                Span::styled(format!("[{value:<16}{cursor}]"), style),
            ])
        };
        let mut lines = vec![
            boxed(
                strings::USER_ID,
                self.user.clone(),
                self.focus == Field::User,
            ),
            Line::raw(""),
            boxed(
                strings::PASSWORD,
                "*".repeat(self.password.chars().count()),
                self.focus == Field::Password,
            ),
            Line::raw(""),
        ];
        if let Some(e) = &self.error {
            lines.push(Line::styled(
                super::peer_text(e).into_owned(),
                ctx.theme.error(),
            ));
        } else if let Conn::Connecting {
            last_error: Some(why),
            ..
        } = ctx.conn
        {
            lines.push(Line::styled(
                format!(
                    "Not connected to the image server: {}",
                    super::peer_text(why)
                ),
                ctx.theme.error(),
            ));
        } else if let Conn::Refused(why) = ctx.conn {
            lines.push(Line::styled(
                format!(
                    "The image server refused this terminal: {}",
                    super::peer_text(why)
                ),
                ctx.theme.error(),
            ));
        } else if ctx.demo && self.purpose == LoginPurpose::Session {
            lines.push(Line::styled(strings::DEMO_LOGIN, ctx.theme.ok()));
        }
        for (i, y) in [0u16, 2].iter().enumerate() {
            if *y < body.height {
                super::hit(
                    ctx,
                    Rect {
                        y: body.y + y,
                        height: 1,
                        ..body
                    },
                    Key::Pick(i),
                );
            }
        }
        // Messages wrap at spaces instead of running off the LCD's edge.
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::app::AppEvent;
    use crate::panel::jobs::{Job, JobResult};
    use crate::panel::test_support::{app, digits, keys, screen, the_job};

    #[test]
    fn login_types_with_ten_keys_and_starts_a_login_job() {
        let mut a = app(true, false);
        a.key(Key::Start);
        assert!(screen(&mut a).contains("Enter your user ID first."));
        keys(&mut a, &digits("1001"));
        a.key(Key::Start);
        // Start in the user box moves to the password box first.
        assert!(a.take_jobs().is_empty());
        keys(&mut a, &digits("1234"));
        a.key(Key::Start);
        match the_job(&mut a) {
            Job::Login(LoginJob {
                user,
                password,
                quit,
            }) => {
                assert_eq!(
                    (user.as_str(), password.as_str(), quit),
                    ("1001", "1234", false)
                );
            }
            other => panic!("{other:?}"),
        }
        a.event(AppEvent::Job(JobResult::LoginFailed(
            "wrong user ID or password".into(),
        )));
        let s = screen(&mut a);
        assert!(s.contains("wrong user ID or password"), "{s}");
        assert!(
            s.contains("Enter your user ID and password"),
            "stays on FIG. 6"
        );
    }

    #[test]
    fn the_prompt_to_type_the_user_id_goes_once_it_is_typed() {
        let mut a = app(true, false);
        a.key(Key::Start);
        assert!(screen(&mut a).contains("Enter your user ID first."));
        a.key(Key::Digit(1));
        assert!(!screen(&mut a).contains("Enter your user ID first."));
    }

    #[test]
    fn fig06_at_80x24() {
        let mut a = app(true, false);
        insta::assert_snapshot!("fig06_login", screen(&mut a));
        keys(&mut a, &digits("1001"));
        keys(&mut a, &[Key::Tab, Key::Digit(9)]);
        a.event(AppEvent::Job(JobResult::LoginFailed(
            "wrong user ID or password".into(),
        )));
        insta::assert_snapshot!("fig06_login_refused", screen(&mut a));
    }
}
