//! FIG. 7: mode selection.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::specify_image::{Purpose, SpecifyImage};
use super::{chrome, distribution_mode};
use crate::panel::app::{Action, Ctx};
use crate::panel::jobs::paper::Copy;
use crate::panel::keys::Key;
use crate::panel::menu::{Menu, MenuKey};
use crate::panel::screens::Screen;
use crate::panel::strings;

/// FIG. 7's state.
#[derive(Debug)]
pub struct ModeSelect {
    /// The six modes.
    pub menu: Menu,
    /// Reset was pressed once: the dialog asks before logging out.
    pub confirm_logout: bool,
    /// Copy was chosen: the dialog says what Start will do before the ADF is touched.
    pub confirm_copy: bool,
}

impl Default for ModeSelect {
    fn default() -> Self {
        Self::new()
    }
}

impl ModeSelect {
    /// The dialog, "Copy" highlighted.
    pub fn new() -> Self {
        let menu = Menu::new(strings::MODES.iter().map(|s| (*s).to_owned()).collect());
        // The fax modes are live: choosing one asks the server for its gateways, and says
        // so when it has none.
        Self {
            menu,
            confirm_logout: false,
            confirm_copy: false,
        }
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        // Reset asks first: a stray Esc must not log out and send the next digits to the
        // User ID box.
        if self.confirm_logout {
            self.confirm_logout = false;
            return match key {
                Key::Start | Key::Reset => Action::Logout,
                _ => Action::Note(strings::LOGOUT_KEPT.to_owned()),
            };
        }
        // Copy empties the ADF: the number (or Start on the highlight) only says what Start
        // will do; Start then does it.
        if self.confirm_copy {
            self.confirm_copy = false;
            return match key {
                Key::Start | Key::Pick(_) => Action::run(Copy),
                Key::Reset => Action::None,
                _ => Action::Note(strings::COPY_NOT_STARTED.to_owned()),
            };
        }
        let chosen = match key {
            Key::Pick(i) => Some(i),
            Key::Reset => {
                self.confirm_logout = true;
                return Action::None;
            }
            k => match self.menu.key(k) {
                MenuKey::Chosen(i) => Some(i),
                _ => None,
            },
        };
        match chosen {
            Some(0) => {
                self.confirm_copy = true;
                Action::None
            }
            Some(1) => Action::run(crate::panel::jobs::fax::FetchFax {
                source: crate::panel::jobs::fax::FaxSource::Adf,
            }),
            Some(3) => Action::Push(Screen::SpecifyImage(SpecifyImage::new(Purpose::Fax))),
            Some(2) => Action::Push(Screen::SpecifyImage(SpecifyImage::new(Purpose::TakeOut))),
            Some(4) => Action::Push(Screen::SpecifyImage(SpecifyImage::new(Purpose::Process))),
            Some(5) => Action::Push(Screen::DistributionMode(
                distribution_mode::DistributionMode::new(),
            )),
            _ => Action::None,
        }
    }

