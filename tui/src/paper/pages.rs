//! Decoding the pages of a scanned file.
//!
//! PNG and JPEG go through the `image` crate; TIFF goes through the `tiff` crate page by page
//! (so multi-page files work), which also decodes CCITT Group 4 fax. CCITT Group 3 (1-D,
//! T.4) fax strips, which `tiff` cannot decode, are decoded here with the `fax` crate.
//!
//! All input is untrusted: the file type is sniffed from its first bytes (not its name), and
//! pages larger than [`MAX_DIMENSION`] on a side or files whose decoded pages would need more
//! than [`MAX_DECODED_BYTES`] are refused before the pixels are allocated.
//!
//! Bilevel pages come out as 8-bit grey, 0 = black ink, 255 = white paper, whatever the
//! file's PhotometricInterpretation tag says.

use std::convert::Infallible;
use std::io::{Cursor, Read};
use std::path::Path;

use image::{DynamicImage, ImageBuffer, ImageDecoder, ImageFormat, ImageReader};
use tiff::ColorType;
use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::Tag;

use super::PaperError;

/// The largest width or height, in pixels, of a page we decode (about 1.7 m at 300 dpi).
pub const MAX_DIMENSION: u32 = 20_000;
/// The most memory, in bytes, that the decoded pages of one file may take.
pub const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;
/// The most pages one file may hold.
pub const MAX_PAGES: usize = 1_000;
/// The largest file, in bytes, that we read at all.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The TIFF tag holding the Group 3 options (T4Options); the `tiff` crate has no name for it.
const TAG_T4_OPTIONS: u16 = 292;

/// Why the pages of a file could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The bytes are not a PNG, JPEG or TIFF file.
    #[error("not a PNG, JPEG or TIFF image")]
    UnknownFormat,
    /// The file itself is too large to read.
    #[error("the file has {bytes} bytes; at most {} MiB are accepted", MAX_FILE_BYTES >> 20)]
    FileTooLarge {
        /// The file's size in bytes.
        bytes: u64,
    },
    /// A page is wider or taller than [`MAX_DIMENSION`].
    #[error(
        "the page is {width}x{height} pixels; at most {MAX_DIMENSION}x{MAX_DIMENSION} are accepted"
    )]
    TooLarge {
        /// The page's width in pixels.
        width: u32,
        /// The page's height in pixels.
        height: u32,
    },
    /// The decoded pages would need more than [`MAX_DECODED_BYTES`].
    #[error(
        "the decoded pages would take {bytes} bytes of memory; at most {} MiB are accepted",
        MAX_DECODED_BYTES >> 20
    )]
    TooManyBytes {
        /// The memory the pages would need.
        bytes: u64,
    },
    /// The file holds more than [`MAX_PAGES`] pages.
    #[error("the file has more than {MAX_PAGES} pages")]
    TooManyPages,
    /// The file uses a feature this program does not decode.
    #[error("unsupported image: {0}")]
    Unsupported(String),
    /// The file is truncated or otherwise broken.
    #[error("damaged image: {0}")]
    Damaged(String),
    /// A decoder limit was hit.
    #[error("the image exceeds a decoding limit: {0}")]
    Limits(String),
    /// The error concerns one page of a multi-page file.
    #[error("page {page}: {source}")]
    OnPage {
        /// The page number, from 1.
        page: usize,
        /// What is wrong with that page.
        #[source]
        source: Box<PageError>,
    },
}

/// The kinds of file we read, told apart by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Png,
    Jpeg,
    Tiff,
}

fn sniff(bytes: &[u8]) -> Result<Kind, PageError> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG) {
        Ok(Kind::Png)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Ok(Kind::Jpeg)
    } else if [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"]
        .iter()
        .any(|magic| bytes.starts_with(*magic))
    {
        Ok(Kind::Tiff)
    } else {
        Err(PageError::UnknownFormat)
    }
}

