//! A page drawn in the terminal with half-block characters: each cell shows two pixels, the
//! upper as the foreground of `▀` and the lower as its background, in the 24 grey levels of
//! the 256-colour palette (which work over SSH). Without colour, shades of `░▒▓█` stand in.

use image::DynamicImage;
use image::imageops::FilterType;
use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};

use super::chrome;
use crate::panel::app::{Action, Ctx};
use crate::panel::jobs::PreviewData;
use crate::panel::keys::Key;

/// The preview's state.
#[derive(Debug)]
pub struct Preview {
    /// The decoded pages and their heading.
    pub data: PreviewData,
    /// The page shown.
    pub page: usize,
    cache: Option<(usize, u16, u16, image::GrayImage)>,
}

impl Preview {
    /// Shows the first page.
    pub fn new(data: PreviewData) -> Self {
        Self {
            data,
            page: 0,
            cache: None,
        }
    }

    /// Handles a key.
    pub fn key(&mut self, key: Key) -> Action {
        let n = self.data.pages.len();
        match key {
            Key::Right | Key::Down | Key::PageDown | Key::Space if self.page + 1 < n => {
                self.page += 1;
            }
            Key::Left | Key::Up | Key::PageUp => self.page = self.page.saturating_sub(1),
            Key::Start | Key::Reset | Key::Pick(_) => return Action::Back,
            _ => {}
        }
        Action::None
    }

    /// Draws the page.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        let label = self
            .data
            .pages
            .get(self.page)
            .map_or_else(String::new, |(l, _)| l.clone());
        let title = format!("{label} ({}/{})", self.page + 1, self.data.pages.len());
        let body = chrome(
            f,
            area,
            ctx,
            &title,
            "Arrows turn pages, Start/Reset close.",
        );
        if body.height < 2 {
            return;
        }
        f.render_widget(
            ratatui::widgets::Paragraph::new(ratatui::text::Line::styled(
                super::peer_text(&self.data.title).into_owned(),
                ctx.theme.dim(),
            )),
            Rect { height: 1, ..body },
        );
        let body = Rect {
            y: body.y + 1,
            height: body.height - 1,
            ..body
        };
        let Some((_, img)) = self.data.pages.get(self.page) else {
            return;
        };
        if body.width == 0 || body.height == 0 {
            return;
        }
        let fresh = !matches!(&self.cache, Some((p, w, h, _)) if *p == self.page && *w == body.width && *h == body.height);
        if fresh {
            self.cache = Some((
                self.page,
                body.width,
                body.height,
                fit(img, body.width, body.height),
            ));
        }
        if let Some((_, _, _, gray)) = &self.cache {
            render(gray, body, f.buffer_mut(), ctx.theme.color);
        }
        super::hit(ctx, area, Key::Start);
    }
}

/// Scales a page to fit `cols` × `rows` cells (two pixels a cell, upright), keeping its
/// proportions (a cell is about twice as high as wide).
pub fn fit(img: &DynamicImage, cols: u16, rows: u16) -> image::GrayImage {
    let (w, h) = (img.width().max(1) as f64, img.height().max(1) as f64);
    let max_w = f64::from(cols);
    let max_h = f64::from(rows) * 2.0;
    let scale = (max_w / w).min(max_h / h);
    let tw = ((w * scale).round() as u32).clamp(1, u32::from(cols));
    let th = ((h * scale).round() as u32).clamp(1, u32::from(rows) * 2);
    image::imageops::resize(&img.to_luma8(), tw, th, FilterType::Triangle)
}

/// Draws a fitted page into `area`, centred.
pub fn render(gray: &image::GrayImage, area: Rect, buf: &mut Buffer, color: bool) {
    let cols = gray.width() as u16;
    let rows = gray.height().div_ceil(2) as u16;
    let x0 = area.x + area.width.saturating_sub(cols) / 2;
    let y0 = area.y + area.height.saturating_sub(rows) / 2;
    for cy in 0..rows.min(area.height) {
        for cx in 0..cols.min(area.width) {
            let top = gray.get_pixel(u32::from(cx), u32::from(cy) * 2)[0];
            let bottom = gray
                .get_pixel_checked(u32::from(cx), u32::from(cy) * 2 + 1)
                .map_or(255, |p| p[0]);
            let cell = &mut buf[(x0 + cx, y0 + cy)];
            if color {
                cell.set_symbol("▀").set_style(
                    Style::default()
                        .fg(Color::Indexed(grey_index(top)))
                        .bg(Color::Indexed(grey_index(bottom))),
                );
            } else {
                let ink = 255 - ((u16::from(top) + u16::from(bottom)) / 2) as u8;
                // Scaled-down text is grey, not black: shade generously.
                let sym = match ink {
                    0..=20 => " ",
                    21..=60 => "░",
                    61..=110 => "▒",
                    111..=170 => "▓",
                    _ => "█",
                };
                cell.set_symbol(sym);
            }
        }
    }
}

fn grey_index(v: u8) -> u8 {
    232 + (u16::from(v) * 23 / 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::app::AppEvent;
    use crate::panel::jobs::JobResult;
    use crate::panel::test_support::{logged_in, screen};

    #[test]
    fn black_ink_on_white_paper_shows_as_blocks_without_colour() {
        let mut img = image::GrayImage::from_pixel(40, 40, image::Luma([255]));
        for y in 0..40 {
            for x in 0..20 {
                img.put_pixel(x, y, image::Luma([0]));
            }
        }
        let page = DynamicImage::ImageLuma8(img);
        let gray = fit(&page, 20, 10);
        assert_eq!((gray.width(), gray.height()), (20, 20));
        let area = Rect::new(0, 0, 20, 10);
        let mut buf = Buffer::empty(area);
        render(&gray, area, &mut buf, false);
        assert_eq!(buf[(0, 5)].symbol(), "█");
        assert_eq!(buf[(19, 5)].symbol(), " ");
    }

    #[test]
    fn preview_at_80x24() {
        let mut a = logged_in();
        let mut page = image::GrayImage::from_pixel(120, 170, image::Luma([255]));
        for y in 20..150 {
            if y % 14 < 6 {
                for x in 15..105 {
                    page.put_pixel(x, y, image::Luma([0]));
                }
            }
        }
        a.event(AppEvent::Job(JobResult::Preview(Box::new(PreviewData {
            title: "From sales office, the Osaka branch".into(),
            pages: vec![("memo.png p.1".into(), DynamicImage::ImageLuma8(page))],
        }))));
        insta::assert_snapshot!("preview", screen(&mut a));
    }
}
