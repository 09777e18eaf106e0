//! The image store (memory means 128) with the attribute table of FIG. 19: image ID, number of
//! pages, image size, when and by whom stored. Preview or delete an image.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table, TableState};

use super::{chrome, hit_rows};
use crate::panel::app::{Action, Ctx};
use crate::panel::jobs::stored::{DeleteStored, PreviewStored};
use crate::panel::keys::Key;
use crate::panel::screens::progress::human_bytes;
use crate::panel::strings;
use crate::store::{ImageId, Listing};

/// The image store view's state.
#[derive(Debug)]
pub struct Stored {
    /// What the store holds.
    pub listing: Listing,
    /// The highlighted row.
    pub table: TableState,
    /// Delete was pressed once for this image; again deletes it.
    pub confirm: Option<ImageId>,
}

impl Stored {
    /// The view of `listing`.
    pub fn new(listing: Listing) -> Self {
        let mut s = Self {
            listing,
            table: TableState::default(),
            confirm: None,
        };
        s.clamp();
        s
    }

    /// Shows a fresh listing.
    pub fn set(&mut self, listing: Listing) {
        self.listing = listing;
        self.confirm = None;
        self.clamp();
    }

    fn clamp(&mut self) {
        let n = self.listing.images.len();
        match self.table.selected() {
            _ if n == 0 => self.table.select(None),
            Some(i) if i >= n => self.table.select(Some(n - 1)),
            None => self.table.select(Some(0)),
            _ => {}
        }
    }

    fn selected(&self) -> Option<ImageId> {
        self.table
            .selected()
            .and_then(|i| self.listing.images.get(i))
            .map(|a| a.id)
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        match key {
            Key::Up => {
                self.confirm = None;
                self.table.select_previous();
            }
            Key::Down => {
                self.confirm = None;
                if self
                    .table
                    .selected()
                    .is_some_and(|i| i + 1 < self.listing.images.len())
                {
                    self.table.select_next();
                }
            }
            Key::Pick(i) => {
                self.confirm = None;
                self.table.select(Some(i));
            }
            Key::Delete => {
                let Some(id) = self.selected() else {
                    return Action::None;
                };
                if self.confirm == Some(id) {
                    self.confirm = None;
                    return Action::run(DeleteStored(id));
                }
                self.confirm = Some(id);
            }
            Key::Start | Key::Preview => {
                if let Some(id) = self.selected() {
                    return Action::run(PreviewStored(id));
                }
            }
            Key::Reset => return Action::Back,
            _ => {}
        }
        Action::None
    }

    /// Draws the view.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let title = format!("{} ({})", strings::STORED_TITLE, self.listing.images.len());
        let body = chrome(
            f,
            area,
            ctx,
            &title,
            "Start/p preview, Delete twice deletes, Reset back.",
        );
        if self.listing.images.is_empty() {
            f.render_widget(
                Paragraph::new(
                    "No image is stored. Distribute a document with * (keep) to store one.",
                ),
                body,
            );
            return;
        }
        let foot_h = u16::from(self.confirm.is_some() || !self.listing.damaged.is_empty());
        let table_area = Rect {
            height: body.height.saturating_sub(foot_h),
            ..body
        };
        // The document column takes what the others leave; a longer name ends in "…".
        let name_w = (table_area.width as usize).saturating_sub(8 + 5 + 8 + 11 + 4 + 5);
        let cut = |name: &str| -> String {
            if name.chars().count() <= name_w {
                return name.to_owned();
            }
            let head: String = name.chars().take(name_w.saturating_sub(1)).collect();
            format!("{head}…")
        };
        let rows: Vec<Row> = self
            .listing
            .images
            .iter()
            .map(|a| {
                let at = humantime::format_rfc3339_seconds(a.stored_at).to_string();
                // "2026-11-21T09:06:40Z" -> "11-21 09:06".
                let at = at
                    .get(5..16)
                    .map_or_else(|| at.clone(), |t| t.replace('T', " "));
                Row::new(vec![
                    a.id.to_string(),
                    cut(&super::peer_name(&a.name)),
                    a.pages.to_string(),
                    human_bytes(a.size),
                    at,
                    super::peer_name(&a.stored_by).into_owned(),
                ])
            })
            .collect();
        let total = rows.len();
        let table = Table::new(
            rows,
            [
                Constraint::Length(8),
                Constraint::Min(8),
                Constraint::Length(5),
                Constraint::Length(8),
                Constraint::Length(11),
                Constraint::Length(4),
            ],
        )
        .header(
            Row::new(vec![
                "Image ID",
                "Document",
                "Pages",
                "Size",
                "Stored UTC",
                "By",
            ])
            .style(ctx.theme.title()),
        )
        .row_highlight_style(ctx.theme.focus());
        f.render_stateful_widget(table, table_area, &mut self.table);
        let rows_area = Rect {
            y: table_area.y + 1,
            height: table_area.height.saturating_sub(1),
            ..table_area
        };
        hit_rows(ctx, rows_area, self.table.offset(), total);
        let foot = if let Some(id) = self.confirm {
            Line::styled(
                format!("Press Delete again to delete image {id}."),
                ctx.theme.error(),
            )
        } else if let Some(d) = self.listing.damaged.first() {
            Line::styled(
                format!("Damaged entry {}: {}", d.entry, super::peer_text(&d.reason)),
                ctx.theme.error(),
            )
        } else {
            Line::raw("")
        };
        f.render_widget(
            Paragraph::new(foot),
            Rect {
                y: body.y + table_area.height,
                height: foot_h,
                ..body
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use crate::panel::app::AppEvent;
    use crate::panel::jobs::JobResult;
    use crate::panel::test_support::{logged_in, screen};
    use crate::store::{Attributes, ImageId, Listing};

    #[test]
    fn stored_images_at_80x24() {
        let mut a = logged_in();
        a.event(AppEvent::Job(JobResult::Stored(Listing {
            images: vec![
                Attributes {
                    id: ImageId::new(20_261_121).unwrap(),
                    pages: 4,
                    size: 85_000,
                    stored_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_300_000),
                    stored_by: "1001".into(),
                    name: "price list.tif +2".into(),
                },
                Attributes {
                    id: ImageId::new(31_415_926).unwrap(),
                    pages: 1,
                    size: 2_400_000,
                    stored_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_303_600),
                    stored_by: "1002".into(),
                    name: "site plan.png".into(),
                },
            ],
            damaged: vec![],
        })));
        insta::assert_snapshot!("stored_images", screen(&mut a));
    }
}
