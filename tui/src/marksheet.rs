//! Mark sheets (FIG. 20): the first page of a kept image, printed with a QR code of its image
//! ID stamped at the top-right corner, so that scanning the sheet later finds the image again.
//!
//! # Payload
//! The QR code holds the text `IC1:` followed by the 8-digit image ID, e.g. `IC1:01234567`
//! ([`PAYLOAD_PREFIX`]). `IC` marks an imagecast sheet and `1` the payload version: a QR code
//! without the prefix is someone else's ([`MarkSheetError::Foreign`]); `IC2:` and later are
//! sheets from a newer program ([`MarkSheetError::UnsupportedVersion`]). The 12 characters
//! are alphanumeric, which fits QR version 2 (25×25 modules) at error correction level H
//! (30 % of the code may be damaged).
//!
//! # Size and place
//! The page is taken to be an A4 sheet whose short side is 210 mm, so a page 1654 pixels wide
//! is 200 dpi. The code is drawn about [`CODE_WIDTH_MM`] wide (9-pixel modules at 200 dpi, 4.5
//! pixels after a 100 dpi rescan) on a white patch with a 4-module quiet zone, [`MARGIN_MM`]
//! from the top and right edges.
//!
//! # Reading
//! [`decode_sheet`] looks in the four corners first (a sheet fed sideways or upside down
//! carries the code in another corner), top-right first, and only then at the whole page.
//! Each place is read as is first; only when no corner reads does it try the rescue passes
//! that cost more: a 3×3 median filter (salt-and-pepper fax noise), an Otsu threshold (blur,
//! low contrast) and half resolution.
//!
//! # Size limits
//! A kiosk user can feed any file, so a sheet has a pixel ceiling of its own, lower than that
//! of pages: [`MAX_SHEET_PIXELS`] (40 megapixels; an A4 sheet at 600 dpi has 35). A larger
//! scan is refused from its header, before a pixel is decoded ([`MarkSheetError::TooLarge`]),
//! and PNG and JPEG sheets are decoded under [`image::Limits`] that hold the decoder itself to
//! that size. A sheet above [`SEARCH_PIXELS`] (a 300 dpi A4 scan has 8.7 megapixels) is scaled
//! down to about that before the search, which keeps the code's modules several pixels wide
//! and the search as fast as on a 300 dpi scan.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Rgb, RgbImage};
use imagecast_shared::text::is_unsafe;
use qrcode::{EcLevel, QrCode};

use crate::paper::pages::{MAX_DIMENSION, PageError};
use crate::paper::{self, PaperError};
use crate::store::ImageId;

/// What every imagecast mark sheet code starts with: `IC`, payload version `1`, and `:`.
pub const PAYLOAD_PREFIX: &str = "IC1:";
/// The printed width of the code itself (without quiet zone), in millimetres.
pub const CODE_WIDTH_MM: f32 = 28.0;
/// The distance of the white patch from the top and right edges of the page, in millimetres.
pub const MARGIN_MM: f32 = 8.0;
/// The short side of an A4 sheet, in millimetres: how pixels are turned into millimetres.
const A4_SHORT_SIDE_MM: f32 = 210.0;
/// The quiet zone around the code, in modules (the QR standard asks for 4).
const QUIET_MODULES: u32 = 4;
/// The share of the page's short side that each corner search covers.
const CORNER_SHARE: f32 = 0.35;
/// The longest excerpt of a foreign code quoted in an error.
const QUOTE_CHARS: usize = 32;
/// The most pixels a mark sheet may have (an A4 sheet at 600 dpi has about 35 million).
pub const MAX_SHEET_PIXELS: u64 = 40_000_000;
/// The most memory the decoder may allocate for a sheet: every pixel as 16-bit RGB.
const MAX_SHEET_ALLOC: u64 = MAX_SHEET_PIXELS * 6;
/// Sheets with more pixels than this are scaled down to about this before the search.
pub const SEARCH_PIXELS: u64 = 9_000_000;

/// Why a mark sheet could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MarkSheetError {
    /// No QR code was found anywhere on the page.
    #[error("no mark sheet code found on the page")]
    NoCode,
    /// A QR code was found, but it is not an imagecast mark sheet.
    #[error("the QR code on the page is not an imagecast mark sheet (it reads {0:?})")]
    Foreign(String),
    /// An imagecast code was found, but the ID in it is not 8 digits.
    #[error("the mark sheet code holds no valid 8-digit image ID (it reads {0:?})")]
    BadId(String),
    /// The code comes from a newer payload version than this program reads.
    #[error("the mark sheet comes from a newer imagecast (code {0:?}); this one reads IC1 codes")]
    UnsupportedVersion(String),
    /// The sheet's file could not be read or decoded.
    #[error("cannot read the mark sheet: {0}")]
    Unreadable(#[from] PaperError),
    /// The scan has more pixels than a mark sheet may have ([`MAX_SHEET_PIXELS`]).
    #[error(
        "the scan is {width}x{height} pixels ({} megapixels); a mark sheet may have at most {} megapixels (an A4 sheet at 600 dpi has 35): scan it at 300 dpi",
        megapixels(*width, *height),
        MAX_SHEET_PIXELS / 1_000_000
    )]
    TooLarge {
        /// The scan's width in pixels.
        width: u32,
        /// The scan's height in pixels.
        height: u32,
    },
}

