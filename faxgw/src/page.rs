//! Fax pages: 1728 bilevel pixels a row at 204 dpi across, 98 (standard) or 196 (fine) rows
//! an inch down, and the conversion of any image file into them.
//!
//! A [`FaxPage`] holds its rows packed eight pixels a byte, most significant bit first, a set
//! bit black: the layout the coders and the TIFF writer share. [`pages_from_file`] reads PNG,
//! JPEG and TIFF files; each page of a multi-page TIFF becomes one fax page. A bilevel page
//! that is already 1728 pixels wide is taken as it is, whatever its resolution tags say (a fax
//! received elsewhere is forwarded unchanged); every other image is scaled to the fax width,
//! keeping its aspect for the vertical resolution, and thresholded at half grey.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Pixels in a fax row (ITU-T T.4 A4 width at 8 pels/mm).
pub const FAX_WIDTH: u32 = 1728;
/// Bytes in a packed fax row.
pub const ROW_BYTES: usize = FAX_WIDTH as usize / 8;
/// The longest page accepted, in rows: a fine page of about 1.1 m. Longer input is an error
/// rather than a page that ties a line up for minutes.
pub const MAX_ROWS: u32 = 8192;
/// Horizontal resolution of every fax page, dots per inch.
pub const X_DPI: u32 = 204;

/// Vertical resolution of a fax page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolution {
    /// 3.85 lines/mm, 98 dpi.
    Standard,
    /// 7.7 lines/mm, 196 dpi.
    Fine,
}

impl Resolution {
    /// Rows per inch, as written in a fax TIFF's YResolution tag.
    pub fn y_dpi(self) -> u32 {
        match self {
            Resolution::Standard => 98,
            Resolution::Fine => 196,
        }
    }

    /// The resolution a vertical density (dots per inch) stands for: fine from 150 dpi up.
    pub fn from_y_dpi(dpi: f64) -> Resolution {
        if dpi >= 150.0 {
            Resolution::Fine
        } else {
            Resolution::Standard
        }
    }

    /// The word used in logs and the call log.
    pub fn name(self) -> &'static str {
        match self {
            Resolution::Standard => "standard",
            Resolution::Fine => "fine",
        }
    }
}

/// Errors turning a file into fax pages.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an image this crate reads, or is damaged.
    #[error("{path} is not a readable image: {reason}")]
    Image {
        /// The file.
        path: String,
        /// What the decoder said.
        reason: String,
    },
    /// The image holds no pixels or too many rows for a fax page.
    #[error("{path}: {reason}")]
    Size {
        /// The file.
        path: String,
        /// What is wrong with its size.
        reason: String,
    },
}

/// One fax page: `rows` rows of [`FAX_WIDTH`] pixels, packed (see the module doc).
#[derive(Clone, PartialEq, Eq)]
pub struct FaxPage {
    /// Vertical resolution.
    pub resolution: Resolution,
    /// Number of rows.
    pub rows: u32,
    /// `rows * ROW_BYTES` bytes, a set bit black, most significant bit leftmost.
    pub bits: Vec<u8>,
}

impl std::fmt::Debug for FaxPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaxPage")
            .field("resolution", &self.resolution)
            .field("rows", &self.rows)
            .field("black_pixels", &self.black_pixels())
            .finish()
    }
}

impl FaxPage {
    /// An all-white page.
    pub fn white(resolution: Resolution, rows: u32) -> FaxPage {
        FaxPage {
            resolution,
            rows,
            bits: vec![0; rows as usize * ROW_BYTES],
        }
    }

