//! FIG. 8's fifth mode, first step: the terminals online, numbered; a number key picks one
//! and Start scans the ADF and sends it there in real time.

use imagecast_shared::msg::Presence;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::Paragraph;

use super::peer_name;
use crate::panel::app::{Action, Ctx};
use crate::panel::jobs::relay::RealTimeSend;
use crate::panel::keys::Key;
use crate::panel::menu::Menu;
use crate::panel::strings;

/// The list of terminals online.
#[derive(Debug)]
pub struct Terminals {
    /// The terminals, in the server's (domain) order, this one left out.
    pub list: Vec<Presence>,
    /// The numbered list drawn.
    pub menu: Menu,
}

/// One entry: name, whether it can take a session now, domain, users.
fn describe(p: &Presence) -> String {
    let users = if p.users.is_empty() {
        String::new()
    } else {
        format!(
            " user {}",
            p.users
                .iter()
                .map(|u| peer_name(u).into_owned())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let state = if p.older {
        "older imagecast"
    } else if p.in_session {
        "in-session"
    } else if p.takes_demands {
        "idle"
    } else {
        "takes no demands"
    };
    format!(
        "{} ({state}) {}{users}",
        peer_name(&p.name),
        peer_name(&p.domain)
    )
}

impl Terminals {
    /// The list, the first highlighted.
    pub fn new(list: Vec<Presence>) -> Self {
        let menu = Menu::new(list.iter().map(describe).collect());
        Self { list, menu }
    }

    /// Handles a key: a number or the arrows pick, Start sends, Reset goes back.
    pub fn key(&mut self, key: Key) -> Action {
        match key {
            Key::Reset => Action::Back,
            Key::Pick(i) if i < self.list.len() => {
                self.menu.state.select(Some(i));
                Action::None
            }
            Key::Start => match self.menu.selected().and_then(|i| self.list.get(i)) {
                Some(p) => Action::run(RealTimeSend {
                    domain: p.domain.clone(),
                    name: p.name.clone(),
                }),
                None => Action::Note(strings::NO_TERMINALS.to_owned()),
            },
            k @ (Key::Digit(_) | Key::Up | Key::Down | Key::PageUp | Key::PageDown) => {
                // A number only picks: Start sends.
                let _ = self.menu.key(k);
                Action::None
            }
            _ => Action::None,
        }
    }

    /// Draws the list.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        if self.list.is_empty() {
            let body = super::chrome(f, area, ctx, strings::TERMINALS_TITLE, "Reset goes back.");
            f.render_widget(Paragraph::new(strings::NO_TERMINALS), body);
            return;
        }
        super::menu_dialog(
            f,
            area,
            ctx,
            strings::TERMINALS_TITLE,
            "Number picks; Start scans the ADF and sends; Reset back.",
            &mut self.menu,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::app::AppEvent;
    use crate::panel::jobs::{Job, JobResult};
    use crate::panel::screens::Screen;
    use crate::panel::test_support::{keys, logged_in, screen, the_job};

    pub(crate) fn online() -> Vec<Presence> {
        vec![
            Presence {
                domain: "sale1.osk.mei.co.jp".into(),
                name: "Osaka sales".into(),
                users: vec!["1002".into()],
                in_session: false,
                takes_demands: true,
                older: false,
            },
            Presence {
                domain: "sale1.ngy.mei.co.jp".into(),
                name: "Nagoya sales".into(),
                users: vec![],
                in_session: true,
                takes_demands: true,
                older: false,
            },
        ]
    }

    #[test]
    fn fifth_mode_lists_the_terminals_online_and_start_sends() {
        let mut a = logged_in();
        keys(&mut a, &[Key::Digit(6), Key::Digit(5)]);
        assert!(matches!(the_job(&mut a), Job::FetchTerminals(_)));
        let mut list = online();
        // The panel itself is left out.
        list.push(Presence {
            domain: a.info.device.clone(),
            name: "me".into(),
            users: vec![],
            in_session: false,
            takes_demands: true,
            older: false,
        });
        a.event(AppEvent::Job(JobResult::Terminals(list)));
        insta::assert_snapshot!("terminals_online", screen(&mut a));
        assert!(!screen(&mut a).contains("me ("));
        // 2 picks Nagoya; Start sends there.
        keys(&mut a, &[Key::Digit(2), Key::Start]);
        let Job::RealTimeSend(job) = the_job(&mut a) else {
            panic!("a real-time send")
        };
        assert_eq!(job.domain, "sale1.ngy.mei.co.jp");
        assert!(matches!(a.screen(), Screen::RealTime(_)));
    }

    #[test]
    fn nobody_online_says_so_and_reset_goes_back() {
        let mut a = logged_in();
        keys(&mut a, &[Key::Digit(6), Key::Digit(5)]);
        let _ = a.take_jobs();
        a.event(AppEvent::Job(JobResult::Terminals(Vec::new())));
        let s = screen(&mut a);
        assert!(s.contains(strings::NO_TERMINALS), "{s}");
        a.key(Key::Start);
        assert!(a.take_jobs().is_empty());
        a.key(Key::Reset);
        assert!(matches!(a.screen(), Screen::DistributionMode(_)));
    }
}