/// Checks from its first bytes that a file is a PNG, JPEG or TIFF image: the one rule for
/// what a page is, used by the feeder (through [`check_pages`]) and by `imagecast send`.
pub fn check_image_kind(path: &Path) -> Result<(), PaperError> {
    let mut head = Vec::with_capacity(8);
    std::fs::File::open(path)
        .and_then(|f| f.take(8).read_to_end(&mut head))
        .map_err(|e| PaperError::io(path, e))?;
    sniff(&head).map(|_| ()).map_err(|source| PaperError::Page {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a whole file, refusing files larger than [`MAX_FILE_BYTES`].
pub fn read_file(path: &Path) -> Result<Vec<u8>, PaperError> {
    let file = std::fs::File::open(path).map_err(|e| PaperError::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| PaperError::io(path, e))?;
    let len = bytes.len() as u64;
    if len > MAX_FILE_BYTES {
        let bytes = std::fs::metadata(path).map_or(len, |m| m.len());
        return Err(PaperError::Page {
            path: path.to_path_buf(),
            source: PageError::FileTooLarge { bytes },
        });
    }
    Ok(bytes)
}

fn in_file(path: &Path) -> impl FnOnce(PageError) -> PaperError + '_ {
    move |source| PaperError::Page {
        path: path.to_path_buf(),
        source,
    }
}

/// Decodes every page of a PNG, JPEG or TIFF file (multi-page and CCITT G3/G4 fax included).
pub fn decode_pages(path: &Path) -> Result<Vec<DynamicImage>, PaperError> {
    let bytes = read_file(path)?;
    decode_pages_from_bytes(&bytes).map_err(in_file(path))
}

/// Decodes only the first page of a file (what a mark sheet reader needs).
pub fn decode_first_page(path: &Path) -> Result<DynamicImage, PaperError> {
    let bytes = read_file(path)?;
    first_page_from_bytes(&bytes).map_err(in_file(path))
}

/// Counts the pages of a file from its headers, without decoding pixels.
pub fn page_count(path: &Path) -> Result<usize, PaperError> {
    let bytes = read_file(path)?;
    page_count_from_bytes(&bytes).map_err(in_file(path))
}

/// The pages of received or stored files, a multi-page TIFF counting all its pages; a file
/// whose pages cannot be counted (a PC may send any file) counts as one.
pub fn count_pages(files: &[impl AsRef<Path>]) -> usize {
    files
        .iter()
        .map(|f| page_count(f.as_ref()).unwrap_or(1))
        .sum()
}

/// Decodes every page of an in-memory file; the pages together must fit [`MAX_DECODED_BYTES`].
pub fn decode_pages_from_bytes(bytes: &[u8]) -> Result<Vec<DynamicImage>, PageError> {
    let mut pages = Vec::new();
    let mut total: u64 = 0;
    for_each_page(bytes, &mut |page| {
        total += page.as_bytes().len() as u64;
        if total > MAX_DECODED_BYTES {
            return Err(PageError::TooManyBytes { bytes: total });
        }
        pages.push(page);
        Ok(true)
    })?;
    Ok(pages)
}

/// Decodes the first page of an in-memory file.
pub fn first_page_from_bytes(bytes: &[u8]) -> Result<DynamicImage, PageError> {
    let mut first = None;
    for_each_page(bytes, &mut |page| {
        first = Some(page);
        Ok(false)
    })?;
    first.ok_or_else(|| PageError::Damaged("the file has no pages".to_string()))
}

/// Decodes every page of an in-memory file, one at a time, keeping none: proves the file is
/// readable and returns its page count.
pub fn check_pages(bytes: &[u8]) -> Result<usize, PageError> {
    for_each_page(bytes, &mut |_| Ok(true))
}

/// Counts the pages of an in-memory file from its headers, without decoding pixels.
pub fn page_count_from_bytes(bytes: &[u8]) -> Result<usize, PageError> {
    match sniff(bytes)? {
        Kind::Png => single_decoder(bytes, ImageFormat::Png).map(|_| 1),
        Kind::Jpeg => single_decoder(bytes, ImageFormat::Jpeg).map(|_| 1),
        Kind::Tiff => {
            let mut decoder = tiff_decoder(bytes)?;
            let mut count = 1;
            while decoder.more_images() {
                count += 1;
                if count > MAX_PAGES {
                    return Err(PageError::TooManyPages);
                }
                decoder
                    .next_image()
                    .map_err(|e| on_page(count, tiff_error(e)))?;
            }
            Ok(count)
        }
    }
}

/// Calls `f` with each page in order until it returns `Ok(false)`; returns the pages seen.
fn for_each_page(
    bytes: &[u8],
    f: &mut dyn FnMut(DynamicImage) -> Result<bool, PageError>,
) -> Result<usize, PageError> {
    match sniff(bytes)? {
        Kind::Png => decode_single(bytes, ImageFormat::Png)
            .and_then(f)
            .map(|_| 1),
        Kind::Jpeg => decode_single(bytes, ImageFormat::Jpeg)
            .and_then(f)
            .map(|_| 1),
        Kind::Tiff => {
            let mut decoder = tiff_decoder(bytes)?;
            let mut count = 0;
            loop {
                count += 1;
                if count > MAX_PAGES {
                    return Err(PageError::TooManyPages);
                }
                let multi = count > 1 || decoder.more_images();
                let page = tiff_page(&mut decoder, bytes)
                    .map_err(|e| if multi { on_page(count, e) } else { e })?;
                if !f(page)? || !decoder.more_images() {
                    return Ok(count);
                }
                decoder
                    .next_image()
                    .map_err(|e| on_page(count + 1, tiff_error(e)))?;
            }
        }
    }
}

fn on_page(page: usize, source: PageError) -> PageError {
    PageError::OnPage {
        page,
        source: Box::new(source),
    }
}

fn check_dimensions(width: u32, height: u32) -> Result<(), PageError> {
    if width == 0 || height == 0 {
        return Err(PageError::Damaged(format!(
            "the page is {width}x{height} pixels"
        )));
    }
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(PageError::TooLarge { width, height });
    }
    Ok(())
}

fn check_bytes(bytes: u64) -> Result<(), PageError> {
    if bytes > MAX_DECODED_BYTES {
        Err(PageError::TooManyBytes { bytes })
    } else {
        Ok(())
    }
}

fn image_error(e: image::ImageError) -> PageError {
    match e {
        image::ImageError::Limits(l) => PageError::Limits(l.to_string()),
        image::ImageError::Unsupported(u) => PageError::Unsupported(u.to_string()),
        other => PageError::Damaged(other.to_string()),
    }
}

fn tiff_error(e: tiff::TiffError) -> PageError {
    match e {
        tiff::TiffError::UnsupportedError(u) => PageError::Unsupported(u.to_string()),
        tiff::TiffError::LimitsExceeded => {
            PageError::Limits("the TIFF decoder's memory limit".to_string())
        }
        other => PageError::Damaged(other.to_string()),
    }
}

/// Opens a PNG or JPEG decoder with limits and checks the page size before any pixel is read.
fn single_decoder(bytes: &[u8], format: ImageFormat) -> Result<impl ImageDecoder + '_, PageError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(image_error)?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height)?;
    check_bytes(decoder.total_bytes())?;
    Ok(decoder)
}

