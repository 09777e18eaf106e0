//! Multi-page fax TIFFs, written with the `tiff` crate's directory API and read back through
//! this crate's decoders.
//!
//! Every page is one image directory with the tags fax software expects (TIFF 6.0 Class F):
//!
//! | tag | value |
//! |---|---|
//! | ImageWidth / ImageLength | 1728 / the page's rows |
//! | BitsPerSample, SamplesPerPixel | 1, 1 |
//! | Compression | 3 (T.4, with T4Options 0: one-dimensional, no fill bits) or 4 (T.6, with T6Options 0) |
//! | PhotometricInterpretation | 0, WhiteIsZero: a set bit is black, as on the line |
//! | FillOrder | 1, most significant bit first |
//! | XResolution / YResolution / ResolutionUnit | 204 / 98 or 196 / 2 (inch) |
//! | RowsPerStrip, StripOffsets, StripByteCounts | all rows in one strip |
//! | NewSubfileType, PageNumber | 2 (a page of a multi-page document), page k of n |
//!
//! (`fax::tiff::wrap` writes one page at 200 × 200 dpi, which is wrong for fax.)

use std::io::Cursor;
use std::path::Path;

use tiff::decoder::Decoder;
use tiff::encoder::{Rational, TiffEncoder};
use tiff::tags::Tag;

use crate::coding::{self, Coding};
use crate::page::{FAX_WIDTH, FaxPage, MAX_ROWS, Resolution, X_DPI};

const T4_OPTIONS: Tag = Tag::Unknown(292);
const T6_OPTIONS: Tag = Tag::Unknown(293);
const PAGE_NUMBER: Tag = Tag::Unknown(297);

