//! After Start: pages scanned, then each destination's state as results come back, then the
//! summary the operator dismisses. Delivery goes on after the view is dismissed.

use imagecast_shared::DistributionId;
use imagecast_shared::client::Event;
use imagecast_shared::msg::{Accepted, DeliveryState, DestinationStatus};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph};

use super::{chrome, peer_name, peer_text};
use crate::panel::app::{Action, Ctx};
use crate::panel::keys::Key;
use crate::panel::strings;
use crate::store::ImageId;

/// Where the distribution stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading the ADF (or the store).
    Scanning,
    /// Sending to the server.
    Uploading,
    /// Accepted; results coming in.
    Delivering,
    /// Every destination is done.
    Done,
    /// Not accepted.
    Failed(String),
    /// Stopped by the operator before the server accepted it: nothing was sent.
    Stopped,
}

/// The progress view's state.
#[derive(Debug)]
pub struct Progress {
    /// Where it stands.
    pub phase: Phase,
    /// Files scanned.
    pub files: usize,
    /// Pages in them (a multi-page TIFF counts all its pages).
    pub pages: usize,
    /// The files' size in bytes.
    pub bytes: u64,
    /// Files refused by the scanner.
    pub refused: Vec<String>,
    /// The image ID if a copy was kept (mark sheet printed).
    pub kept: Option<ImageId>,
    /// The distribution, once accepted.
    pub dist: Option<DistributionId>,
    /// Each destination's state.
    pub rows: Vec<DestinationStatus>,
    /// Scroll position.
    pub list: ListState,
    /// The pages come from the ADF (not the image store): a stop hands them back there.
    pub from_adf: bool,
    /// The fewest destinations the ticks stand for (the largest ticked group, or the
    /// individuals ticked): fewer accepted means the server skipped this terminal.
    pub at_least: usize,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// The view as Start opens it: scanning.
    pub fn new() -> Self {
        Self {
            phase: Phase::Scanning,
            files: 0,
            pages: 0,
            bytes: 0,
            refused: Vec::new(),
            kept: None,
            dist: None,
            rows: Vec::new(),
            list: ListState::default(),
            from_adf: true,
            at_least: 0,
        }
    }

    /// The scan is done; sending begins.
    pub fn scanned(
        &mut self,
        files: usize,
        pages: usize,
        bytes: u64,
        refused: Vec<String>,
        kept: Option<ImageId>,
    ) {
        if self.phase == Phase::Stopped {
            return;
        }
        self.files = files;
        self.pages = pages;
        self.bytes = bytes;
        self.refused = refused;
        self.kept = kept;
        self.phase = Phase::Uploading;
    }

    /// The server accepted it.
    pub fn accepted(&mut self, a: &Accepted) {
        if self.dist.is_some() {
            return;
        }
        self.dist = Some(a.dist);
        // Results may have arrived before the job's answer: keep them.
        let mut rows: Vec<DestinationStatus> = a
            .destinations
            .iter()
            .map(|d| DestinationStatus {
                destination: d.clone(),
                state: DeliveryState::Queued,
            })
            .collect();
        for early in self.rows.drain(..) {
            if let Some(r) = rows
                .iter_mut()
                .find(|r| r.destination.domain == early.destination.domain)
            {
                r.state = early.state;
            }
        }
        self.rows = rows;
        self.phase = if self.rows.iter().all(|r| r.state.is_final()) {
            Phase::Done
        } else {
            Phase::Delivering
        };
    }

    /// Not accepted.
    pub fn failed(&mut self, msg: String) {
        self.phase = Phase::Failed(msg);
    }

    /// True while Stop still cancels it: scanning or sending, not yet accepted.
    pub fn stoppable(&self) -> bool {
        matches!(self.phase, Phase::Scanning | Phase::Uploading)
    }

    /// The operator stopped it before the server accepted it.
    pub fn stopped(&mut self) {
        if self.stoppable() {
            self.phase = Phase::Stopped;
        }
    }

