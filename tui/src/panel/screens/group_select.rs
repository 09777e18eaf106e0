//! FIG. 12: the groups from the server without "all distribution destinations", numbered from
//! 1; the number key picks one, Start registers this terminal with it (or withdraws from it).

use imagecast_shared::msg::GroupEntry;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::{chrome, hit_rows, peer_name};
use crate::panel::app::{Action, Ctx};
use crate::panel::jobs::server::{Register, Withdraw};
use crate::panel::keys::Key;
use crate::panel::menu::{Menu, MenuKey};
use crate::panel::strings;

/// Register or withdraw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Register with the group.
    Register,
    /// Withdraw from the group.
    Withdraw,
}

/// FIG. 12's state.
#[derive(Debug)]
pub struct GroupSelect {
    /// Register or withdraw.
    pub mode: Mode,
    /// The server's groups, without "all distribution destinations".
    pub groups: Vec<GroupEntry>,
    /// The numbered list.
    pub menu: Menu,
    /// The number picked, shown until Start.
    pub picked: Option<usize>,
}

impl GroupSelect {
    /// The dialog with nothing picked.
    pub fn new(mode: Mode, groups: Vec<GroupEntry>) -> Self {
        let menu = Menu::new(
            groups
                .iter()
                .map(|g| peer_name(&g.name).into_owned())
                .collect(),
        );
        Self {
            mode,
            groups,
            menu,
            picked: None,
        }
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        match key {
            Key::Reset => return Action::Back,
            Key::Start => {
                // Start acts only once the dialog shows what it will act on: a first Start
                // on the highlight picks it and shows "Start registers this terminal with:".
                let Some(i) = self.picked else {
                    if let Some(i) = self.menu.selected() {
                        self.picked = Some(i);
                        return Action::Note(strings::PICK_FIRST.to_owned());
                    }
                    return Action::None;
                };
                let group = self.groups[i].name.clone();
                return match self.mode {
                    Mode::Register => Action::run(Register { group }),
                    Mode::Withdraw => Action::run(Withdraw { group }),
                };
            }
            Key::Pick(i) if i < self.groups.len() => {
                self.menu.state.select(Some(i));
                self.picked = Some(i);
            }
            k => match self.menu.key(k) {
                MenuKey::Chosen(i) => self.picked = Some(i),
                MenuKey::Moved => self.picked = None,
                MenuKey::Ignored => {}
            },
        }
        Action::None
    }

    /// Draws the dialog.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let (title, verb) = match self.mode {
            Mode::Register => (
                strings::REGISTER_TITLE,
                "Start registers this terminal with:",
            ),
            Mode::Withdraw => (
                strings::WITHDRAW_TITLE,
                "Start withdraws this terminal from:",
            ),
        };
        let body = chrome(
            f,
            area,
            ctx,
            title,
            "Number picks, Start confirms, Reset goes back.",
        );
        if self.groups.is_empty() {
            let text = match self.mode {
                Mode::Register => "The server has no group besides all destinations.",
                Mode::Withdraw => {
                    "This terminal is in no group, so there is nothing to withdraw from. \
                     Reset goes back."
                }
            };
            f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), body);
            return;
        }
        let list_h = body.height.saturating_sub(3);
        let list_area = Rect {
            height: list_h,
            ..body
        };
        hit_rows(ctx, list_area, self.menu.state.offset(), self.groups.len());
        self.menu.draw(f, list_area, &ctx.theme);
        if let Some(i) = self.picked {
            let lines = vec![
                Line::raw(verb),
                Line::styled(
                    format!("  {}", peer_name(&self.groups[i].name)),
                    ctx.theme.title(),
                ),
            ];
            let y = body.y + list_h + 1;
            let area = Rect {
                y,
                height: (body.y + body.height).saturating_sub(y).min(2),
                ..body
            };
            f.render_widget(Paragraph::new(lines), area);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::panel::app::AppEvent;
    use crate::panel::jobs::{GroupsFor, JobResult};
    use crate::panel::keys::Key;
    use crate::panel::test_support::{logged_in, screen, seed_groups};

    #[test]
    fn start_with_nothing_picked_shows_what_it_will_do_first() {
        let mut a = logged_in();
        a.event(AppEvent::Job(JobResult::Groups {
            purpose: GroupsFor::Register,
            groups: seed_groups()[1..].to_vec(),
        }));
        a.key(Key::Start);
        assert!(
            a.take_jobs().is_empty(),
            "the first Start registers nothing"
        );
        let s = screen(&mut a);
        assert!(s.contains("Start registers this terminal with:"), "{s}");
        assert!(
            s.contains("Check the group below, then press Start again."),
            "{s}"
        );
        a.key(Key::Start);
        assert!(matches!(
            crate::panel::test_support::the_job(&mut a),
            crate::panel::jobs::Job::Register(r) if r.group == "all sales offices"
        ));
    }

    #[test]
    fn ok_after_already_registered_returns_to_the_list() {
        let mut a = logged_in();
        a.event(AppEvent::Job(JobResult::Groups {
            purpose: GroupsFor::Register,
            groups: seed_groups()[1..].to_vec(),
        }));
        a.key(Key::Digit(3));
        a.key(Key::Start);
        let _ = a.take_jobs();
        a.event(AppEvent::Job(JobResult::Told {
            title: "Already registered".into(),
            lines: vec!["nothing changed".into()],
        }));
        assert!(screen(&mut a).contains("Already registered"));
        a.key(Key::Start);
        assert!(matches!(
            a.screen(),
            crate::panel::screens::Screen::GroupSelect(_)
        ));
    }

    #[test]
    fn withdrawing_with_no_membership_says_so() {
        let mut a = logged_in();
        a.event(AppEvent::Job(JobResult::Groups {
            purpose: GroupsFor::Withdraw,
            groups: Vec::new(),
        }));
        let s = screen(&mut a);
        assert!(s.contains("This terminal is in no group"), "{s}");
        a.key(Key::Start);
        assert!(a.take_jobs().is_empty(), "Start withdraws from nothing");
        a.key(Key::Reset);
        assert!(!matches!(
            a.screen(),
            crate::panel::screens::Screen::GroupSelect(_)
        ));
    }

    #[test]
    fn fig12_at_80x24() {
        let mut a = logged_in();
        a.event(AppEvent::Job(JobResult::Groups {
            purpose: GroupsFor::Register,
            groups: seed_groups()[1..].to_vec(),
        }));
        a.key(Key::Digit(3));
        insta::assert_snapshot!("fig12_register_with_group", screen(&mut a));
    }
}
