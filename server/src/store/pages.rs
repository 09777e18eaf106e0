//! How many pages a spooled page file holds, for the journal: a multi-page TIFF sent as one
//! file is as many pages as it has images (the receiving terminal says so too), anything else
//! is one.
//!
//! Only the TIFF's chain of image file directories (IFDs) is walked; no image is decoded. A
//! file that is not a TIFF, or whose first directory does not parse, counts one; a chain that
//! breaks or loops further on counts the directories read up to there.

use std::collections::HashSet;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use tiff::decoder::Decoder;

/// Most pages counted in one file (a chain can be long without holding anything).
const MAX_PAGES_IN_FILE: u32 = 100_000;

/// The pages of the file at `path`; 1 when it cannot be read.
pub fn count(path: &Path) -> u32 {
    match std::fs::File::open(path) {
        Ok(file) => count_in(BufReader::new(file)),
        Err(_) => 1,
    }
}

/// The pages of a file's bytes (see the module doc).
pub fn count_in<R: Read + Seek>(reader: R) -> u32 {
    let Ok(mut decoder) = Decoder::new(reader) else {
        return 1;
    };
    let Some(first) = decoder.ifd_pointer() else {
        return 1;
    };
    let mut seen = HashSet::from([first.0]);
    let mut next = match decoder.read_directory(first) {
        Ok(dir) => dir.next(),
        Err(_) => return 1,
    };
    let mut pages = 1;
    while let Some(ptr) = next {
        if pages >= MAX_PAGES_IN_FILE || !seen.insert(ptr.0) {
            break;
        }
        match decoder.read_directory(ptr) {
            Ok(dir) => {
                pages += 1;
                next = dir.next();
            }
            Err(_) => break,
        }
    }
    pages
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Cursor;

    use tiff::encoder::{TiffEncoder, colortype::Gray8};

    use super::*;

    fn tiff(pages: u32) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        {
            let mut enc = TiffEncoder::new(&mut out).unwrap();
            for p in 0..pages {
                let data: Vec<u8> = (0..64u32).map(|i| (i * (p + 1)) as u8).collect();
                enc.write_image::<Gray8>(8, 8, &data).unwrap();
            }
        }
        out.into_inner()
    }

    #[test]
    fn a_tiff_counts_its_images_and_anything_else_counts_one() {
        for n in [1, 2, 3, 7] {
            assert_eq!(count_in(Cursor::new(tiff(n))), n);
        }
        assert_eq!(count_in(Cursor::new(b"%PDF-1.7 not a tiff".to_vec())), 1);
        assert_eq!(count_in(Cursor::new(Vec::new())), 1);
        assert_eq!(
            count_in(Cursor::new(b"II*\0\xff\xff\xff\x7f".to_vec())),
            1,
            "no first IFD"
        );
        let mut cut = tiff(3);
        cut.truncate(cut.len() - 20);
        assert!(
            (1..=3).contains(&count_in(Cursor::new(cut))),
            "a broken chain"
        );
        assert_eq!(count(Path::new("/nonexistent/page")), 1);
    }

    #[test]
    fn a_looping_chain_counts_each_directory_once() {
        // A 2-page little-endian TIFF whose second directory points back at the first.
        let mut bytes = tiff(2);
        let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let next_field = |b: &[u8], ifd: usize| {
            let entries = u16::from_le_bytes(b[ifd..ifd + 2].try_into().unwrap()) as usize;
            ifd + 2 + 12 * entries
        };
        let first = u32_at(&bytes, 4) as usize;
        let second = u32_at(&bytes, next_field(&bytes, first)) as usize;
        let at = next_field(&bytes, second);
        assert_eq!(u32_at(&bytes, at), 0, "the chain ends at the second");
        bytes[at..at + 4].copy_from_slice(&(first as u32).to_le_bytes());
        assert_eq!(count_in(Cursor::new(bytes)), 2);
    }
}