fn decode_single(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage, PageError> {
    let decoder = single_decoder(bytes, format)?;
    DynamicImage::from_decoder(decoder).map_err(image_error)
}

type TiffDecoder<'a> = Decoder<Cursor<&'a [u8]>>;

fn tiff_decoder(bytes: &[u8]) -> Result<TiffDecoder<'_>, PageError> {
    let max = usize::try_from(MAX_DECODED_BYTES).unwrap_or(usize::MAX);
    let mut limits = tiff::decoder::Limits::default();
    limits.decoding_buffer_size = max;
    limits.intermediate_buffer_size = max;
    Ok(Decoder::new(Cursor::new(bytes))
        .map_err(tiff_error)?
        .with_limits(limits))
}

fn tag(decoder: &mut TiffDecoder<'_>, tag: Tag) -> Result<Option<u64>, PageError> {
    decoder.find_tag_unsigned::<u64>(tag).map_err(tiff_error)
}

/// Decodes the TIFF page the decoder stands on.
fn tiff_page(decoder: &mut TiffDecoder<'_>, bytes: &[u8]) -> Result<DynamicImage, PageError> {
    let (width, height) = decoder.dimensions().map_err(tiff_error)?;
    check_dimensions(width, height)?;
    match tag(decoder, Tag::Compression)?.unwrap_or(1) {
        2 => {
            return Err(PageError::Unsupported(
                "CCITT modified Huffman compression (TIFF compression 2); \
                 convert the file to Group 4, e.g. `tiffcp -c g4`"
                    .to_string(),
            ));
        }
        3 => return fax3_page(decoder, bytes, width, height),
        _ => {}
    }
    let color = decoder.colortype().map_err(tiff_error)?;
    let pixels = u64::from(width) * u64::from(height);
    let samples = match color {
        ColorType::Gray(_) => 1,
        ColorType::GrayA(_) => 2,
        ColorType::RGB(_) | ColorType::Palette(_) => 3,
        ColorType::RGBA(_) | ColorType::CMYK(_) => 4,
        _ => 4,
    };
    let sample_bytes = u64::from(color.bit_depth().div_ceil(8)).max(1);
    check_bytes(pixels * samples * sample_bytes)?;
    let palette = if matches!(color, ColorType::Palette(_)) {
        Some(
            decoder
                .get_tag_u16_vec(Tag::ColorMap)
                .map_err(|_| PageError::Damaged("palette image without colour map".to_string()))?,
        )
    } else {
        None
    };
    let data = decoder.read_image().map_err(tiff_error)?;
    tiff_to_dynamic(color, width, height, data, palette.as_deref())
}

