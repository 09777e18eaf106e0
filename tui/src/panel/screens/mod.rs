//! The dialogs of FIG. 6–12 and the panel's own views, one module each, behind the closed
//! [`Screen`] enum. A screen handles keys by returning an [`Action`]; it never reaches into the
//! app.
//!
//! Text from the server or another terminal (group and destination names, senders, user IDs,
//! reasons, messages) is drawn through [`peer_name`] or [`peer_text`]: control characters and
//! bidirectional overrides escaped, the length bounded. Ratatui drops control characters but
//! passes overrides such as U+202E, which would reorder what the operator reads.

pub mod demand;
pub mod destinations;
pub mod distribution_mode;
pub mod fax_dest;
pub mod fax_progress;
pub mod fax_records;
pub mod group_select;
pub mod help;
pub mod individual;
pub mod login;
pub mod message;
pub mod mode_select;
pub mod preview;
pub mod progress;
pub mod realtime;
pub mod received;
pub mod specify_image;
pub mod stored;
pub mod terminals;

use std::borrow::Cow;

use imagecast_shared::text::escape_bounded;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{List, ListItem, ListState, Paragraph};

use super::app::{Action, Ctx, Returned};
use super::keys::Key;

/// Every dialog of the panel.
#[derive(Debug)]
pub enum Screen {
    /// FIG. 6.
    Login(login::Login),
    /// FIG. 7.
    ModeSelect(mode_select::ModeSelect),
    /// FIG. 8.
    DistributionMode(distribution_mode::DistributionMode),
    /// FIG. 9.
    Destinations(destinations::Destinations),
    /// FIG. 10.
    Individual(individual::Individual),
    /// FIG. 11.
    SpecifyImage(specify_image::SpecifyImage),
    /// FIG. 12.
    GroupSelect(group_select::GroupSelect),
    /// Pages scanned and per-destination states, then the summary.
    Progress(progress::Progress),
    /// A message to acknowledge.
    Message(message::Message),
    /// The image store (FIG. 19).
    Stored(stored::Stored),
    /// The received list.
    Received(received::ReceivedList),
    /// A page drawn in the terminal.
    Preview(preview::Preview),
    /// The keys of the screen below.
    Help(help::Help),
    /// FIG. 8's fifth mode: the terminals online.
    Terminals(terminals::Terminals),
    /// A real-time session's progress.
    RealTime(realtime::RealTime),
    /// FIG. 7 modes 2 and 4: the fax's numbers and phone-book entries.
    FaxDest(fax_dest::FaxDest),
    /// A fax's progress, number by number.
    FaxProgress(fax_progress::FaxProgress),
    /// The fax communication records.
    FaxRecords(fax_records::FaxRecords),
}

impl Screen {
    /// Handles a key.
    pub fn key(&mut self, key: Key, ctx: &Ctx) -> Action {
        match self {
            Screen::Login(s) => s.key(key),
            Screen::ModeSelect(s) => s.key(key),
            Screen::DistributionMode(s) => s.key(key),
            Screen::Destinations(s) => s.key(key),
            Screen::Individual(s) => s.key(key),
            Screen::SpecifyImage(s) => s.key(key),
            Screen::GroupSelect(s) => s.key(key),
            Screen::Progress(s) => s.key(key),
            Screen::Message(s) => s.key(key),
            Screen::Stored(s) => s.key(key),
            Screen::Received(s) => s.key(key, ctx),
            Screen::Preview(s) => s.key(key),
            Screen::Help(s) => s.key(key),
            Screen::Terminals(s) => s.key(key),
            Screen::RealTime(s) => s.key(key),
            Screen::FaxDest(s) => s.key(key),
            Screen::FaxProgress(s) => s.key(key),
            Screen::FaxRecords(s) => s.key(key),
        }
    }