/// Errors writing or reading a fax TIFF.
#[derive(Debug, thiserror::Error)]
pub enum FaxTiffError {
    /// The TIFF structure could not be written or read.
    #[error("TIFF: {0}")]
    Tiff(#[from] tiff::TiffError),
    /// A page's data does not decode.
    #[error("page {page}: {source}")]
    Page {
        /// 1-based page number.
        page: usize,
        /// The decoder's complaint.
        source: coding::DecodeError,
    },
    /// Something else about the file is not a fax TIFF this crate reads.
    #[error("{0}")]
    Unsupported(String),
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// `pages` coded with `coding` as one multi-page fax TIFF.
pub fn write_fax_tiff(pages: &[FaxPage], coding: Coding) -> Result<Vec<u8>, FaxTiffError> {
    let mut out = Cursor::new(Vec::new());
    {
        let mut encoder = TiffEncoder::new(&mut out)?;
        let count = pages.len() as u16;
        for (i, page) in pages.iter().enumerate() {
            let data = coding::encode(page, coding);
            let mut dir = encoder.image_directory()?;
            let offset = dir.write_data(data.as_slice())? as u32;
            dir.write_tag(Tag::NewSubfileType, 2u32)?;
            dir.write_tag(Tag::ImageWidth, FAX_WIDTH)?;
            dir.write_tag(Tag::ImageLength, page.rows)?;
            dir.write_tag(Tag::BitsPerSample, 1u16)?;
            dir.write_tag(Tag::Compression, coding.tiff_compression())?;
            dir.write_tag(Tag::PhotometricInterpretation, 0u16)?;
            dir.write_tag(Tag::FillOrder, 1u16)?;
            dir.write_tag(Tag::StripOffsets, offset)?;
            dir.write_tag(Tag::SamplesPerPixel, 1u16)?;
            dir.write_tag(Tag::RowsPerStrip, page.rows)?;
            dir.write_tag(Tag::StripByteCounts, data.len() as u32)?;
            dir.write_tag(Tag::XResolution, Rational { n: X_DPI, d: 1 })?;
            dir.write_tag(
                Tag::YResolution,
                Rational {
                    n: page.resolution.y_dpi(),
                    d: 1,
                },
            )?;
            match coding {
                Coding::Mh => dir.write_tag(T4_OPTIONS, 0u32)?,
                Coding::G4 => dir.write_tag(T6_OPTIONS, 0u32)?,
            }
            dir.write_tag(Tag::ResolutionUnit, 2u16)?;
            dir.write_tag(PAGE_NUMBER, &[i as u16, count][..])?;
            dir.finish()?;
        }
    }
    Ok(out.into_inner())
}

/// Writes `pages` as a fax TIFF at `path` atomically and owner-only: the file appears whole
/// under its name or not at all (written beside it as `.NAME.part`, synced, renamed).
pub fn save_fax_tiff(path: &Path, pages: &[FaxPage], coding: Coding) -> Result<(), FaxTiffError> {
    use std::io::Write;
    let bytes = write_fax_tiff(pages, coding)?;
    let io = |source| FaxTiffError::Io {
        path: path.display().to_string(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| FaxTiffError::Unsupported(format!("{} names no file", path.display())))?;
    let part = path.with_file_name(format!(".{}.part", name.to_string_lossy()));
    let mut file = imagecast_shared::private::open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&part)
        .map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&part, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        // The rename is durable once the folder is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The vertical resolution of the current page in dots per inch, if its tags say.
pub(crate) fn y_dpi<R: std::io::Read + std::io::Seek>(decoder: &mut Decoder<R>) -> Option<f64> {
    let dpi = match decoder.find_tag(Tag::YResolution).ok()?? {
        tiff::decoder::ifd::Value::Rational(n, d) if d != 0 => f64::from(n) / f64::from(d),
        tiff::decoder::ifd::Value::Float(v) => f64::from(v),
        tiff::decoder::ifd::Value::Double(v) => v,
        tiff::decoder::ifd::Value::Short(v) => f64::from(v),
        tiff::decoder::ifd::Value::Unsigned(v) => f64::from(v),
        _ => return None,
    };
    let unit = decoder
        .find_tag_unsigned::<u16>(Tag::ResolutionUnit)
        .ok()
        .flatten()
        .unwrap_or(2);
    Some(if unit == 3 { dpi * 2.54 } else { dpi })
}

/// The pages of a fax TIFF (1728 pixels wide, Compression 3 one-dimensional or 4 on every
/// page), or `None` when its first page is coded some other way or is not 1728 wide.
pub fn read_fax_tiff(bytes: &[u8]) -> Result<Option<Vec<FaxPage>>, FaxTiffError> {
    let mut decoder = Decoder::new(Cursor::new(bytes))?;
    let mut pages = Vec::new();
    loop {
        let compression = decoder
            .find_tag_unsigned::<u16>(Tag::Compression)?
            .unwrap_or(1);
        let coding = match compression {
            3 => Coding::Mh,
            4 => Coding::G4,
            _ if pages.is_empty() => return Ok(None),
            other => {
                return Err(FaxTiffError::Unsupported(format!(
                    "page {} has compression {other} in a fax TIFF",
                    pages.len() + 1
                )));
            }
        };
        if coding == Coding::Mh {
            let options = decoder.find_tag_unsigned::<u32>(T4_OPTIONS)?.unwrap_or(0);
            if options & 1 != 0 {
                return Err(FaxTiffError::Unsupported(
                    "two-dimensional Group 3 pages are not read".into(),
                ));
            }
        }
        let (width, rows) = decoder.dimensions()?;
        if pages.is_empty() && width != FAX_WIDTH {
            // Fax-coded but not a fax page: an image to scale (the tiff crate decodes G4).
            return Ok(None);
        }
        if width != FAX_WIDTH || rows > MAX_ROWS {
            return Err(FaxTiffError::Unsupported(format!(
                "page {} is {width} × {rows}, not a fax page",
                pages.len() + 1
            )));
        }
        let white_is_zero = decoder
            .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)?
            .unwrap_or(0)
            == 0;
        let reversed = decoder
            .find_tag_unsigned::<u16>(Tag::FillOrder)?
            .unwrap_or(1)
            == 2;
        let resolution = y_dpi(&mut decoder).map_or(Resolution::Standard, Resolution::from_y_dpi);
        let offsets = decoder.get_tag_u64_vec(Tag::StripOffsets)?;
        let counts = decoder.get_tag_u64_vec(Tag::StripByteCounts)?;
        let per_strip = decoder
            .find_tag_unsigned::<u32>(Tag::RowsPerStrip)?
            .unwrap_or(rows)
            .max(1);
        let mut bits = Vec::new();
        let mut left = rows;
        for (offset, count) in offsets.iter().zip(&counts) {
            let strip_rows = left.min(per_strip);
            left -= strip_rows;
            let start = usize::try_from(*offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(usize::try_from(*count).unwrap_or(usize::MAX));
            let mut data = bytes
                .get(start..end)
                .ok_or_else(|| FaxTiffError::Unsupported("a strip lies outside the file".into()))?
                .to_vec();
            if reversed {
                data.iter_mut().for_each(|b| *b = b.reverse_bits());
            }
            let strip =
                coding::decode(&data, coding, resolution, strip_rows).map_err(|source| {
                    FaxTiffError::Page {
                        page: pages.len() + 1,
                        source,
                    }
                })?;
            bits.extend_from_slice(&strip.bits);
        }
        if left != 0 {
            return Err(FaxTiffError::Unsupported(format!(
                "page {} has too few strips for its rows",
                pages.len() + 1
            )));
        }
        if !white_is_zero {
            bits.iter_mut().for_each(|b| *b = !*b);
        }
        pages.push(FaxPage {
            resolution,
            rows,
            bits,
        });
        if !decoder.more_images() {
            break;
        }
        decoder.next_image()?;
    }
    Ok(Some(pages))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::coding::t4::tests::sample_pages;

    /// Runs a libtiff tool; a missing tool fails the test with what to install.
    fn libtiff(tool: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
        Command::new(tool).args(args).output().unwrap_or_else(|e| {
            panic!("cannot run {tool} ({e}): install the Debian package libtiff-tools (see faxgw/ci-packages.txt)")
        })
    }

    /// `tiffinfo -D` on `path`: every page's tags, and its data decoded by libtiff.
    pub(crate) fn tiffinfo(path: &Path) -> String {
        let out = libtiff("tiffinfo", &["-D".as_ref(), path.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tiffinfo failed: {stderr}");
        assert!(
            !stderr.to_lowercase().contains("error") && !stderr.to_lowercase().contains("warning"),
            "tiffinfo complained: {stderr}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pages of `path` decoded by libtiff (`tiffcp -c none`) and read uncompressed.
    pub(crate) fn libtiff_pages(path: &Path) -> Vec<FaxPage> {
        let plain = path.with_extension("plain.tif");
        let out = libtiff(
            "tiffcp",
            &[
                "-c".as_ref(),
                "none".as_ref(),
                path.as_os_str(),
                plain.as_os_str(),
            ],
        );
        assert!(
            out.status.success(),
            "tiffcp: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&plain).unwrap();
        let mut decoder = Decoder::new(Cursor::new(bytes)).unwrap();
        let mut pages = Vec::new();
        loop {
            let (w, rows) = decoder.dimensions().unwrap();
            assert_eq!(w, FAX_WIDTH);
            assert_eq!(
                decoder
                    .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)
                    .unwrap(),
                Some(0)
            );
            let resolution = Resolution::from_y_dpi(y_dpi(&mut decoder).unwrap());
            let tiff::decoder::DecodingResult::U8(mut bits) = decoder.read_image().unwrap() else {
                panic!("not 8-bit packed");
            };
            // The tiff crate returns BlackIsZero samples (it inverts WhiteIsZero itself).
            bits.iter_mut().for_each(|b| *b = !*b);
            pages.push(FaxPage {
                resolution,
                rows,
                bits,
            });
            if !decoder.more_images() {
                break;
            }
            decoder.next_image().unwrap();
        }
        pages
    }

    #[test]
    fn multi_page_fax_tiffs_pass_libtiff_and_decode_identically() {
        let dir = tempfile::tempdir().unwrap();
        let pages = sample_pages();
        for coding in [Coding::Mh, Coding::G4] {
            let path = dir.path().join(format!("{}.tif", coding.name()));
            save_fax_tiff(&path, &pages, coding).unwrap();
            let info = tiffinfo(&path);
            assert_eq!(
                info.matches("TIFF Directory").count(),
                pages.len(),
                "{info}"
            );
            let compression = match coding {
                Coding::Mh => "Compression Scheme: CCITT Group 3",
                Coding::G4 => "Compression Scheme: CCITT Group 4",
            };
            assert_eq!(info.matches(compression).count(), pages.len(), "{info}");
            assert_eq!(info.matches("Image Width: 1728").count(), pages.len());
            assert_eq!(
                info.matches("Photometric Interpretation: min-is-white")
                    .count(),
                pages.len()
            );
            assert_eq!(info.matches("FillOrder: msb-to-lsb").count(), pages.len());
            assert!(info.contains("Resolution: 204, 98 pixels/inch"), "{info}");
            assert!(info.contains("Resolution: 204, 196 pixels/inch"), "{info}");
            assert_eq!(
                libtiff_pages(&path),
                pages,
                "libtiff decodes other pixels ({coding:?})"
            );
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(read_fax_tiff(&bytes).unwrap().unwrap(), pages);
            // The page reader takes a fax TIFF unscaled, page for page.
            assert_eq!(
                crate::page::pages_from_file(&path, Resolution::Fine).unwrap(),
                pages
            );
        }
    }

    #[test]
    fn uncompressed_bilevel_1728_pages_are_sent_unscaled() {
        // libtiff turns our G4 file into an uncompressed bilevel one; the page reader must take
        // it pixel for pixel, with the polarity of its photometric tag.
        let dir = tempfile::tempdir().unwrap();
        let pages = sample_pages();
        let path = dir.path().join("g4.tif");
        save_fax_tiff(&path, &pages, Coding::G4).unwrap();
        let _ = libtiff_pages(&path);
        let plain = path.with_extension("plain.tif");
        let read = crate::page::pages_from_file(&plain, Resolution::Standard).unwrap();
        assert_eq!(read, pages);

        // Whatever the resolution tags say (300 × 300 dpi here), the rows are not rescaled:
        // a standard page tagged 300 dpi keeps its rows and is called fine.
        let standard = &pages[1];
        assert_eq!(standard.resolution, Resolution::Standard);
        let one = dir.path().join("one.tif");
        save_fax_tiff(&one, std::slice::from_ref(standard), Coding::G4).unwrap();
        let _ = libtiff_pages(&one);
        let plain = one.with_extension("plain.tif");
        for tag in ["282", "283"] {
            let args = [
                "-s".as_ref(),
                tag.as_ref(),
                "300".as_ref(),
                plain.as_os_str(),
            ];
            let out = libtiff("tiffset", &args);
            assert!(
                out.status.success(),
                "tiffset: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(tiffinfo(&plain).contains("Resolution: 300, 300 pixels/inch"));
        let read = crate::page::pages_from_file(&plain, Resolution::Standard).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(
            (read[0].rows, &read[0].bits),
            (standard.rows, &standard.bits)
        );
        assert_eq!(read[0].resolution, Resolution::Fine);
    }

    #[test]
    fn fax_tiffs_written_by_libtiff_are_read() {
        // libtiff rewrites our file as G3 with fill bits, G3 in reversed bit order, and G4, in
        // strips of 64 rows: the reader must give back the same pixels.
        let dir = tempfile::tempdir().unwrap();
        let pages = sample_pages();
        let ours = dir.path().join("ours.tif");
        save_fax_tiff(&ours, &pages, Coding::G4).unwrap();
        for (name, args) in [
            ("fill.tif", &["-c", "g3:1d:fill", "-r", "64"][..]),
            ("lsb.tif", &["-c", "g3:1d", "-f", "lsb2msb", "-r", "64"][..]),
            ("g4.tif", &["-c", "g4", "-r", "64"][..]),
        ] {
            let theirs = dir.path().join(name);
            let mut argv: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
            argv.push(ours.as_os_str());
            argv.push(theirs.as_os_str());
            let out = libtiff("tiffcp", &argv);
            assert!(
                out.status.success(),
                "tiffcp {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let read = read_fax_tiff(&std::fs::read(&theirs).unwrap())
                .unwrap()
                .unwrap();
            assert_eq!(read, pages, "{name}");
        }
    }

    #[test]
    fn the_written_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fax.tif");
        save_fax_tiff(&path, &sample_pages()[..1], Coding::Mh).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no part file is left"
        );
    }
}