/// `width × height` in megapixels, rounded up (so nothing over the limit shows as the limit).
fn megapixels(width: u32, height: u32) -> u64 {
    (u64::from(width) * u64::from(height)).div_ceil(1_000_000)
}

/// Refuses a sheet over [`MAX_SHEET_PIXELS`].
fn check_sheet_size(width: u32, height: u32) -> Result<(), MarkSheetError> {
    if u64::from(width) * u64::from(height) > MAX_SHEET_PIXELS {
        Err(MarkSheetError::TooLarge { width, height })
    } else {
        Ok(())
    }
}

impl MarkSheetError {
    /// How informative a failure is: the most informative one found is reported.
    fn rank(&self) -> u8 {
        match self {
            MarkSheetError::BadId(_) => 3,
            MarkSheetError::UnsupportedVersion(_) => 2,
            MarkSheetError::Foreign(_) => 1,
            _ => 0,
        }
    }
}

/// The text stored in the QR code of the mark sheet for `id`, e.g. `IC1:01234567`.
pub fn payload(id: ImageId) -> String {
    format!("{PAYLOAD_PREFIX}{id}")
}

/// A file name for the printed mark sheet of `id`.
pub fn sheet_name(id: ImageId) -> String {
    format!("marksheet-{id}.png")
}

/// Prints the mark sheet of `id`: `first_page` with the QR code stamped at its top-right
/// corner on a white patch. A page too small to hold the code is extended with white paper.
pub fn print_sheet(id: ImageId, first_page: &DynamicImage) -> RgbImage {
    let code = QrCode::with_error_correction_level(payload(id), EcLevel::H)
        .expect("12 alphanumeric characters always fit a QR code at level H");
    let n = u32::try_from(code.width()).unwrap_or(u32::MAX);
    let colors = code.to_colors();

    let page = first_page.to_rgb8();
    let (w, h) = page.dimensions();
    let px_per_mm = w.min(h) as f32 / A4_SHORT_SIDE_MM;
    let module = ((CODE_WIDTH_MM * px_per_mm) / n as f32).round().max(3.0) as u32;
    let patch = (n + 2 * QUIET_MODULES) * module;
    let margin = ((MARGIN_MM * px_per_mm).round() as u32).min(w.min(h).saturating_sub(patch) / 2);

    // A tiny page is put on a sheet big enough for the patch, at the top left.
    let (sw, sh) = (w.max(patch + margin), h.max(patch + margin));
    let mut sheet = if (sw, sh) == (w, h) {
        page
    } else {
        let mut sheet = RgbImage::from_pixel(sw, sh, Rgb([255, 255, 255]));
        image::imageops::replace(&mut sheet, &page, 0, 0);
        sheet
    };

    let (x0, y0) = (sw - margin - patch, margin);
    fill(&mut sheet, x0, y0, patch, patch, Rgb([255, 255, 255]));
    let n_us = n as usize;
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (mx, my) = ((i % n_us) as u32, (i / n_us) as u32);
            let x = x0 + (QUIET_MODULES + mx) * module;
            let y = y0 + (QUIET_MODULES + my) * module;
            fill(&mut sheet, x, y, module, module, Rgb([0, 0, 0]));
        }
    }
    sheet
}

fn fill(img: &mut RgbImage, x0: u32, y0: u32, w: u32, h: u32, color: Rgb<u8>) {
    for y in y0..(y0 + h).min(img.height()) {
        for x in x0..(x0 + w).min(img.width()) {
            img.put_pixel(x, y, color);
        }
    }
}

/// Reads the image ID from a scanned mark sheet, however it was fed: any corner, slightly
/// rotated, rescaled from 100 to 600 dpi, noisy or blurred. A sheet over [`MAX_SHEET_PIXELS`]
/// is refused; one over [`SEARCH_PIXELS`] is scaled down first.
pub fn decode_sheet(img: &DynamicImage) -> Result<ImageId, MarkSheetError> {
    check_sheet_size(img.width(), img.height())?;
    let scaled;
    let img = match scaled_for_search(img) {
        Some(small) => {
            scaled = small;
            &scaled
        }
        None => img,
    };
    let mut search = Search::default();
    let corners = corner_origins(img.width(), img.height());
    let mut crops: Vec<GrayImage> = Vec::with_capacity(corners.len());

    // Fast path: each corner as it is, the stamped (top-right) corner first.
    for &(x, y, side) in &corners {
        let crop = img.crop_imm(x, y, side, side).into_luma8();
        if let Some(id) = search.read(&crop) {
            return Ok(id);
        }
        crops.push(crop);
    }
    // Rescue passes on the corners.
    for crop in &crops {
        if let Some(id) = search.rescue(crop) {
            return Ok(id);
        }
    }
    // The whole page: a photo of a sheet, or a code far from where it was stamped.
    let page = img.to_luma8();
    if let Some(id) = search.read(&page).or_else(|| search.rescue(&page)) {
        return Ok(id);
    }
    Err(search.best.unwrap_or(MarkSheetError::NoCode))
}