/// Converts decoded TIFF samples (normalised by `tiff` so that 0 is black) to an image.
fn tiff_to_dynamic(
    color: ColorType,
    width: u32,
    height: u32,
    data: DecodingResult,
    palette: Option<&[u16]>,
) -> Result<DynamicImage, PageError> {
    fn short() -> PageError {
        PageError::Damaged("the pixel data is shorter than the page".to_string())
    }
    use DecodingResult as D;
    let image = match (color, data) {
        (ColorType::Gray(8), D::U8(v)) => {
            DynamicImage::ImageLuma8(ImageBuffer::from_raw(width, height, v).ok_or_else(short)?)
        }
        (ColorType::Gray(16), D::U16(v)) => {
            DynamicImage::ImageLuma16(ImageBuffer::from_raw(width, height, v).ok_or_else(short)?)
        }
        (ColorType::Gray(bits @ (1 | 2 | 4)), D::U8(v)) => {
            let max = (1u16 << bits) - 1;
            let grey = unpack_samples(&v, width, height, bits)?
                .into_iter()
                .map(|s| u8::try_from(u16::from(s) * 255 / max).unwrap_or(u8::MAX))
                .collect();
            DynamicImage::ImageLuma8(ImageBuffer::from_raw(width, height, grey).ok_or_else(short)?)
        }
        (ColorType::GrayA(8), D::U8(v)) => {
            DynamicImage::ImageLumaA8(ImageBuffer::from_raw(width, height, v).ok_or_else(short)?)
        }
        (ColorType::GrayA(16), D::U16(v)) => {
            DynamicImage::ImageLumaA16(ImageBuffer::from_raw(width, height, v).ok_or_else(short)?)
        }
        (ColorType::RGB(8), D::U8(v)) => {
            DynamicImage::ImageRgb8(ImageBuffer::from_raw(width, height, v).ok_or_else(short)?)
        }
        (ColorType::RGB(16), D::U16(v)) => {
            DynamicImage::ImageRgb16(ImageBuffer::from_raw(width, height, v).ok_or_else(short)?)
        }
        (ColorType::RGBA(8), D::U8(v)) => {
            DynamicImage::ImageRgba8(ImageBuffer::from_raw(width, height, v).ok_or_else(short)?)
        }
        (ColorType::RGBA(16), D::U16(v)) => {
            DynamicImage::ImageRgba16(ImageBuffer::from_raw(width, height, v).ok_or_else(short)?)
        }
        (ColorType::CMYK(8), D::U8(v)) => {
            let rgb = v
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = 255 - u16::from(p[3]);
                    [0, 1, 2]
                        .map(|i| u8::try_from((255 - u16::from(p[i])) * k / 255).unwrap_or(u8::MAX))
                })
                .collect();
            DynamicImage::ImageRgb8(ImageBuffer::from_raw(width, height, rgb).ok_or_else(short)?)
        }
        (ColorType::Palette(bits @ (1 | 2 | 4 | 8)), D::U8(v)) => {
            let entries = 1usize << bits;
            let map = palette
                .filter(|m| m.len() == 3 * entries)
                .ok_or_else(|| PageError::Damaged("the colour map has the wrong size".into()))?;
            let indices = if bits == 8 {
                v
            } else {
                unpack_samples(&v, width, height, bits)?
            };
            let rgb = indices
                .iter()
                .flat_map(|&i| {
                    let i = usize::from(i);
                    [0, 1, 2].map(|c| (map[c * entries + i] >> 8) as u8)
                })
                .collect();
            DynamicImage::ImageRgb8(ImageBuffer::from_raw(width, height, rgb).ok_or_else(short)?)
        }
        (color, _) => {
            return Err(PageError::Unsupported(format!(
                "TIFF pages of colour type {color:?}"
            )));
        }
    };
    Ok(image)
}