    /// Draws the dialog.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        if self.confirm_logout {
            let body = chrome(f, area, ctx, strings::LOGOUT_TITLE, strings::LOGOUT_HINT);
            f.render_widget(
                ratatui::widgets::Paragraph::new(strings::LOGOUT_QUESTION)
                    .wrap(ratatui::widgets::Wrap { trim: true }),
                body,
            );
            super::hit(ctx, body, Key::Start);
            return;
        }
        if self.confirm_copy {
            let body = chrome(f, area, ctx, strings::MODES[0], strings::COPY_HINT);
            f.render_widget(
                ratatui::widgets::Paragraph::new(strings::COPY_QUESTION)
                    .wrap(ratatui::widgets::Wrap { trim: true }),
                body,
            );
            super::hit(ctx, body, Key::Start);
            return;
        }
        super::menu_dialog(
            f,
            area,
            ctx,
            strings::MODE_TITLE,
            "Number key chooses. Reset: log out (asks first).",
            &mut self.menu,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::app::AppEvent;
    use crate::panel::jobs::server::FetchGroups;
    use crate::panel::jobs::{GroupsFor, Job, JobResult};
    use crate::panel::test_support::{logged_in, screen, the_job};

    #[test]
    fn mode_selection_routes_by_number_key_and_reset_logs_out() {
        let mut a = logged_in();
        assert!(matches!(a.screen(), Screen::ModeSelect(_)));
        a.key(Key::Digit(2));
        assert!(
            matches!(
                the_job(&mut a),
                Job::FetchFax(crate::panel::jobs::fax::FetchFax {
                    source: crate::panel::jobs::fax::FaxSource::Adf
                })
            ),
            "fax asks for the gateways and the phone book"
        );
        a.event(AppEvent::Job(JobResult::Failed {
            title: "Fax unavailable".into(),
            message: strings::NO_FAX_GATEWAY.into(),
        }));
        assert!(screen(&mut a).contains("No fax gateway on this image server"));
        a.key(Key::Start);
        a.key(Key::Digit(4));
        assert!(screen(&mut a).contains("Fax stored image: select the way"));
        a.key(Key::Reset);
        a.key(Key::Digit(1));
        assert!(a.take_jobs().is_empty(), "1 only says what Start will do");
        assert!(screen(&mut a).contains("Start copies"));
        a.key(Key::Start);
        assert!(matches!(the_job(&mut a), Job::Copy(_)));
        a.event(AppEvent::Job(JobResult::DoneHome {
            title: "Copy finished".into(),
            lines: vec![],
        }));
        a.key(Key::Start);
        a.key(Key::Digit(3));
        assert!(screen(&mut a).contains("Take out image: select the way"));
        a.key(Key::Reset);
        a.key(Key::Digit(6));
        assert!(matches!(a.screen(), Screen::DistributionMode(_)));
        a.key(Key::Digit(3));
        assert!(matches!(
            the_job(&mut a),
            Job::FetchGroups(FetchGroups {
                purpose: GroupsFor::Register,
            })
        ));
        a.event(AppEvent::Job(JobResult::Failed {
            title: "x".into(),
            message: "y".into(),
        }));
        a.key(Key::Start);
        a.key(Key::Reset);
        a.key(Key::Reset);
        assert!(matches!(a.screen(), Screen::ModeSelect(_)));
        assert!(
            screen(&mut a).contains("Log out?"),
            "Reset on FIG. 7 asks first"
        );
        a.key(Key::Start);
        assert!(
            matches!(a.screen(), Screen::Login(_)),
            "Start (or Reset again) logs out"
        );
        assert!(a.user.is_none());
        assert!(matches!(the_job(&mut a), Job::Logout));
    }

    #[test]
    fn reset_on_fig07_asks_before_logging_out() {
        let mut a = logged_in();
        a.key(Key::Reset);
        let s = screen(&mut a);
        assert!(a.user.is_some(), "not logged out yet");
        insta::assert_snapshot!("fig07_log_out", s);
        // Any other key keeps the session, says so, and does nothing else.
        a.key(Key::Digit(1));
        assert!(a.take_jobs().is_empty(), "the 1 did not start a copy");
        let s = screen(&mut a);
        assert!(s.contains("Select a mode"), "{s}");
        assert!(s.contains("Still logged in"), "{s}");
        // Reset twice logs out.
        a.key(Key::Reset);
        a.key(Key::Reset);
        assert!(matches!(a.screen(), Screen::Login(_)));
        assert!(a.user.is_none());
    }

    #[test]
    fn start_on_fig07_says_what_copy_will_do_before_doing_it() {
        let mut a = logged_in();
        // One Enter on the highlighted "Copy" does not empty the ADF.
        a.key(Key::Start);
        assert!(a.take_jobs().is_empty());
        insta::assert_snapshot!("fig07_copy_confirm", screen(&mut a));
        a.key(Key::Reset);
        assert!(a.take_jobs().is_empty());
        assert!(screen(&mut a).contains("Select a mode"));
        assert!(
            a.user.is_some(),
            "Reset leaves the question, not the session"
        );
        a.key(Key::Digit(1));
        a.key(Key::Start);
        assert!(matches!(the_job(&mut a), Job::Copy(_)));
    }

    #[test]
    fn fig07_at_80x24() {
        insta::assert_snapshot!("fig07_mode_selection", screen(&mut logged_in()));
    }
}