    /// A progress event from the server.
    pub fn server_event(&mut self, ev: &Event) {
        match ev {
            Event::Progress { dist, status } if self.dist.is_none_or(|d| d == *dist) => {
                match self
                    .rows
                    .iter_mut()
                    .find(|r| r.destination.domain == status.destination.domain)
                {
                    Some(r) => {
                        if !r.state.is_final() {
                            r.state = status.state.clone();
                        }
                    }
                    None => self.rows.push(status.clone()),
                }
                if self.dist.is_some() && self.rows.iter().all(|r| r.state.is_final()) {
                    self.phase = Phase::Done;
                }
            }
            Event::Done { dist, results } if self.dist == Some(*dist) => {
                self.rows = results.clone();
                self.phase = Phase::Done;
            }
            _ => {}
        }
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        match key {
            Key::Up => self.list.select_previous(),
            Key::Down => self.list.select_next(),
            Key::Start | Key::Reset | Key::Pick(_) => match self.phase {
                Phase::Scanning | Phase::Uploading => {
                    return Action::Note(strings::WAIT_OR_STOP.to_owned());
                }
                Phase::Failed(_) | Phase::Stopped => return Action::Back,
                Phase::Delivering | Phase::Done => return Action::Home,
            },
            _ => {}
        }
        Action::None
    }

    fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for r in &self.rows {
            match r.state {
                DeliveryState::Printed => c.0 += 1,
                DeliveryState::Delivered => c.1 += 1,
                DeliveryState::Failed(_) => c.2 += 1,
                _ => c.3 += 1,
            }
        }
        c
    }

    /// Draws the view.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let (status, hint) = match &self.phase {
            Phase::Scanning => ("scanning", "Stop (x) cancels."),
            Phase::Uploading => ("sending to the image server", "Stop (x) cancels."),
            Phase::Delivering => ("accepted, delivering", "Start: OK (delivery goes on)."),
            Phase::Done => ("finished", "Start: OK."),
            Phase::Failed(_) => ("not sent", "Start: OK."),
            Phase::Stopped => ("stopped", "Start: OK (back to the destinations)."),
        };
        let body = chrome(
            f,
            area,
            ctx,
            &format!("{}: {status}", strings::PROGRESS_TITLE),
            hint,
        );
        let mut head = Vec::new();
        if self.files > 0 {
            // A stored image was not scanned: its lines say where it came from.
            let what = match (self.from_adf, self.kept) {
                (false, Some(id)) => format!("Stored image {id}:"),
                _ => "Scanned".to_owned(),
            };
            head.push(Line::raw(format!(
                "{what} {} page(s) in {} file(s), {}",
                self.pages,
                self.files,
                human_bytes(self.bytes)
            )));
        }
        for r in &self.refused {
            head.push(Line::styled(peer_text(r).into_owned(), ctx.theme.error()));
        }
        if let (true, Some(id)) = (self.from_adf, self.kept) {
            head.push(Line::raw(format!(
                "Kept as image {id} (mark sheet in the output tray)"
            )));
        }
        match &self.phase {
            Phase::Failed(msg) => {
                head.push(Line::styled(peer_text(msg).into_owned(), ctx.theme.error()))
            }
            Phase::Stopped => head.push(Line::styled(
                if self.from_adf {
                    strings::STOPPED_ADF
                } else {
                    strings::STOPPED_STORED
                },
                ctx.theme.error(),
            )),
            Phase::Done | Phase::Delivering => {
                let (printed, delivered, failed, waiting) = self.counts();
                let skipped = if self.rows.len() < self.at_least {
                    " (this terminal skipped)"
                } else {
                    ""
                };
                let mut s = format!(
                    "{} destination(s){skipped}: {printed} printed, {delivered} delivered, {failed} failed",
                    self.rows.len()
                );
                if waiting > 0 {
                    s.push_str(&format!(
                        ", {waiting} waiting (offline ones get it when they connect)"
                    ));
                }
                head.push(Line::styled(
                    s,
                    if failed > 0 {
                        ctx.theme.error()
                    } else {
                        ctx.theme.ok()
                    },
                ));
            }
            _ => {}
        }
        // Long lines wrap at spaces: a count at the end of the summary is never lost.
        let head: Vec<Line> = head
            .into_iter()
            .flat_map(|l| {
                let style = l.style;
                let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
                super::wrap(&text, body.width as usize)
                    .into_iter()
                    .map(move |t| Line::styled(t, style))
            })
            .collect();
        let head_h = (head.len() as u16).min(body.height);
        f.render_widget(
            Paragraph::new(head),
            Rect {
                height: head_h,
                ..body
            },
        );
        let rows_area = Rect {
            y: body.y + head_h,
            height: body.height - head_h,
            ..body
        };
        let items: Vec<ListItem> = self
            .rows
            .iter()
            .map(|r| {
                let (word, style, why) = match &r.state {
                    DeliveryState::Queued => ("queued   ", ctx.theme.dim(), None),
                    DeliveryState::Sending => ("sending  ", ctx.theme.text(), None),
                    DeliveryState::Delivered => ("delivered", ctx.theme.ok(), None),
                    DeliveryState::Printed => ("printed  ", ctx.theme.ok(), None),
                    DeliveryState::Failed(why) => ("failed   ", ctx.theme.error(), Some(why)),
                };
                let mut lines = vec![Line::from(vec![
                    Span::styled(word, style),
                    Span::raw(format!(" {}", peer_name(&r.destination.name))),
                ])];
                if let Some(why) = why {
                    lines.push(Line::styled(
                        format!("          {}", peer_text(why)),
                        ctx.theme.error(),
                    ));
                }
                ListItem::new(lines)
            })
            .collect();
        f.render_stateful_widget(List::new(items), rows_area, &mut self.list);
        super::hit(ctx, area, Key::Start);
    }
}