/// Unpacks rows of 1-, 2- or 4-bit samples (most significant bits first, each row padded to a
/// whole byte) into one byte per sample.
fn unpack_samples(packed: &[u8], width: u32, height: u32, bits: u8) -> Result<Vec<u8>, PageError> {
    let width = width as usize;
    let bits = usize::from(bits);
    let row_bytes = (width * bits).div_ceil(8);
    let needed = row_bytes * height as usize;
    let packed = packed
        .get(..needed)
        .ok_or_else(|| PageError::Damaged("the pixel data is shorter than the page".to_string()))?;
    let mask = (1u8 << bits) - 1;
    let mut out = Vec::with_capacity(width * height as usize);
    for row in packed.chunks_exact(row_bytes) {
        out.extend((0..width).map(|x| {
            let bit = x * bits;
            let shift = 8 - bits - bit % 8;
            (row[bit / 8] >> shift) & mask
        }));
    }
    Ok(out)
}

/// Decodes a CCITT Group 3 (T.4, one-dimensional) page strip by strip with the `fax` crate.
///
/// The fax code's "white" runs are zero bits, as in libtiff; the PhotometricInterpretation tag
/// says whether a zero bit is white paper (WhiteIsZero, the fax norm) or black ink.
fn fax3_page(
    decoder: &mut TiffDecoder<'_>,
    bytes: &[u8],
    width: u32,
    height: u32,
) -> Result<DynamicImage, PageError> {
    let white_is_zero = match tag(decoder, Tag::PhotometricInterpretation)?.unwrap_or(0) {
        0 => true,
        1 => false,
        other => {
            return Err(PageError::Unsupported(format!(
                "Group 3 fax with photometric interpretation {other}"
            )));
        }
    };
    let options = tag(decoder, Tag::Unknown(TAG_T4_OPTIONS))?.unwrap_or(0);
    if options & 1 != 0 {
        return Err(PageError::Unsupported(
            "two-dimensional Group 3 fax coding; convert the file to Group 4, \
             e.g. `tiffcp -c g4`"
                .to_string(),
        ));
    }
    if options & 2 != 0 {
        return Err(PageError::Unsupported(
            "Group 3 fax with uncompressed mode".to_string(),
        ));
    }
    let reversed = match tag(decoder, Tag::FillOrder)?.unwrap_or(1) {
        1 => false,
        2 => true,
        other => return Err(PageError::Damaged(format!("fill order {other}"))),
    };
    let offsets = decoder
        .get_tag_u64_vec(Tag::StripOffsets)
        .map_err(tiff_error)?;
    let counts = decoder
        .get_tag_u64_vec(Tag::StripByteCounts)
        .map_err(tiff_error)?;
    let rows_per_strip = match tag(decoder, Tag::RowsPerStrip)? {
        Some(0) | None => u64::from(height),
        Some(n) => n.min(u64::from(height)),
    } as usize;
    let (w, h) = (width as usize, height as usize);
    let strips = h.div_ceil(rows_per_strip);
    if offsets.len() < strips || counts.len() < strips {
        return Err(PageError::Damaged(format!(
            "the page needs {strips} strips but the file locates {}",
            offsets.len().min(counts.len())
        )));
    }
    let mut pixels = vec![255u8; w * h];
    for (strip, rows) in pixels.chunks_mut(rows_per_strip * w).enumerate() {
        let outside = || PageError::Damaged(format!("strip {} lies outside the file", strip + 1));
        let start = usize::try_from(offsets[strip]).map_err(|_| outside())?;
        let len = usize::try_from(counts[strip]).map_err(|_| outside())?;
        let data = start
            .checked_add(len)
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(outside)?;
        decode_g3_strip(data, reversed, width, rows, white_is_zero).map_err(|row| {
            PageError::Damaged(format!(
                "the Group 3 fax data is broken at row {}",
                strip * rows_per_strip + row + 1
            ))
        })?;
    }
    ImageBuffer::from_raw(width, height, pixels)
        .map(DynamicImage::ImageLuma8)
        .ok_or_else(|| PageError::Damaged("page size".to_string()))
}