/// Reads the image ID from the first page of a scanned mark sheet file. A scan over
/// [`MAX_SHEET_PIXELS`] is refused from its header, before its pixels are decoded.
pub fn decode_file(path: &Path) -> Result<ImageId, MarkSheetError> {
    let page = read_sheet(path)?;
    decode_sheet(&page)
}

/// Decodes the first page of a sheet's file within the sheet limits (see the module docs).
fn read_sheet(path: &Path) -> Result<DynamicImage, MarkSheetError> {
    let bytes = paper::pages::read_file(path)?;
    let in_file = |source: PageError| {
        MarkSheetError::Unreadable(PaperError::Page {
            path: path.to_path_buf(),
            source,
        })
    };
    match image::guess_format(&bytes) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg)) => {
            // The header first, under the decoder's default limits: nothing is decoded yet.
            let (width, height) = ImageReader::with_format(Cursor::new(&bytes), format)
                .into_dimensions()
                .map_err(|e| in_file(page_error(e)))?;
            check_sheet_size(width, height)?;
            let mut limits = image::Limits::default();
            limits.max_image_width = Some(MAX_DIMENSION);
            limits.max_image_height = Some(MAX_DIMENSION);
            limits.max_alloc = Some(MAX_SHEET_ALLOC);
            let mut reader = ImageReader::with_format(Cursor::new(&bytes), format);
            reader.limits(limits);
            let decoder = reader.into_decoder().map_err(|e| in_file(page_error(e)))?;
            let (width, height) = decoder.dimensions();
            check_sheet_size(width, height)?;
            DynamicImage::from_decoder(decoder).map_err(|e| in_file(page_error(e)))
        }
        Ok(ImageFormat::Tiff) => {
            // The first page's size from its directory; the paper module decodes it (fax
            // compressions included) under its own memory limit.
            let dims =
                tiff::decoder::Decoder::new(Cursor::new(&bytes)).and_then(|mut d| d.dimensions());
            if let Ok((width, height)) = dims {
                check_sheet_size(width, height)?;
            }
            paper::pages::first_page_from_bytes(&bytes).map_err(in_file)
        }
        // Not a PNG, JPEG or TIFF: the paper module names the problem.
        _ => paper::pages::first_page_from_bytes(&bytes).map_err(in_file),
    }
}

/// An `image` error as the paper module reports it.
fn page_error(e: image::ImageError) -> PageError {
    match e {
        image::ImageError::Limits(l) => PageError::Limits(l.to_string()),
        image::ImageError::Unsupported(u) => PageError::Unsupported(u.to_string()),
        other => PageError::Damaged(other.to_string()),
    }
}

/// The sheet scaled down (grey) to about [`SEARCH_PIXELS`], or `None` when it is not larger.
fn scaled_for_search(img: &DynamicImage) -> Option<DynamicImage> {
    let (w, h) = (img.width(), img.height());
    let pixels = u64::from(w) * u64::from(h);
    if pixels <= SEARCH_PIXELS {
        return None;
    }
    let scale = (SEARCH_PIXELS as f64 / pixels as f64).sqrt();
    let (sw, sh) = (
        ((f64::from(w) * scale) as u32).max(1),
        ((f64::from(h) * scale) as u32).max(1),
    );
    let grey = img.to_luma8();
    Some(DynamicImage::ImageLuma8(image::imageops::thumbnail(
        &grey, sw, sh,
    )))
}

/// The square regions searched first: `(x, y, side)` for top-right, bottom-left (fed upside
/// down), top-left and bottom-right. Empty for pages too small to be worth cropping.
fn corner_origins(w: u32, h: u32) -> Vec<(u32, u32, u32)> {
    let side = (w.min(h) as f32 * CORNER_SHARE).round() as u32;
    if side < 64 {
        return Vec::new();
    }
    vec![(w - side, 0), (0, h - side), (0, 0), (w - side, h - side)]
        .into_iter()
        .map(|(x, y)| (x, y, side))
        .collect()
}

/// The state of one search: the most informative failure so far.
#[derive(Default)]
struct Search {
    best: Option<MarkSheetError>,
}

impl Search {
    /// Reads `img` as it is.
    fn read(&mut self, img: &GrayImage) -> Option<ImageId> {
        self.consider(qr_contents(img, None))
    }

    /// Reads `img` through the rescue passes: median filter, Otsu threshold, half resolution.
    fn rescue(&mut self, img: &GrayImage) -> Option<ImageId> {
        let smooth = median3(img);
        if let Some(id) = self.consider(qr_contents(&smooth, None)) {
            return Some(id);
        }
        let threshold = otsu_threshold(&smooth);
        if let Some(id) = self.consider(qr_contents(&smooth, Some(threshold))) {
            return Some(id);
        }
        self.consider(qr_contents(&half(&smooth), None))
    }