    /// The screen's own keys for the legend line (the shared ones follow them).
    pub fn legend(&self) -> &'static str {
        match self {
            Screen::Login(_) => "0-9 type Tab=box Enter=log in",
            Screen::ModeSelect(_) => "1-6 choose Enter=Start Esc=log out",
            Screen::DistributionMode(_) => "1-5 choose Enter=Start Esc=back",
            Screen::Destinations(d) if d.source == crate::panel::jobs::ImageSource::Adf => {
                "0-9 tick *=keep Enter=send Esc=back"
            }
            Screen::Destinations(_) => "0-9 tick Enter=send Esc=back",
            Screen::Individual(_) => "↑↓ move Space=tick Enter=send Esc=back",
            Screen::SpecifyImage(_) => "1/2 way 0-9 ID Enter=Start Esc=back",
            Screen::GroupSelect(_) => "0-9 pick Enter=Start Esc=back",
            Screen::Progress(_) => "x=Stop Enter=OK ↑↓ scroll",
            Screen::Message(_) => "Enter/Esc=OK",
            Screen::Stored(_) => "↑↓ move p=preview Del=delete Esc=back",
            Screen::Received(_) => "↑↓ move Enter/p=preview Esc=back",
            Screen::Preview(_) => "←→ page Enter/Esc=back",
            Screen::Help(_) => "any key closes",
            Screen::Terminals(_) => "1-9 pick Enter=scan and send Esc=back",
            Screen::RealTime(r) if r.over() => "Enter/Esc=OK",
            Screen::RealTime(r) if r.side == realtime::Side::Target => {
                "Enter=send ADF back Esc=nothing to send"
            }
            Screen::RealTime(_) => "x=Stop",
            Screen::FaxDest(_) => "0-9 type #=add *=phone book Enter=send Esc=back",
            Screen::FaxProgress(_) => "x=Stop Enter=OK",
            Screen::FaxRecords(_) => "↑↓ move Enter/Esc=back",
        }
    }

    /// The help overlay for this screen: every key it takes.
    pub fn help(&self) -> help::Help {
        let (title, keys): (&'static str, &'static [(&'static str, &'static str)]) = match self {
            Screen::Login(_) => (
                "user ID and password",
                &[
                    ("0-9 * #", "type into the focused box"),
                    ("Tab ↑↓", "change box"),
                    ("Backspace", "delete the last character"),
                    ("Enter", "Start: log in"),
                ],
            ),
            Screen::ModeSelect(_) => (
                "mode selection",
                &[
                    ("1-6", "choose a mode (Copy asks before it starts)"),
                    ("↑↓ Enter", "move, then Start on the highlighted mode"),
                    ("Esc", "Reset: log out (asks first)"),
                ],
            ),
            Screen::DistributionMode(_) => (
                "distribution mode",
                &[
                    ("1-5", "choose a mode (5: real time)"),
                    ("↑↓ Enter", "move, then Start on the highlighted mode"),
                    ("Esc", "Reset: back to mode selection"),
                ],
            ),
            Screen::Destinations(_) => (
                "destinations",
                &[
                    ("1-9", "tick or untick a group (two digits from ten groups)"),
                    ("0", "specify individual destinations"),
                    ("*", "keep the scan and print its mark sheet (ADF only)"),
                    ("↑↓ Space", "move, tick the highlighted group"),
                    ("Enter", "Start: send to the ticked destinations"),
                    ("Esc", "Reset: back"),
                ],
            ),
            Screen::Individual(_) => (
                "individual destinations",
                &[
                    ("↑↓ PgUp PgDn", "move"),
                    ("Space", "tick or untick the highlighted destination"),
                    ("Enter", "Start: send"),
                    ("Esc", "Reset: back, keeping the ticks"),
                ],
            ),
            Screen::SpecifyImage(_) => (
                "the way of specifying images",
                &[
                    ("1", "by mark sheet (in the ADF)"),
                    ("2", "by typing the 8-digit image ID"),
                    ("0-9", "type the ID (after 2)"),
                    ("Backspace", "delete the last digit"),
                    ("Enter", "Start: read the sheet, or use the typed ID"),
                    ("Esc", "Reset: back"),
                ],
            ),
            Screen::GroupSelect(_) => (
                "group selection",
                &[
                    ("1-9", "pick a group"),
                    ("Enter", "Start: register or withdraw (the picked group)"),
                    ("Esc", "Reset: back"),
                ],
            ),
            Screen::Progress(_) => (
                "distribution",
                &[
                    ("x", "Stop: cancel while scanning or sending"),
                    ("↑↓", "scroll the destinations"),
                    ("Enter Esc", "OK, once the server has it (delivery goes on)"),
                ],
            ),
            Screen::Message(_) => ("message", &[("Enter Esc", "OK")]),
            Screen::Stored(_) => (
                "image store",
                &[
                    ("↑↓", "move"),
                    ("Enter p", "preview the highlighted image"),
                    ("Delete d", "delete it (press twice)"),
                    ("Esc", "Reset: back"),
                ],
            ),
            Screen::Received(_) => (
                "received images",
                &[
                    ("↑↓", "move"),
                    ("Enter p", "preview the highlighted delivery"),
                    ("Esc", "Reset: back"),
                ],
            ),
            Screen::Preview(_) => (
                "preview",
                &[
                    ("→↓ PgDn Space", "next page"),
                    ("←↑ PgUp", "previous page"),
                    ("Enter Esc", "back"),
                ],
            ),
            Screen::Terminals(_) => (
                "terminals online",
                &[
                    ("1-9 ↑↓", "pick a terminal"),
                    (
                        "Enter",
                        "Start: scan the ADF and send it there in real time",
                    ),
                    ("Esc", "Reset: back"),
                ],
            ),
            Screen::RealTime(_) => (
                "real-time session",
                &[
                    ("x", "Stop: end a session this panel demanded"),
                    (
                        "Enter",
                        "Start: send the ADF's pages back (a session accepted); OK once over",
                    ),
                    ("Esc", "Reset: nothing (more) to send back; OK once over"),
                ],
            ),
            Screen::FaxDest(_) => (
                "fax destinations",
                &[
                    (
                        "0-9",
                        "type a number (or, after *, tick that phone-book entry)",
                    ),
                    (
                        "#",
                        "add the typed number (several numbers); with none typed: the communication records",
                    ),
                    ("*", "switch the ten keys between number and phone book"),
                    ("Backspace", "delete the last digit, or the last number"),
                    ("Enter", "Start: scan the ADF (or take the image) and send"),
                    ("Esc", "Reset: back"),
                ],
            ),
            Screen::FaxProgress(_) => (
                "fax progress",
                &[
                    ("x", "Stop: cancel while scanning or sending"),
                    (
                        "Enter Esc",
                        "OK, once the supervisor has the job (sending goes on)",
                    ),
                ],
            ),
            Screen::FaxRecords(_) => (
                "fax communication records",
                &[("↑↓", "move"), ("Enter Esc", "back")],
            ),
            Screen::Help(h) => (h.title, h.keys),
        };
        help::Help { title, keys }
    }

    /// Takes a value from a dialog that closed above this one.
    pub fn returned(&mut self, value: Returned) -> Action {
        match (self, value) {
            (Screen::Destinations(s), Returned::Individuals { domains, start }) => {
                s.individuals = domains;
                if start { s.start() } else { Action::None }
            }
            _ => Action::None,
        }
    }

    /// Draws the dialog into the LCD area.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        match self {
            Screen::Login(s) => s.draw(f, area, ctx),
            Screen::ModeSelect(s) => s.draw(f, area, ctx),
            Screen::DistributionMode(s) => s.draw(f, area, ctx),
            Screen::Destinations(s) => s.draw(f, area, ctx),
            Screen::Individual(s) => s.draw(f, area, ctx),
            Screen::SpecifyImage(s) => s.draw(f, area, ctx),
            Screen::GroupSelect(s) => s.draw(f, area, ctx),
            Screen::Progress(s) => s.draw(f, area, ctx),
            Screen::Message(s) => s.draw(f, area, ctx),
            Screen::Stored(s) => s.draw(f, area, ctx),
            Screen::Received(s) => s.draw(f, area, ctx),
            Screen::Preview(s) => s.draw(f, area, ctx),
            Screen::Help(s) => s.draw(f, area, ctx),
            Screen::Terminals(s) => s.draw(f, area, ctx),
            Screen::RealTime(s) => s.draw(f, area, ctx),
            Screen::FaxDest(s) => s.draw(f, area, ctx),
            Screen::FaxProgress(s) => s.draw(f, area, ctx),
            Screen::FaxRecords(s) => s.draw(f, area, ctx),
        }
    }
}