/// Bytes as a person reads them.
pub fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 10 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::app::{App, AppEvent};
    use crate::panel::jobs::JobResult;
    use crate::panel::test_support::{dest, fig09, screen};

    /// FIG. 9 after `ticks`, and Start: the progress view, scanning.
    fn started(ticks: &[Key]) -> App {
        let mut a = fig09(ticks);
        a.key(Key::Start);
        let _ = a.take_jobs();
        a
    }

    #[test]
    fn results_arriving_before_acceptance_are_kept() {
        let mut a = started(&[Key::Digit(4)]);
        let dist = DistributionId::new_random();
        a.event(AppEvent::Server(Event::Progress {
            dist,
            status: DestinationStatus {
                destination: dest("devl1.hqs.mei.co.jp", "dev"),
                state: DeliveryState::Printed,
            },
        }));
        a.event(AppEvent::Job(JobResult::Accepted(Accepted {
            dist,
            destinations: vec![dest("devl1.hqs.mei.co.jp", "dev")],
            duplicate: false,
        })));
        let s = screen(&mut a);
        assert!(s.contains("Distribution: finished"), "{s}");
        assert!(s.contains("1 destination(s): 1 printed"), "{s}");
    }

    #[test]
    fn stop_while_scanning_or_sending_ends_on_a_result_screen() {
        for scanned in [false, true] {
            let mut a = started(&[Key::Digit(2)]);
            if scanned {
                a.event(AppEvent::Job(JobResult::Scanned {
                    files: 1,
                    pages: 1,
                    bytes: 100,
                    refused: Vec::new(),
                    kept: None,
                }));
            }
            a.key(Key::Stop);
            assert!(matches!(
                a.take_jobs().as_slice(),
                [crate::panel::jobs::Job::Cancel]
            ));
            a.event(AppEvent::Job(JobResult::Cancelled));
            let s = screen(&mut a);
            assert!(s.contains("Distribution: stopped"), "{s}");
            assert!(
                s.contains("Stopped: nothing sent; the originals are back in the ADF."),
                "{s}"
            );
            assert!(!s.contains("Stop (x) cancels."), "{s}");
            if !scanned {
                insta::assert_snapshot!("progress_stopped", s);
            }
            // Start (or Reset) leaves it, back to FIG. 9 with the ticks kept.
            a.key(if scanned { Key::Reset } else { Key::Start });
            assert!(
                matches!(a.screen(), crate::panel::screens::Screen::Destinations(_)),
                "{}",
                screen(&mut a)
            );
            assert!(a.busy.is_none());
        }
    }

    #[test]
    fn keys_that_cannot_act_while_sending_say_why() {
        let mut a = started(&[Key::Digit(2)]);
        a.key(Key::Reset);
        assert!(matches!(
            a.screen(),
            crate::panel::screens::Screen::Progress(_)
        ));
        assert!(screen(&mut a).contains("Sending: wait for the result, or press Stop (x)"));
        a.event(AppEvent::Job(JobResult::Accepted(Accepted {
            dist: DistributionId::new_random(),
            destinations: vec![dest("sale1.osk.mei.co.jp", "Osaka")],
            duplicate: false,
        })));
        a.key(Key::Stop);
        assert!(a.take_jobs().is_empty());
        assert!(
            screen(&mut a).contains("Accepted by the server: delivery continues; it can't be"),
            "{}",
            screen(&mut a)
        );
        a.key(Key::Start);
        a.key(Key::Stop);
        assert!(screen(&mut a).contains("Nothing to stop."));
    }

    #[test]
    fn a_stored_image_sent_again_is_not_called_a_scan() {
        let id = ImageId::new(20_261_121).unwrap();
        let mut a = crate::panel::test_support::logged_in();
        a.event(AppEvent::Job(JobResult::Groups {
            purpose: crate::panel::jobs::GroupsFor::Distribute(
                crate::panel::jobs::ImageSource::Stored(id),
            ),
            groups: crate::panel::test_support::seed_groups(),
        }));
        let s = screen(&mut a);
        assert!(!s.contains("* keep"), "no `*` for a stored image: {s}");
        a.key(Key::Digit(2));
        a.key(Key::Start);
        let _ = a.take_jobs();
        a.event(AppEvent::Job(JobResult::Scanned {
            files: 3,
            pages: 4,
            bytes: 85_000,
            refused: Vec::new(),
            kept: Some(id),
        }));
        let s = screen(&mut a);
        assert!(
            s.contains("Stored image 20261121: 4 page(s) in 3 file(s)"),
            "{s}"
        );
        assert!(!s.contains("Scanned"), "{s}");
        assert!(!s.contains("mark sheet in the output tray"), "{s}");
    }

    #[test]
    fn a_group_holding_this_terminal_says_it_was_skipped() {
        // "all sales-related places (6)" holds this terminal: five are sent to.
        let mut a = started(&[Key::Digit(3)]);
        let dests: Vec<_> = (0..5)
            .map(|i| dest(&format!("t{i}.example"), &format!("terminal {i}")))
            .collect();
        a.event(AppEvent::Job(JobResult::Accepted(Accepted {
            dist: DistributionId::new_random(),
            destinations: dests,
            duplicate: false,
        })));
        let s = screen(&mut a);
        assert!(
            s.contains("5 destination(s) (this terminal skipped):"),
            "{s}"
        );
    }

    fn progress_app(done: bool) -> App {
        let mut a = started(&[Key::Digit(2), Key::Digit(4), Key::Star]);
        a.event(AppEvent::Job(JobResult::Scanned {
            files: 3,
            pages: 4,
            bytes: 85_000,
            refused: vec!["Refused notes.txt: not an image".into()],
            kept: ImageId::new(20_261_121),
        }));
        let dist = DistributionId::new_random();
        let dests = vec![
            dest("sale1.osk.mei.co.jp", "sales office, the Osaka branch"),
            dest("sale1.ngy.mei.co.jp", "sales office, the Nagoya branch"),
            dest("sale1.fko.mei.co.jp", "sales office, the Fukuoka branch"),
            dest(
                "devl1.hqs.mei.co.jp",
                "development department of the head office",
            ),
        ];
        a.event(AppEvent::Job(JobResult::Accepted(Accepted {
            dist,
            destinations: dests.clone(),
            duplicate: false,
        })));
        let states = [
            DeliveryState::Printed,
            DeliveryState::Sending,
            DeliveryState::Failed("the terminal refused it: disk full".into()),
            DeliveryState::Queued,
        ];
        for (d, s) in dests.iter().zip(states) {
            a.event(AppEvent::Server(Event::Progress {
                dist,
                status: DestinationStatus {
                    destination: d.clone(),
                    state: s,
                },
            }));
        }
        if done {
            let results = dests
                .iter()
                .zip([
                    DeliveryState::Printed,
                    DeliveryState::Printed,
                    DeliveryState::Failed("the terminal refused it: disk full".into()),
                    DeliveryState::Delivered,
                ])
                .map(|(d, s)| DestinationStatus {
                    destination: d.clone(),
                    state: s,
                })
                .collect();
            a.event(AppEvent::Server(Event::Done { dist, results }));
        }
        a
    }

    #[test]
    fn progress_at_80x24() {
        insta::assert_snapshot!("progress_delivering", screen(&mut progress_app(false)));
        insta::assert_snapshot!("progress_summary", screen(&mut progress_app(true)));
    }
}