    fn consider(&mut self, contents: Vec<String>) -> Option<ImageId> {
        for content in contents {
            match classify(&content) {
                Ok(id) => return Some(id),
                Err(e) => {
                    if self.best.as_ref().is_none_or(|b| e.rank() > b.rank()) {
                        self.best = Some(e);
                    }
                }
            }
        }
        None
    }
}

/// Tells an imagecast payload from anything else.
fn classify(content: &str) -> Result<ImageId, MarkSheetError> {
    if let Some(rest) = content.strip_prefix(PAYLOAD_PREFIX) {
        return rest
            .parse()
            .map_err(|_| MarkSheetError::BadId(quote(content)));
    }
    let version = content
        .strip_prefix("IC")
        .and_then(|rest| rest.split_once(':'))
        .map(|(v, _)| v);
    match version {
        Some(v) if (1..=3).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) => {
            Err(MarkSheetError::UnsupportedVersion(quote(content)))
        }
        _ => Err(MarkSheetError::Foreign(quote(content))),
    }
}

/// A short, printable excerpt of untrusted text.
fn quote(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(QUOTE_CHARS)
        .map(|c| if is_unsafe(c) { '?' } else { c })
        .collect();
    if text.chars().nth(QUOTE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// The texts of every QR code rqrr decodes in `img`; with `threshold`, pixels darker than it
/// are taken as black instead of rqrr's own adaptive threshold.
fn qr_contents(img: &GrayImage, threshold: Option<u8>) -> Vec<String> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let pixels = img.as_raw().as_slice();
    if w == 0 || h == 0 {
        return Vec::new();
    }
    // rqrr can panic on odd pictures (WanzenBug/rqrr#54); a scan must never take the
    // program down, so such a panic counts as "no code here".
    std::panic::catch_unwind(|| {
        let at = |x: usize, y: usize| pixels.get(y * w + x).copied().unwrap_or(255);
        let mut prepared = match threshold {
            None => rqrr::PreparedImage::prepare_from_greyscale(w, h, at),
            Some(t) => rqrr::PreparedImage::prepare_from_bitmap(w, h, |x, y| at(x, y) < t),
        };
        prepared
            .detect_grids()
            .iter()
            .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
            .collect::<Vec<String>>()
    })
    .unwrap_or_default()
}

/// A 3×3 median filter (edges copied): removes salt-and-pepper noise, keeps module edges.
fn median3(img: &GrayImage) -> GrayImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let src = img.as_raw();
    let mut out = src.clone();
    if w < 3 || h < 3 {
        return img.clone();
    }
    for y in 1..h - 1 {
        let (up, mid, down) = (
            &src[(y - 1) * w..y * w],
            &src[y * w..(y + 1) * w],
            &src[(y + 1) * w..(y + 2) * w],
        );
        let row = &mut out[y * w..(y + 1) * w];
        for x in 1..w - 1 {
            row[x] = median9([
                up[x - 1],
                up[x],
                up[x + 1],
                mid[x - 1],
                mid[x],
                mid[x + 1],
                down[x - 1],
                down[x],
                down[x + 1],
            ]);
        }
    }
    GrayImage::from_raw(img.width(), img.height(), out).unwrap_or_else(|| img.clone())
}

/// The median of nine values with a fixed 19-exchange network (Paeth, as in Devillard's
/// `opt_med9`).
fn median9(mut p: [u8; 9]) -> u8 {
    const PAIRS: [(usize, usize); 19] = [
        (1, 2),
        (4, 5),
        (7, 8),
        (0, 1),
        (3, 4),
        (6, 7),
        (1, 2),
        (4, 5),
        (7, 8),
        (0, 3),
        (5, 8),
        (4, 7),
        (3, 6),
        (1, 4),
        (2, 5),
        (4, 7),
        (4, 2),
        (6, 4),
        (4, 2),
    ];
    for (a, b) in PAIRS {
        if p[a] > p[b] {
            p.swap(a, b);
        }
    }
    p[4]
}

/// Otsu's threshold: the grey level that best splits the histogram into ink and paper.
fn otsu_threshold(img: &GrayImage) -> u8 {
    let mut hist = [0u64; 256];
    for p in img.as_raw() {
        hist[usize::from(*p)] += 1;
    }
    let total: u64 = hist.iter().sum();
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut weight_dark, mut sum_dark) = (0u64, 0f64);
    let (mut best, mut best_var) = (128u8, -1f64);
    for (t, &count) in hist.iter().enumerate() {
        weight_dark += count;
        sum_dark += t as f64 * count as f64;
        let weight_light = total - weight_dark;
        if weight_dark == 0 || weight_light == 0 {
            continue;
        }
        let mean_dark = sum_dark / weight_dark as f64;
        let mean_light = (sum_all - sum_dark) / weight_light as f64;
        let var = weight_dark as f64 * weight_light as f64 * (mean_dark - mean_light).powi(2);
        if var > best_var {
            best_var = var;
            // Pixels below the threshold are ink: level t itself belongs to the dark class.
            best = u8::try_from(t + 1).unwrap_or(u8::MAX);
        }
    }
    best
}

