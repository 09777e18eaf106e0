//! A connection demand from another terminal (seed 004, process (7)): a dialog over whatever
//! screen is up, "Connection demand from NAME (user U): Start accepts, Reset rejects (27 s)",
//! counting down. It is not on the dialog stack: when it goes (answered, withdrawn, or
//! expired) the screen beneath is as it was.

use std::time::{Duration, Instant};

use imagecast_shared::client::IncomingDemand;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::{peer_name, wrap};
use crate::panel::app::Ctx;
use crate::panel::jobs::relay::AnswerDemand;
use crate::panel::keys::Key;

/// A demand waiting for the operator's answer.
#[derive(Debug)]
pub struct DemandDialog {
    /// The demand as the server sent it.
    pub demand: IncomingDemand,
    /// When the server gives up on it.
    pub until: Instant,
}

/// What a key did to the dialog.
#[derive(Debug)]
pub enum DemandKey {
    /// Answer it (the dialog goes).
    Answer(AnswerDemand),
    /// Not a key the dialog takes: say which are.
    Ignored,
}

impl DemandDialog {
    /// The dialog for `demand`, which expires after its `expires` from now.
    pub fn new(demand: IncomingDemand) -> Self {
        // A little before the server's expiry, so an answer is never too late.
        let until = Instant::now() + demand.expires.saturating_sub(Duration::from_millis(500));
        Self { demand, until }
    }

    /// Whole seconds left, rounded up.
    pub fn seconds_left(&self, now: Instant) -> u64 {
        let left = self.until.saturating_duration_since(now);
        left.as_millis().div_ceil(1000) as u64
    }

    /// True once the time is up (the server expires the demand).
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.until
    }

    /// The words of the dialog, the countdown as of `now`.
    pub fn text(&self, now: Instant) -> String {
        let d = &self.demand;
        let who = if d.user.is_empty() {
            peer_name(&d.from.name).into_owned()
        } else {
            format!("{} (user {})", peer_name(&d.from.name), peer_name(&d.user))
        };
        format!(
            "Connection demand from {who}: Start accepts, Reset rejects ({} s)",
            self.seconds_left(now)
        )
    }

    /// Start accepts, Reset rejects; other keys wait.
    pub fn key(&self, key: Key) -> DemandKey {
        let accept = match key {
            Key::Start => true,
            Key::Reset => false,
            _ => return DemandKey::Ignored,
        };
        DemandKey::Answer(AnswerDemand {
            demand: self.demand.demand,
            accept,
            from: self.demand.from.clone(),
        })
    }

    /// Draws the dialog over the middle of `area` (the LCD).
    pub fn draw(&self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let width = area.width.saturating_sub(4).clamp(10, 70);
        let text = self.text(Instant::now());
        let lines: Vec<Line> = wrap(&text, width.saturating_sub(2) as usize)
            .into_iter()
            .map(Line::from)
            .chain([
                Line::from(""),
                Line::styled(
                    format!("from {}", peer_name(&self.demand.from.domain)),
                    ctx.theme.dim(),
                ),
            ])
            .collect();
        let height = (lines.len() as u16 + 2).min(area.height);
        let rect = Rect {
            x: area.x + (area.width.saturating_sub(width)) / 2,
            y: area.y + (area.height.saturating_sub(height)) / 2,
            width: width.min(area.width),
            height,
        };
        f.render_widget(Clear, rect);
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .style(ctx.theme.text())
                .block(
                    Block::default()
                        .borders(Borders::ALL)
                        .title(" Real-time connection ")
                        .border_style(ctx.theme.focus()),
                ),
            rect,
        );
    }
}

#[cfg(test)]
mod tests {
    use imagecast_shared::client::Event;
    use imagecast_shared::msg::Destination;

    use super::*;
    use crate::panel::app::AppEvent;
    use crate::panel::jobs::Job;
    use crate::panel::screens::Screen;
    use crate::panel::test_support::{keys, logged_in, screen};