    /// Row `y`, packed.
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * ROW_BYTES;
        &self.bits[start..start + ROW_BYTES]
    }

    /// Row `y`, packed, for writing.
    pub fn row_mut(&mut self, y: u32) -> &mut [u8] {
        let start = y as usize * ROW_BYTES;
        &mut self.bits[start..start + ROW_BYTES]
    }

    /// True if pixel (`x`, `y`) is black.
    pub fn is_black(&self, x: u32, y: u32) -> bool {
        self.row(y)[x as usize / 8] & (0x80 >> (x % 8)) != 0
    }

    /// Sets pixel (`x`, `y`) black or white.
    pub fn set(&mut self, x: u32, y: u32, black: bool) {
        let mask = 0x80 >> (x % 8);
        let byte = &mut self.row_mut(y)[x as usize / 8];
        if black {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }

    /// How many pixels are black: a cheap fingerprint for logs and tests.
    pub fn black_pixels(&self) -> u64 {
        self.bits.iter().map(|b| u64::from(b.count_ones())).sum()
    }

    /// This page at standard resolution: a fine page keeps every other row, for a receiver
    /// that cannot print fine.
    pub fn to_standard(&self) -> FaxPage {
        if self.resolution == Resolution::Standard {
            return self.clone();
        }
        let rows = self.rows.div_ceil(2);
        let mut out = FaxPage::white(Resolution::Standard, rows);
        for y in 0..rows {
            out.row_mut(y).copy_from_slice(self.row(y * 2));
        }
        out
    }

    /// The page from a bilevel grid of `width` × `height` pixels given by `black(x, y)`,
    /// scaled to the fax width (nearest neighbour) unless it is already 1728 wide.
    fn from_grid(
        width: u32,
        height: u32,
        resolution: Resolution,
        rows: u32,
        black: impl Fn(u32, u32) -> bool,
    ) -> FaxPage {
        let mut page = FaxPage::white(resolution, rows);
        for y in 0..rows {
            let sy = (u64::from(y) * u64::from(height) / u64::from(rows.max(1))) as u32;
            for x in 0..FAX_WIDTH {
                let sx = (u64::from(x) * u64::from(width) / u64::from(FAX_WIDTH)) as u32;
                if black(sx.min(width - 1), sy.min(height - 1)) {
                    page.set(x, y, true);
                }
            }
        }
        page
    }
}

/// Rows of a fax page for an image of `width` × `height` square pixels scaled to the fax
/// width at `resolution`.
pub fn scaled_rows(width: u32, height: u32, resolution: Resolution) -> u32 {
    let rows = f64::from(height) * f64::from(FAX_WIDTH) / f64::from(width)
        * f64::from(resolution.y_dpi())
        / f64::from(X_DPI);
    (rows.round() as u32).max(1)
}

/// A grey image (0 black … 255 white) turned into a fax page: scaled to the fax width keeping
/// aspect, then thresholded at half grey.
pub fn from_gray(image: &image::GrayImage, resolution: Resolution) -> FaxPage {
    let (w, h) = image.dimensions();
    let rows = scaled_rows(w, h, resolution).min(MAX_ROWS);
    let scaled = image::imageops::resize(image, FAX_WIDTH, rows, image::imageops::Triangle);
    let mut page = FaxPage::white(resolution, rows);
    for (x, y, p) in scaled.enumerate_pixels() {
        if p.0[0] < 128 {
            page.set(x, y, true);
        }
    }
    page
}

/// Every page of `path` as fax pages at `resolution` (see the module doc for what is scaled).
pub fn pages_from_file(path: &Path, resolution: Resolution) -> Result<Vec<FaxPage>, PageError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| PageError::Io {
        path: shown.clone(),
        source,
    })?;
    pages_from_bytes(&bytes, resolution).map_err(|e| match e {
        Failure::Image(reason) => PageError::Image {
            path: shown,
            reason,
        },
        Failure::Size(reason) => PageError::Size {
            path: shown,
            reason,
        },
    })
}

enum Failure {
    Image(String),
    Size(String),
}

fn pages_from_bytes(bytes: &[u8], resolution: Resolution) -> Result<Vec<FaxPage>, Failure> {
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return tiff_pages(bytes, resolution);
    }
    let image = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Failure::Image(e.to_string()))?
        .decode()
        .map_err(|e| Failure::Image(e.to_string()))?;
    check_size(image.width(), image.height())?;
    check_scaled(image.width(), image.height(), resolution)?;
    Ok(vec![from_gray(&image.to_luma8(), resolution)])
}

fn check_size(width: u32, height: u32) -> Result<(), Failure> {
    if width == 0 || height == 0 {
        return Err(Failure::Size("the image holds no pixels".into()));
    }
    Ok(())
}