/// Half resolution by averaging 2×2 blocks.
fn half(img: &GrayImage) -> GrayImage {
    let (w, h) = (img.width() / 2, img.height() / 2);
    GrayImage::from_fn(w.max(1), h.max(1), |x, y| {
        let (sx, sy) = (2 * x, 2 * y);
        let get = |dx: u32, dy: u32| {
            u32::from(
                img.get_pixel_checked(sx + dx, sy + dy)
                    .map_or(255, |p| p.0[0]),
            )
        };
        let sum = get(0, 0) + get(1, 0) + get(0, 1) + get(1, 1);
        image::Luma([u8::try_from(sum / 4).unwrap_or(u8::MAX)])
    })
}

/// A white PNG of any size, written without holding its pixels: 1-bit grey, each row but the
/// first a deflate back-reference to the row before. 20,000 × 20,000 comes to about 560 KB.
#[cfg(test)]
pub(crate) mod white_png {
    /// Writes bits least significant first, as deflate wants them.
    #[derive(Default)]
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }

    impl Bits {
        fn put(&mut self, value: u32, count: u32) {
            self.acc |= u64::from(value) << self.n;
            self.n += count;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }

        /// A Huffman code: most significant bit first.
        fn code(&mut self, code: u32, len: u32) {
            self.put(code.reverse_bits() >> (32 - len), len);
        }

        fn literal(&mut self, byte: u8) {
            match byte {
                0..=143 => self.code(0x30 + u32::from(byte), 8),
                _ => self.code(0x190 + u32::from(byte) - 144, 9),
            }
        }

        /// A back-reference with the fixed Huffman codes (RFC 1951, 3.2.5 and 3.2.6).
        fn copy(&mut self, len: u32, dist: u32) {
            const LBASE: [u32; 29] = [
                3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83,
                99, 115, 131, 163, 195, 227, 258,
            ];
            const LEXTRA: [u32; 29] = [
                0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5,
                0,
            ];
            const DBASE: [u32; 30] = [
                1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
                1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
            ];
            const DEXTRA: [u32; 30] = [
                0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11,
                12, 12, 13, 13,
            ];
            let l = LBASE.iter().rposition(|&b| b <= len).unwrap();
            let symbol = 257 + l as u32;
            if symbol < 280 {
                self.code(symbol - 256, 7);
            } else {
                self.code(0xc0 + symbol - 280, 8);
            }
            self.put(len - LBASE[l], LEXTRA[l]);
            let d = DBASE.iter().rposition(|&b| b <= dist).unwrap();
            self.code(d as u32, 5);
            self.put(dist - DBASE[d], DEXTRA[d]);
        }
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let crc = crc32(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }

    /// The PNG file.
    pub(crate) fn white_png(width: u32, height: u32) -> Vec<u8> {
        let row = 1 + width.div_ceil(8); // filter byte, then the bits
        let mut bits = Bits::default();
        bits.put(1, 1); // the final block
        bits.put(1, 2); // fixed Huffman codes
        // First row: filter 0, then 0xff bytes (the last may be partly padding).
        bits.literal(0);
        bits.literal(0xff);
        let mut left = row - 2;
        while left > 0 {
            let len = left.min(258);
            if len < 3 {
                (0..len).for_each(|_| bits.literal(0xff));
            } else {
                bits.copy(len, 1);
            }
            left -= len;
        }
        // Every other row: the one before.
        let mut left = u64::from(row) * u64::from(height - 1);
        while left > 0 {
            let len = left.min(258) as u32;
            if len < 3 {
                // Too short for a copy: the tail is 0xff, the filter byte never comes last.
                (0..len).for_each(|_| bits.literal(0xff));
            } else {
                bits.copy(len, row);
            }
            left -= u64::from(len);
        }
        bits.code(0, 7); // end of block
        bits.put(0, 7); // flush
        // The Adler-32 of the raw rows, a row at a time: a row is a 0 and n - 1 times 0xff.
        let (mut a, mut b) = (1u64, 0u64);
        let n = u64::from(row);
        for _ in 0..height {
            b = (b + n * a + 0xff * (n - 1) * n / 2) % 65521;
            a = (a + 0xff * (n - 1)) % 65521;
        }
        let mut zlib = vec![0x78, 0x01];
        zlib.extend_from_slice(&bits.out);
        zlib.extend_from_slice(&((b << 16 | a) as u32).to_be_bytes());

        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // 1-bit grey, deflate, filters, no interlace
        chunk(&mut png, b"IHDR", &ihdr);
        chunk(&mut png, b"IDAT", &zlib);
        chunk(&mut png, b"IEND", &[]);
        png
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::jpeg::JpegEncoder;
    use image::imageops::{self, FilterType};
    use image::{ImageFormat, Luma};
    use std::sync::OnceLock;

    const ID: u32 = 1_234_567;

    fn id() -> ImageId {
        ImageId::new(ID).expect("id")
    }

    /// A synthetic 200 dpi A4 page: grey "text" lines all over, ink in every corner.
    fn page() -> DynamicImage {
        let (w, h) = (1654u32, 2339u32);
        let mut img = RgbImage::from_pixel(w, h, Rgb([250, 250, 245]));
        for line in 0..60u32 {
            let y = 80 + line * 36;
            for word in 0..12u32 {
                let x = 60 + word * 128 + (line * 17 % 40);
                fill(&mut img, x, y, 100, 14, Rgb([30, 30, 40]));
            }
        }
        DynamicImage::ImageRgb8(img)
    }

    /// The printed sheet, made once for all tests.
    fn sheet() -> &'static GrayImage {
        static SHEET: OnceLock<GrayImage> = OnceLock::new();
        SHEET.get_or_init(|| DynamicImage::ImageRgb8(print_sheet(id(), &page())).into_luma8())
    }

    fn decode(img: GrayImage) -> Result<ImageId, MarkSheetError> {
        decode_sheet(&DynamicImage::ImageLuma8(img))
    }

    fn assert_reads(img: GrayImage, what: &str) {
        match decode(img) {
            Ok(found) => assert_eq!(found, id(), "{what}"),
            Err(e) => panic!("{what}: {e}"),
        }
    }

    /// Rotates about the centre by `degrees` (bilinear), keeping the canvas, white outside.
    fn rotate(img: &GrayImage, degrees: f32) -> GrayImage {
        let (w, h) = img.dimensions();
        let (s, c) = degrees.to_radians().sin_cos();
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        let src = img.as_raw();
        let at = |x: i64, y: i64| -> f32 {
            if x < 0 || y < 0 || x >= i64::from(w) || y >= i64::from(h) {
                255.0
            } else {
                f32::from(src[(y as usize) * w as usize + x as usize])
            }
        };
        GrayImage::from_fn(w, h, |x, y| {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            let sx = c * dx + s * dy + cx;
            let sy = -s * dx + c * dy + cy;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let v = at(x0, y0) * (1.0 - fx) * (1.0 - fy)
                + at(x0 + 1, y0) * fx * (1.0 - fy)
                + at(x0, y0 + 1) * (1.0 - fx) * fy
                + at(x0 + 1, y0 + 1) * fx * fy;
            Luma([v.round().clamp(0.0, 255.0) as u8])
        })
    }

    fn rescale(img: &GrayImage, dpi: u32) -> GrayImage {
        let (w, h) = img.dimensions();
        imageops::resize(img, w * dpi / 200, h * dpi / 200, FilterType::Triangle)
    }

    fn jpeg(img: &GrayImage, quality: u8) -> GrayImage {
        let mut bytes = Vec::new();
        JpegEncoder::new_with_quality(&mut bytes, quality)
            .encode_image(img)
            .expect("jpeg");
        image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg)
            .expect("decode jpeg")
            .into_luma8()
    }

    /// Deterministic salt-and-pepper noise on `share` of the pixels.
    fn noise(img: &GrayImage, share: f64, seed: u64) -> GrayImage {
        let mut state = seed | 1;
        let mut out = img.clone();
        let limit = (share * u32::MAX as f64) as u64;
        for p in out.pixels_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if (state & 0xffff_ffff) < limit {
                p.0[0] = if state >> 63 == 0 { 0 } else { 255 };
            }
        }
        out
    }

    #[test]
    fn the_payload_is_versioned() {
        assert_eq!(payload(id()), "IC1:01234567");
        assert_eq!(sheet_name(id()), "marksheet-01234567.png");
        assert!(matches!(classify("IC1:01234567"), Ok(x) if x == id()));
        assert!(matches!(
            classify("IC1:1234567"),
            Err(MarkSheetError::BadId(_))
        ));
        assert!(matches!(
            classify("IC2:01234567"),
            Err(MarkSheetError::UnsupportedVersion(_))
        ));
        assert!(matches!(
            classify("01234567"),
            Err(MarkSheetError::Foreign(_))
        ));
        let long = "https://example.com/a/very/long/path/that/goes/on";
        match classify(long) {
            Err(MarkSheetError::Foreign(q)) => {
                assert!(q.starts_with("https://example.com/"));
                assert!(q.chars().count() <= QUOTE_CHARS + 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_code_is_stamped_top_right_at_about_28_mm() {
        let sheet = sheet();
        let original = page().into_luma8();
        assert_eq!(sheet.dimensions(), (1654, 2339));
        // The stamp is where the sheet differs from the page: a patch near the top right.
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for (x, y, p) in sheet.enumerate_pixels() {
            if p != original.get_pixel(x, y) {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
        }
        let px_per_mm = 1654.0 / 210.0;
        let mm = |px: u32| px as f32 / px_per_mm;
        assert!(
            (7.0..9.5).contains(&mm(1653 - x1)),
            "right margin {}",
            mm(1653 - x1)
        );
        assert!((7.0..9.5).contains(&mm(y0)), "top margin {}", mm(y0));
        // Inside the patch, the code's dark modules span about 28 mm, quiet zone around.
        let (mut cx0, mut cx1) = (u32::MAX, 0);
        for y in y0..=y1 {
            for x in x0..=x1 {
                if sheet.get_pixel(x, y).0[0] < 128 {
                    (cx0, cx1) = (cx0.min(x), cx1.max(x));
                }
            }
        }
        let width = mm(cx1 + 1 - cx0);
        assert!((25.0..=30.0).contains(&width), "code is {width} mm wide");
        assert!(mm(cx0 - x0) >= 4.0, "quiet zone {} mm", mm(cx0 - x0));
        // The page content elsewhere is untouched.
        assert_eq!(sheet.get_pixel(100, 1000), original.get_pixel(100, 1000));
    }

    #[test]
    fn reads_a_clean_sheet() {
        assert_reads(sheet().clone(), "clean");
    }

    #[test]
    fn reads_a_sheet_rotated_a_few_degrees() {
        assert_reads(rotate(sheet(), 3.0), "+3°");
        assert_reads(rotate(sheet(), -3.0), "-3°");
    }

    #[test]
    fn reads_a_sheet_fed_sideways_or_upside_down() {
        assert_reads(imageops::rotate90(sheet()), "90°");
        assert_reads(imageops::rotate180(sheet()), "180°");
        assert_reads(imageops::rotate270(sheet()), "270°");
    }

    #[test]
    fn reads_a_sheet_rescanned_at_150_and_100_dpi() {
        assert_reads(rescale(sheet(), 150), "150 dpi");
        assert_reads(rescale(sheet(), 100), "100 dpi");
        assert_reads(rescale(sheet(), 300), "300 dpi");
    }

    #[test]
    fn reads_a_jpeg_quality_40_sheet() {
        assert_reads(jpeg(sheet(), 40), "JPEG 40");
    }

    #[test]
    fn reads_a_blurred_sheet() {
        assert_reads(imageops::blur(sheet(), 1.0), "blur sigma 1");
    }

    #[test]
    fn reads_a_low_contrast_sheet() {
        let mut low = sheet().clone();
        for p in low.pixels_mut() {
            p.0[0] = 90 + (u16::from(p.0[0]) * 80 / 255) as u8;
        }
        assert_reads(low, "grey 90..170");
    }

    #[test]
    fn reads_a_sheet_with_salt_and_pepper_noise() {
        // Seed 3 is a case where the noise defeats a plain read: the rescue passes must work.
        let noisy = noise(sheet(), 0.05, 3);
        let (x, y, side) = corner_origins(noisy.width(), noisy.height())[0];
        let corner = imageops::crop_imm(&noisy, x, y, side, side).to_image();
        assert!(
            qr_contents(&corner, None).is_empty(),
            "noise should defeat a plain read"
        );
        assert_reads(noisy, "5% salt and pepper");
        assert_reads(
            noise(&rescale(sheet(), 150), 0.10, 5),
            "150 dpi, 10% salt and pepper",
        );
    }

    #[test]
    fn reads_a_sheet_through_a_combination_of_faults() {
        let img = rotate(sheet(), 2.0);
        let img = rescale(&img, 150);
        let img = jpeg(&img, 40);
        assert_reads(noise(&img, 0.02, 11), "2° + 150 dpi + JPEG 40 + 2% noise");
    }

    #[test]
    fn a_foreign_code_is_refused_by_name() {
        // A stranger's QR code at the usual place on a 100 dpi page.
        let code = QrCode::new("https://example.com/menu").expect("qr");
        let img = code.render::<Luma<u8>>().module_dimensions(5, 5).build();
        let mut page = GrayImage::from_pixel(827, 1170, Luma([255]));
        imageops::replace(&mut page, &img, 827 - 40 - i64::from(img.width()), 40);
        match decode(page) {
            Err(MarkSheetError::Foreign(text)) => assert!(text.contains("example.com"), "{text}"),
            other => panic!("expected Foreign, got {other:?}"),
        }
    }

    #[test]
    fn a_blank_page_has_no_code() {
        let page = GrayImage::from_pixel(827, 1170, Luma([255]));
        let err = decode(page).expect_err("blank");
        assert!(matches!(err, MarkSheetError::NoCode));
        assert_eq!(err.to_string(), "no mark sheet code found on the page");
    }

    #[test]
    fn small_pages_get_a_readable_code_too() {
        let tiny = DynamicImage::ImageLuma8(GrayImage::from_pixel(40, 30, Luma([0])));
        let sheet = print_sheet(id(), &tiny);
        assert!(sheet.width() >= 40 && sheet.height() >= 30);
        let found = decode_sheet(&DynamicImage::ImageRgb8(sheet)).expect("tiny");
        assert_eq!(found, id());
    }

    #[test]
    fn decode_file_reads_a_png_and_names_unreadable_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(sheet_name(id()));
        sheet().save(&path).expect("save");
        assert_eq!(decode_file(&path).expect("decode"), id());
        let junk = dir.path().join("junk.png");
        std::fs::write(&junk, b"not an image").expect("write");
        let err = decode_file(&junk).expect_err("junk");
        assert!(matches!(err, MarkSheetError::Unreadable(_)));
        let text = err.to_string();
        assert!(
            text.contains("junk.png") && text.contains("not a PNG"),
            "{text}"
        );
        let err = decode_file(&dir.path().join("missing.png")).expect_err("missing");
        assert!(err.to_string().contains("missing.png"), "{err}");
    }

    #[test]
    fn the_white_png_generator_makes_a_valid_png() {
        let bytes = white_png::white_png(123, 45);
        let img = image::load_from_memory_with_format(&bytes, ImageFormat::Png)
            .expect("decode")
            .into_luma8();
        assert_eq!(img.dimensions(), (123, 45));
        assert!(img.pixels().all(|p| p.0[0] == 255));
    }

    #[test]
    fn a_20000_pixel_square_white_sheet_is_refused_from_its_header() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("white.png");
        let bytes = white_png::white_png(20_000, 20_000);
        assert!(bytes.len() < 1 << 20, "{} bytes", bytes.len());
        std::fs::write(&path, &bytes).expect("write");
        let err = decode_file(&path).expect_err("too large");
        assert!(matches!(
            err,
            MarkSheetError::TooLarge {
                width: 20_000,
                height: 20_000
            }
        ));
        assert_eq!(
            err.to_string(),
            "the scan is 20000x20000 pixels (400 megapixels); a mark sheet may have at most 40 megapixels (an A4 sheet at 600 dpi has 35): scan it at 300 dpi"
        );
        // Just over the ceiling is refused too; decoded images are held to it as well.
        let err = decode_sheet(&DynamicImage::ImageLuma8(GrayImage::new(8_001, 5_000)))
            .expect_err("over");
        assert!(
            err.to_string().contains("8001x5000 pixels (41 megapixels)"),
            "{err}"
        );
    }

    #[test]
    fn a_large_but_allowed_sheet_is_scaled_down_before_the_search() {
        // 400 dpi: 3308x4678, 15.5 megapixels, searched at about 9.
        let big = rescale(sheet(), 400);
        assert!(u64::from(big.width()) * u64::from(big.height()) > SEARCH_PIXELS);
        let small = scaled_for_search(&DynamicImage::ImageLuma8(big.clone())).expect("scaled");
        let pixels = u64::from(small.width()) * u64::from(small.height());
        assert!(
            pixels <= SEARCH_PIXELS && pixels > SEARCH_PIXELS * 9 / 10,
            "{pixels}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sheet-400dpi.png");
        big.save(&path).expect("save");
        assert_eq!(decode_file(&path).expect("decode"), id());
    }

    #[test]
    fn a_foreign_code_with_an_override_is_quoted_without_it() {
        assert_eq!(quote("pay\u{202e}gpj.exe\u{1b}[2J"), "pay?gpj.exe?[2J");
    }

    #[test]
    fn median9_is_the_median() {
        let mut state = 12345u32;
        for _ in 0..2000 {
            let mut p = [0u8; 9];
            for v in &mut p {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *v = (state >> 16) as u8;
            }
            let mut sorted = p;
            sorted.sort_unstable();
            assert_eq!(median9(p), sorted[4], "{p:?}");
        }
    }

    #[test]
    fn otsu_splits_ink_from_paper() {
        let img = GrayImage::from_fn(10, 10, |x, _| Luma([if x < 3 { 90 } else { 170 }]));
        let t = otsu_threshold(&img);
        assert!(t > 90 && t <= 170, "{t}");
    }

    #[test]
    #[ignore = "timing: run with --release -- --ignored --nocapture"]
    fn decode_timing() {
        let img = DynamicImage::ImageLuma8(sheet().clone());
        let mut times: Vec<std::time::Duration> = (0..21)
            .map(|_| {
                let start = std::time::Instant::now();
                let found = decode_sheet(&img).expect("decode");
                assert_eq!(found, id());
                start.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "decode_sheet 1654x2339 median {:?}, max {:?}",
            times[10], times[20]
        );
        let once = |what: &str, img: DynamicImage| {
            let start = std::time::Instant::now();
            let result = decode_sheet(&img);
            println!(
                "decode_sheet {what}: {:?} in {:?}",
                result.map_err(|e| e.to_string()),
                start.elapsed()
            );
        };
        once(
            "RGB sheet",
            DynamicImage::ImageRgb8(print_sheet(id(), &page())),
        );
        once(
            "upside down",
            DynamicImage::ImageLuma8(imageops::rotate180(sheet())),
        );
        once(
            "5% noise",
            DynamicImage::ImageLuma8(noise(sheet(), 0.05, 3)),
        );
        once("blank A4 (worst case)", page());
    }
}