/// Decodes the rows of one Group 3 strip into `out` (`width` bytes a row); on failure returns
/// the row (from 0 within the strip) where the data broke.
fn decode_g3_strip(
    data: &[u8],
    reversed: bool,
    width: u32,
    out: &mut [u8],
    white_is_zero: bool,
) -> Result<(), usize> {
    use fax::decoder::{DecodeStatus, Group3Decoder};
    let input = data
        .iter()
        .map(move |&b| Ok::<u8, Infallible>(if reversed { b.reverse_bits() } else { b }));
    let mut decoder = Group3Decoder::new(input).map_err(|_| 0usize)?;
    let rows = out.len() / width as usize;
    for (index, row) in out.chunks_exact_mut(width as usize).enumerate() {
        let ended = match decoder.advance() {
            Ok(DecodeStatus::Incomplete) => false,
            Ok(DecodeStatus::End) => true,
            // The last row of a strip need not be followed by an end-of-line code.
            Err(_) if index + 1 == rows => true,
            Err(_) => return Err(index),
        };
        for (px, color) in row
            .iter_mut()
            .zip(fax::decoder::pels(decoder.transitions(), width))
        {
            *px = if (color == fax::Color::White) == white_is_zero {
                255
            } else {
                0
            };
        }
        if ended {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    /// Black pixels of the fixtures' first page (see tests/fixtures/make_fax_fixtures.py).
    const FAX_PAGE1_BLACK: usize = 60 * 40 + 220 * 6 + 6 * 50;
    const FAX_PAGE2_BLACK: usize = 100 * 40 + 6 * 100;

    fn black_count(img: &DynamicImage) -> usize {
        img.to_luma8().pixels().filter(|p| p.0[0] < 128).count()
    }

    fn assert_fax_page1(img: &DynamicImage) {
        let g = img.to_luma8();
        assert_eq!(g.dimensions(), (240, 120));
        assert_eq!(g.get_pixel(40, 40).0[0], 0, "inside the block is black");
        assert_eq!(g.get_pixel(5, 5).0[0], 255, "the paper is white");
        assert_eq!(g.get_pixel(152, 65).0[0], 0, "the thin stroke is black");
        assert_eq!(g.get_pixel(120, 92).0[0], 0, "the rule is black");
        assert_eq!(g.get_pixel(239, 119).0[0], 255);
        assert_eq!(black_count(img), FAX_PAGE1_BLACK);
    }

    fn text_page() -> RgbImage {
        let mut img = RgbImage::from_pixel(120, 80, Rgb([255, 255, 255]));
        for y in 20..30 {
            for x in 10..100 {
                img.put_pixel(x, y, Rgb([0, 0, 0]));
            }
        }
        img
    }

    fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).expect("encode");
        out.into_inner()
    }

    #[test]
    fn decodes_png_and_jpeg_with_black_on_white() {
        let page = DynamicImage::ImageRgb8(text_page());
        for format in [ImageFormat::Png, ImageFormat::Jpeg] {
            let bytes = encode(&page, format);
            let pages = decode_pages_from_bytes(&bytes).expect("decode");
            assert_eq!(pages.len(), 1, "{format:?}");
            let g = pages[0].to_luma8();
            assert!(
                g.get_pixel(50, 25).0[0] < 40,
                "{format:?}: text stays black"
            );
            assert!(
                g.get_pixel(5, 5).0[0] > 215,
                "{format:?}: paper stays white"
            );
            assert_eq!(page_count_from_bytes(&bytes).expect("count"), 1);
        }
    }

    #[test]
    fn decodes_a_three_page_tiff_written_by_the_tiff_crate() {
        let mut out = Cursor::new(Vec::new());
        {
            let mut enc = tiff::encoder::TiffEncoder::new(&mut out).expect("encoder");
            for n in 0..3u8 {
                let mut g = GrayImage::from_pixel(64, 32, Luma([255]));
                g.put_pixel(u32::from(n) * 10, 5, Luma([0]));
                enc.write_image::<tiff::encoder::colortype::Gray8>(64, 32, g.as_raw())
                    .expect("page");
            }
            let rgb = text_page();
            enc.write_image::<tiff::encoder::colortype::RGB8>(120, 80, rgb.as_raw())
                .expect("rgb page");
        }
        let bytes = out.into_inner();
        assert_eq!(page_count_from_bytes(&bytes).expect("count"), 4);
        assert_eq!(check_pages(&bytes).expect("check"), 4);
        let pages = decode_pages_from_bytes(&bytes).expect("decode");
        assert_eq!(pages.len(), 4);
        for (n, page) in pages.iter().take(3).enumerate() {
            let g = page.to_luma8();
            assert_eq!(g.dimensions(), (64, 32));
            assert_eq!(g.get_pixel(n as u32 * 10, 5).0[0], 0, "page {n}");
            assert_eq!(g.get_pixel(n as u32 * 10 + 1, 5).0[0], 255, "page {n}");
        }
        assert_eq!(pages[3].to_rgb8().get_pixel(50, 25), &Rgb([0, 0, 0]));
        let first = first_page_from_bytes(&bytes).expect("first");
        assert_eq!(first.width(), 64);
    }

    #[test]
    fn decodes_group4_fax_in_both_polarities() {
        for name in ["g4-miniswhite.tif", "g4-minisblack.tif"] {
            let pages = decode_pages(&fixture(name)).expect(name);
            assert_eq!(pages.len(), 1, "{name}");
            assert_fax_page1(&pages[0]);
        }
    }

    #[test]
    fn decodes_group3_fax_multi_page_multi_strip_and_fill_bits() {
        let path = fixture("g3-2pages.tif");
        assert_eq!(page_count(&path).expect("count"), 2);
        let pages = decode_pages(&path).expect("g3");
        assert_eq!(pages.len(), 2);
        assert_fax_page1(&pages[0]);
        let g = pages[1].to_luma8();
        assert_eq!(g.get_pixel(150, 60).0[0], 0);
        assert_eq!(g.get_pixel(50, 60).0[0], 255);
        assert_eq!(black_count(&pages[1]), FAX_PAGE2_BLACK);

        let pages = decode_pages(&fixture("g3-fill-minisblack.tif")).expect("g3 fill");
        assert_fax_page1(&pages[0]);
    }

    #[test]
    fn two_dimensional_group3_is_refused_clearly() {
        let err = decode_pages(&fixture("g3-2d.tif")).expect_err("2-D G3");
        let text = err.to_string();
        assert!(text.contains("g3-2d.tif"), "{text}");
        assert!(text.contains("two-dimensional Group 3"), "{text}");
    }

    #[test]
    fn refuses_garbage_truncated_and_huge_input() {
        assert!(matches!(
            decode_pages_from_bytes(b"hello, world"),
            Err(PageError::UnknownFormat)
        ));
        let png = encode(&DynamicImage::ImageRgb8(text_page()), ImageFormat::Png);
        let cut = &png[..png.len() / 2];
        assert!(matches!(
            decode_pages_from_bytes(cut),
            Err(PageError::Damaged(_))
        ));
        // A PNG header claiming 30000x30000 pixels is refused before decoding.
        let mut huge = png.clone();
        huge[16..20].copy_from_slice(&30_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&30_000u32.to_be_bytes());
        match decode_pages_from_bytes(&huge) {
            Err(PageError::TooLarge { width, height }) => {
                assert_eq!((width, height), (30_000, 30_000))
            }
            // The PNG decoder checks the header CRC first; that is a clear refusal too.
            Err(PageError::Damaged(_)) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(check_dimensions(20_001, 10).is_err());
        assert!(check_dimensions(20_000, 20_000).is_ok());
    }

    #[test]
    fn a_huge_tiff_header_is_refused_before_allocation() {
        let mut out = Cursor::new(Vec::new());
        {
            let mut enc = tiff::encoder::TiffEncoder::new(&mut out).expect("encoder");
            enc.write_image::<tiff::encoder::colortype::Gray8>(4, 4, &[255; 16])
                .expect("page");
        }
        let mut bytes = out.into_inner();
        // Claim a width of 50000 pixels: refused from the header, before any pixel is read.
        let patched = patch_tiff_dimension(&mut bytes, 256, 50_000);
        assert!(patched, "found the width tag");
        let err = decode_pages_from_bytes(&bytes).expect_err("too large");
        assert!(
            matches!(err, PageError::TooLarge { width: 50_000, .. }),
            "{err}"
        );
    }

    /// Rewrites the value of a SHORT or LONG tag in the first IFD of a little-endian TIFF.
    fn patch_tiff_dimension(bytes: &mut [u8], tag: u16, value: u32) -> bool {
        let ifd = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        let n = u16::from_le_bytes([bytes[ifd], bytes[ifd + 1]]) as usize;
        for i in 0..n {
            let e = ifd + 2 + 12 * i;
            if u16::from_le_bytes([bytes[e], bytes[e + 1]]) == tag {
                bytes[e + 2..e + 4].copy_from_slice(&4u16.to_le_bytes());
                bytes[e + 8..e + 12].copy_from_slice(&value.to_le_bytes());
                return true;
            }
        }
        false
    }

    #[test]
    fn unreadable_files_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.png");
        let err = decode_pages(&missing).expect_err("missing");
        assert!(matches!(err, PaperError::Io { .. }));
        assert!(err.to_string().contains("missing.png"));
        let junk = dir.path().join("junk.tif");
        std::fs::write(&junk, b"II*\0garbage").expect("write");
        let err = decode_first_page(&junk).expect_err("junk");
        assert!(err.to_string().contains("junk.tif"), "{err}");
    }

    #[test]
    fn unpacks_sub_byte_samples() {
        // 3 pixels of 2 bits, 2 rows, rows padded to a byte.
        let packed = [0b00_01_10_00, 0b11_00_01_00];
        let out = unpack_samples(&packed, 3, 2, 2).expect("unpack");
        assert_eq!(out, vec![0, 1, 2, 3, 0, 1]);
        assert!(unpack_samples(&packed, 3, 3, 2).is_err());
    }
}