/// Refuses an image that would make a page longer than [`MAX_ROWS`] once scaled (rather than
/// squashing it).
fn check_scaled(width: u32, height: u32, resolution: Resolution) -> Result<(), Failure> {
    let rows = scaled_rows(width, height, resolution);
    if rows > MAX_ROWS {
        return Err(Failure::Size(format!(
            "a {width} × {height} image makes a page of {rows} rows, longer than {MAX_ROWS}"
        )));
    }
    Ok(())
}

/// The pages of a TIFF file: fax-coded pages through [`crate::tiff`], bilevel 1728-wide pages
/// unscaled, everything else through [`from_gray`].
fn tiff_pages(bytes: &[u8], resolution: Resolution) -> Result<Vec<FaxPage>, Failure> {
    use tiff::decoder::{Decoder, DecodingResult};

    if let Some(pages) =
        crate::tiff::read_fax_tiff(bytes).map_err(|e| Failure::Image(e.to_string()))?
    {
        return Ok(pages);
    }
    let mut decoder =
        Decoder::new(std::io::Cursor::new(bytes)).map_err(|e| Failure::Image(e.to_string()))?;
    let mut pages = Vec::new();
    loop {
        let (w, h) = decoder
            .dimensions()
            .map_err(|e| Failure::Image(e.to_string()))?;
        check_size(w, h)?;
        let bilevel_fax_width =
            w == FAX_WIDTH && decoder.colortype().ok() == Some(tiff::ColorType::Gray(1));
        if !bilevel_fax_width {
            check_scaled(w, h, resolution)?;
        }
        let colortype = decoder
            .colortype()
            .map_err(|e| Failure::Image(e.to_string()))?;
        let y_dpi = crate::tiff::y_dpi(&mut decoder);
        let data = decoder
            .read_image()
            .map_err(|e| Failure::Image(e.to_string()))?;
        let page = match (colortype, data) {
            (tiff::ColorType::Gray(1), DecodingResult::U8(buf)) => {
                let stride = w.div_ceil(8) as usize;
                if buf.len() < stride * h as usize {
                    return Err(Failure::Image("the TIFF page holds too little data".into()));
                }
                let black = |x: u32, y: u32| {
                    // The tiff crate hands samples over as BlackIsZero whatever the photometric
                    // tag says (it inverts WhiteIsZero pages itself): a set bit is white.
                    buf[y as usize * stride + x as usize / 8] & (0x80 >> (x % 8)) == 0
                };
                if w == FAX_WIDTH {
                    if h > MAX_ROWS {
                        return Err(Failure::Size(format!(
                            "a page of {h} rows is longer than {MAX_ROWS}"
                        )));
                    }
                    let res = y_dpi.map_or(resolution, Resolution::from_y_dpi);
                    FaxPage::from_grid(w, h, res, h, black)
                } else {
                    let rows = scaled_rows(w, h, resolution).min(MAX_ROWS);
                    FaxPage::from_grid(w, h, resolution, rows, black)
                }
            }
            (colortype, data) => {
                let gray = to_gray(w, h, colortype, data)?;
                from_gray(&gray, resolution)
            }
        };
        pages.push(page);
        if !decoder.more_images() {
            break;
        }
        decoder
            .next_image()
            .map_err(|e| Failure::Image(e.to_string()))?;
    }
    Ok(pages)
}