/// The most characters of a peer's name (a group, a destination, a sender, a user) drawn.
pub const NAME_CHARS: usize = 120;
/// The most characters of a peer's reason or message drawn.
pub const TEXT_CHARS: usize = 1000;

/// A name from a peer, safe to draw (see the module documentation).
pub fn peer_name(s: &str) -> Cow<'_, str> {
    escape_bounded(s, NAME_CHARS)
}

/// A reason or message that may hold a peer's text, safe to draw (see the module
/// documentation).
pub fn peer_text(s: &str) -> Cow<'_, str> {
    escape_bounded(s, TEXT_CHARS)
}

/// Splits `area` into a title line, a body and a hint line at the bottom.
pub fn frame_parts(area: Rect) -> (Rect, Rect, Rect) {
    let title = Rect {
        height: 1.min(area.height),
        ..area
    };
    let hint_h = u16::from(area.height >= 4);
    let hint = Rect {
        y: area.y + area.height.saturating_sub(hint_h),
        height: hint_h,
        ..area
    };
    let body = Rect {
        y: area.y + title.height + u16::from(area.height > 4),
        height: area
            .height
            .saturating_sub(title.height + hint_h + u16::from(area.height > 4)),
        ..area
    };
    (title, body, hint)
}

/// Draws the title and hint lines of a dialog; returns the body area.
pub fn chrome(f: &mut Frame, area: Rect, ctx: &Ctx, title: &str, hint: &str) -> Rect {
    let (t, body, h) = frame_parts(area);
    // Titles may quote a peer ("From <sender>").
    f.render_widget(
        Paragraph::new(Line::styled(
            peer_text(title).into_owned(),
            ctx.theme.title(),
        )),
        t,
    );
    f.render_widget(
        Paragraph::new(Line::styled(hint.to_owned(), ctx.theme.dim())),
        h,
    );
    body
}