    pub(crate) fn demand(expires: Duration) -> IncomingDemand {
        IncomingDemand {
            demand: 7,
            from: Destination {
                domain: "sale1.osk.mei.co.jp".into(),
                name: "Osaka sales".into(),
            },
            user: "1002".into(),
            expires,
        }
    }

    #[test]
    fn a_demand_interrupts_any_screen_and_start_accepts() {
        let mut a = logged_in();
        keys(&mut a, &[Key::Digit(6)]);
        let beneath = screen(&mut a);
        a.event(AppEvent::Server(Event::Demanded(demand(
            Duration::from_millis(27_500),
        ))));
        let s = screen(&mut a);
        assert!(
            s.contains("Connection demand from Osaka sales (user 1002):")
                && s.contains("Start accepts, Reset rejects (27 s)"),
            "{s}"
        );
        insta::assert_snapshot!("demand_dialog", s);
        // Other keys do not reach the screen beneath.
        a.key(Key::Digit(1));
        assert!(a.take_jobs().is_empty());
        assert!(matches!(a.screen(), Screen::DistributionMode(_)));
        a.key(Key::Start);
        let jobs = a.take_jobs();
        assert!(
            matches!(jobs.as_slice(), [Job::AnswerDemand(j)] if j.accept && j.demand == 7),
            "{jobs:?}"
        );
        assert!(a.demand.is_none());
        let after = screen(&mut a);
        let lcd = |s: &str| s.lines().take(23).collect::<Vec<_>>().join("\n");
        assert_eq!(
            lcd(&after),
            lcd(&beneath),
            "the screen beneath is unchanged"
        );
    }

    #[test]
    fn reset_rejects_even_while_a_job_runs() {
        let mut a = logged_in();
        keys(&mut a, &[Key::Digit(6), Key::Digit(1)]);
        let _ = a.take_jobs();
        assert!(a.busy.is_some(), "the groups are loading");
        a.event(AppEvent::Server(Event::Demanded(demand(
            Duration::from_secs(30),
        ))));
        a.key(Key::Reset);
        let jobs = a.take_jobs();
        assert!(
            matches!(jobs.as_slice(), [Job::AnswerDemand(j)] if !j.accept),
            "{jobs:?}"
        );
        assert!(a.busy.is_some(), "the job in flight goes on");
    }

    #[test]
    fn the_countdown_runs_out_and_the_screen_beneath_comes_back() {
        let mut a = logged_in();
        keys(&mut a, &[Key::Digit(6)]);
        let beneath = screen(&mut a);
        a.event(AppEvent::Server(Event::Demanded(demand(
            Duration::from_millis(27_500),
        ))));
        let d = a.demand.as_ref().unwrap();
        let now = Instant::now();
        assert_eq!(d.seconds_left(now), 27);
        assert!(d.text(now + Duration::from_secs(10)).ends_with("(17 s)"));
        assert!(!d.expired(now));
        assert!(d.expired(now + Duration::from_secs(28)));
        // Withdrawn by the server (it expired there): gone, and said so.
        a.event(AppEvent::Server(Event::DemandWithdrawn {
            demand: 7,
            reason: "nobody answered within 30 s".into(),
        }));
        assert!(a.demand.is_none());
        let s = screen(&mut a);
        assert!(s.contains("nobody answered"), "{s}");
        assert_eq!(
            s.lines().take(20).collect::<Vec<_>>(),
            beneath.lines().take(20).collect::<Vec<_>>()
        );
        // A dialog whose time ran out goes on the next tick.
        let mut b = logged_in();
        b.event(AppEvent::Server(Event::Demanded(demand(Duration::ZERO))));
        b.tick();
        assert!(b.demand.is_none());
        assert!(
            b.take_jobs().is_empty(),
            "an expired demand is not answered"
        );
    }
}