fn to_gray(
    w: u32,
    h: u32,
    colortype: tiff::ColorType,
    data: tiff::decoder::DecodingResult,
) -> Result<image::GrayImage, Failure> {
    use tiff::ColorType as C;
    use tiff::decoder::DecodingResult as D;
    let n = w as usize * h as usize;
    let luma: Vec<u8> = match (colortype, data) {
        (C::Gray(8), D::U8(b)) => b,
        (C::Gray(16), D::U16(b)) => b.iter().map(|v| (v >> 8) as u8).collect(),
        (C::RGB(8), D::U8(b)) => b
            .chunks_exact(3)
            .map(|p| {
                ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000)
                    as u8
            })
            .collect(),
        (C::RGBA(8), D::U8(b)) => b
            .chunks_exact(4)
            .map(|p| {
                ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000)
                    as u8
            })
            .collect(),
        (other, _) => {
            return Err(Failure::Image(format!(
                "TIFF pages of colour type {other:?} are not supported"
            )));
        }
    };
    if luma.len() < n {
        return Err(Failure::Image("the TIFF page holds too little data".into()));
    }
    let mut luma = luma;
    // Grey samples come as BlackIsZero: the tiff crate inverts WhiteIsZero pages itself.
    luma.truncate(n);
    image::GrayImage::from_raw(w, h, luma)
        .ok_or_else(|| Failure::Image("the TIFF page holds too little data".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_square_image_becomes_a_fax_page_of_the_right_length() {
        // 1000 × 1414 (A4 proportions) → 1728 wide, about 1174 rows at 98 dpi.
        let mut img = image::GrayImage::from_pixel(1000, 1414, image::Luma([255]));
        for x in 0..500 {
            for y in 0..100 {
                img.put_pixel(x, y, image::Luma([0]));
            }
        }
        let std = from_gray(&img, Resolution::Standard);
        let fine = from_gray(&img, Resolution::Fine);
        assert_eq!(std.rows, scaled_rows(1000, 1414, Resolution::Standard));
        assert!((1170..1180).contains(&std.rows), "{}", std.rows);
        assert!(fine.rows == std.rows * 2 || fine.rows == std.rows * 2 - 1);
        assert!(std.is_black(10, 10) && !std.is_black(1700, 10) && !std.is_black(10, 1000));
    }

    #[test]
    fn png_and_jpeg_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let img = image::GrayImage::from_fn(400, 300, |x, _| {
            image::Luma([if x < 200 { 0 } else { 255 }])
        });
        for name in ["a.png", "a.jpg"] {
            let path = dir.path().join(name);
            img.save(&path).unwrap();
            let pages = pages_from_file(&path, Resolution::Fine).unwrap();
            assert_eq!(pages.len(), 1);
            assert!(pages[0].is_black(100, 50) && !pages[0].is_black(1500, 50));
        }
        let junk = dir.path().join("junk.png");
        std::fs::write(&junk, b"not an image").unwrap();
        assert!(matches!(
            pages_from_file(&junk, Resolution::Fine),
            Err(PageError::Image { .. })
        ));
    }

    #[test]
    fn each_page_of_a_multi_page_grey_tiff_is_a_fax_page() {
        use tiff::encoder::{TiffEncoder, colortype::Gray8};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("two.tif");
        {
            let file = std::fs::File::create(&path).unwrap();
            let mut encoder = TiffEncoder::new(file).unwrap();
            for dark_left in [true, false] {
                let pixels: Vec<u8> = (0..200u32 * 100)
                    .map(|i| {
                        if ((i % 200) < 100) == dark_left {
                            0
                        } else {
                            255
                        }
                    })
                    .collect();
                encoder.write_image::<Gray8>(200, 100, &pixels).unwrap();
            }
        }
        let pages = pages_from_file(&path, Resolution::Standard).unwrap();
        assert_eq!(pages.len(), 2);
        assert!(pages[0].is_black(100, 20) && !pages[0].is_black(1600, 20));
        assert!(!pages[1].is_black(100, 20) && pages[1].is_black(1600, 20));
        assert_eq!(pages[0].rows, scaled_rows(200, 100, Resolution::Standard));

        // A strip 40 times longer than wide would make a page of over 8192 rows.
        let long = dir.path().join("long.png");
        image::GrayImage::new(100, 4000).save(&long).unwrap();
        let err = pages_from_file(&long, Resolution::Fine).unwrap_err();
        assert!(err.to_string().contains("longer than 8192"), "{err}");
    }

    #[test]
    fn fine_to_standard_keeps_every_other_row() {
        let mut page = FaxPage::white(Resolution::Fine, 5);
        page.set(3, 2, true);
        page.set(4, 3, true);
        let std = page.to_standard();
        assert_eq!(std.rows, 3);
        assert!(std.is_black(3, 1) && std.black_pixels() == 1);
    }
}