/// Breaks `text` into lines at most `width` columns wide, at spaces where it can (a word
/// longer than a line is cut), so a message is never cut off mid-word at the LCD's edge.
/// Widths are counted as the terminal shows them.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    use unicode_width::UnicodeWidthChar;
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_w = 0;
    for word in text.split(' ') {
        let word_w: usize = word.chars().map(|c| c.width().unwrap_or(0)).sum();
        let gap = usize::from(!line.is_empty());
        if line_w + gap + word_w <= width {
            if gap == 1 {
                line.push(' ');
            }
            line.push_str(word);
            line_w += gap + word_w;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
            line_w = 0;
        }
        for c in word.chars() {
            let w = c.width().unwrap_or(0);
            if line_w + w > width {
                lines.push(std::mem::take(&mut line));
                line_w = 0;
            }
            line.push(c);
            line_w += w;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Registers a touch area for a key.
pub fn hit(ctx: &Ctx, area: Rect, key: Key) {
    ctx.hits.borrow_mut().push((area, key));
}

/// Draws a list whose highlighted entry Start acts on, and returns how many entries it has
/// (for the touch areas: [`hit_rows`] for one row an entry).
pub fn pick_list(
    f: &mut Frame,
    ctx: &Ctx,
    area: Rect,
    items: Vec<ListItem<'_>>,
    state: &mut ListState,
) -> usize {
    let total = items.len();
    f.render_stateful_widget(
        List::new(items).highlight_style(ctx.theme.focus()),
        area,
        state,
    );
    total
}

/// Draws a numbered menu dialog (FIG. 7, FIG. 8) with its rows touchable; returns the body's
/// area for whatever the screen adds below the menu.
pub fn menu_dialog(
    f: &mut Frame,
    area: Rect,
    ctx: &Ctx,
    title: &str,
    hint: &str,
    menu: &mut crate::panel::menu::Menu,
) -> Rect {
    let body = chrome(f, area, ctx, title, hint);
    hit_rows(ctx, body, 0, menu.items.len());
    menu.draw(f, body, &ctx.theme);
    body
}

/// Registers one touch area per visible list row: row `i` of the view is entry `offset + i`.
pub fn hit_rows(ctx: &Ctx, area: Rect, offset: usize, count: usize) {
    for i in 0..area.height as usize {
        if offset + i >= count {
            break;
        }
        let row = Rect {
            y: area.y + i as u16,
            height: 1,
            ..area
        };
        hit(ctx, row, Key::Pick(offset + i));
    }
}

#[cfg(test)]
mod tests {
    use imagecast_shared::client::{Event, Received};
    use imagecast_shared::msg::{
        Accepted, DeliveryState, Destination, DestinationStatus, GroupEntry, Role,
    };
    use imagecast_shared::text::is_unsafe;
    use imagecast_shared::{DeliveryId, DistributionId};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::panel::app::{App, AppEvent, Conn, PanelInfo};
    use crate::panel::jobs::JobResult;
    use crate::panel::runner::buffer_text;
    use crate::panel::theme::Theme;

    /// A name as a hostile server sends it: a right-to-left override, an OSC title escape,
    /// a newline and a colour escape.
    fn evil(name: &str) -> String {
        format!("{name}\u{202e}fdp.exe\u{1b}]0;pwned\u{7}\n2026 forged\u{1b}[31m")
    }

    /// Draws the panel at 100×30 and checks no cell holds an unsafe character and the
    /// override shows escaped; returns the text.
    fn drawn(app: &mut App, what: &str) -> String {
        let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
        let buf = t.draw(|f| app.draw(f)).unwrap().buffer.clone();
        for cell in buf.content() {
            assert!(
                !cell.symbol().chars().any(is_unsafe),
                "{what}: {:?} drawn raw\n{}",
                cell.symbol(),
                buffer_text(&buf)
            );
        }
        let text = buffer_text(&buf);
        assert!(text.contains("\\u{202e}fdp.exe"), "{what}:\n{text}");
        text
    }

    fn dest(name: &str) -> Destination {
        Destination {
            domain: evil("sale1.osk.mei.co.jp"),
            name: evil(name),
        }
    }

    #[test]
    fn peer_text_is_drawn_escaped_everywhere() {
        let mut app = App::new(
            PanelInfo {
                server: "127.0.0.1:7410".into(),
                device: "sale1.hqs.mei.co.jp".into(),
                demo: false,
                kiosk: false,
            },
            Theme::plain(),
        );
        // FIG. 6 with the server's refusal.
        app.conn = Conn::Refused(evil("token revoked"));
        drawn(&mut app, "login, refused");
        app.conn = Conn::Connected;
        app.device_name = evil("sales");
        app.event(AppEvent::Job(JobResult::LoggedIn {
            user: "1001".into(),
            role: Role::Operator,
            quit: false,
        }));
        app.event(AppEvent::Received {
            received: Received {
                delivery: DeliveryId(1),
                dist: DistributionId::new_random(),
                sender: dest("planning"),
                user: evil("1001"),
                files: Vec::new(),
                pages: 1,
                bytes: 10,
                duplicate: false,
            },
            pages: 1,
            fax: None,
        });
        // Status line (device name, the "Printed ... from" note) and the received pane.
        drawn(&mut app, "home");
        app.event(AppEvent::Server(Event::Notice(evil("maintenance"))));
        drawn(&mut app, "notice");
        app.key(crate::panel::keys::Key::Received);
        drawn(&mut app, "received list");

        let groups = vec![GroupEntry {
            name: evil("all sales offices"),
            file: "eigyou_syo.rec".into(),
            members: 3,
        }];
        app.apply(Action::Push(Screen::Destinations(
            destinations::Destinations::new(crate::panel::jobs::ImageSource::Adf, groups.clone()),
        )));
        drawn(&mut app, "FIG. 9");
        app.apply(Action::Push(Screen::Individual(
            individual::Individual::new(vec![dest("osaka")], &[]),
        )));
        drawn(&mut app, "FIG. 10");
        let mut select = group_select::GroupSelect::new(group_select::Mode::Register, groups);
        select.picked = Some(0);
        app.apply(Action::Push(Screen::GroupSelect(select)));
        drawn(&mut app, "FIG. 12");

        let mut progress = progress::Progress::new();
        progress.accepted(&Accepted {
            dist: DistributionId::new_random(),
            destinations: vec![dest("osaka")],
            duplicate: false,
        });
        progress.server_event(&Event::Progress {
            dist: progress.dist.unwrap(),
            status: DestinationStatus {
                destination: dest("osaka"),
                state: DeliveryState::Failed(format!("{}{}", evil("refused"), "A".repeat(200_000))),
            },
        });
        app.apply(Action::Push(Screen::Progress(progress)));
        drawn(&mut app, "progress summary");
        let mut failed = progress::Progress::new();
        failed.failed(evil("the server refused the distribution"));
        app.apply(Action::Push(Screen::Progress(failed)));
        drawn(&mut app, "progress failed");

        app.event(AppEvent::Job(JobResult::Failed {
            title: evil("Registration refused"),
            message: evil("no such group"),
        }));
        let text = drawn(&mut app, "error dialog");
        assert!(text.contains("no such group\\u{202e}fdp.exe\\u{1b}]0;pwned\\u{7}\\n2026"));
    }

    #[test]
    fn wrap_breaks_at_spaces_and_cuts_only_long_words() {
        assert_eq!(
            wrap("8 destination(s): 5 printed, 1 waiting", 20),
            ["8 destination(s): 5", "printed, 1 waiting"]
        );
        assert_eq!(wrap("abcdefgh ij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(wrap("営業所 大阪", 6), ["営業所", "大阪"]);
    }

    #[test]
    fn peer_text_is_bounded() {
        let long = "é".repeat(NAME_CHARS * 10);
        assert_eq!(peer_name(&long).chars().count(), NAME_CHARS + 1);
        assert_eq!(peer_text(&long).chars().count(), TEXT_CHARS + 1);
        assert!(matches!(peer_name("plain"), Cow::Borrowed("plain")));
    }
}
