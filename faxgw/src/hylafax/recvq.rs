//! The receive queue (`recvq/`): listing it, and what a received fax says about its sender.
//!
//! faxgetty stores each received fax as `recvq/faxNNNNNNNNN.tif` (mode `RecvFileMode`, 0600
//! by default) and writes the sender's TSI and the caller ID into the TIFF's
//! ImageDescription as `TSI\nCALLER NUMBER\nCALLER NAME`.

use std::io::Cursor;

use tiff::decoder::Decoder;
use tiff::decoder::ifd::Value;
use tiff::tags::Tag;

use super::HylafaxError;

/// The `RCVFMT` the driver lists the receive queue with: file name, pages, `*` while the fax
/// is still being received, size in bytes.
pub const RCV_FORMAT: &str = "%f|%p|%z|%n";
/// The most received faxes fetched in one poll.
pub const MAX_PER_POLL: usize = 16;
/// The largest received fax fetched, in bytes.
pub const MAX_FAX_BYTES: usize = 64 * 1024 * 1024;
/// The largest receive-queue listing read, in bytes.
pub const MAX_LISTING: usize = 1024 * 1024;
/// The longest caller number or name kept.
pub const MAX_CALLER: usize = 40;

/// A fax HylaFAX received, fetched from its receive queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFax {
    /// Its name in `recvq/` (`faxNNNNNNNNN.tif`): what [`super::HylafaxLine::remove_received`]
    /// takes.
    pub name: String,
    /// The TIFF as HylaFAX stored it (Group 3 or 4; FillOrder 2 from Class 1 modems).
    pub tiff: Vec<u8>,
    /// The sender's station ID (TSI): printable ASCII, at most 20 characters, may be empty.
    pub sender_station: String,
    /// The caller's number from caller ID, printable ASCII, may be empty.
    pub caller_number: String,
    /// The caller's name from caller ID, printable ASCII, may be empty.
    pub caller_name: String,
    /// Pages, as hfaxd counts them.
    pub pages: usize,
}

/// One line of the receive-queue listing in [`RCV_FORMAT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The file name in `recvq/`.
    pub name: String,
    /// Pages.
    pub pages: usize,
    /// Still being received (faxgetty holds its lock).
    pub receiving: bool,
    /// Size in bytes.
    pub size: u64,
}

/// Whether `name` is a received fax's name as HylaFAX gives them (`fax`, digits, `.tif`):
/// nothing else is ever put into a command.
pub fn is_fax_name(name: &str) -> bool {
    name.strip_prefix("fax")
        .and_then(|r| r.strip_suffix(".tif"))
        .is_some_and(|d| (1..=12).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks a name given to the driver (see [`is_fax_name`]).
pub fn check_fax_name(name: &str) -> Result<(), HylafaxError> {
    if is_fax_name(name) {
        Ok(())
    } else {
        Err(HylafaxError::InvalidName(super::reply::shown(name)))
    }
}

/// Parses a listing in [`RCV_FORMAT`]; lines that do not fit (or name no received fax) are
/// skipped.
pub fn parse_listing(text: &str) -> Vec<Listed> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.trim_end_matches('\r').split('|');
            let name = f.next()?.trim();
            let pages = f.next()?.trim().parse().ok()?;
            let receiving = f.next()?.trim() == "*";
            let size = f.next()?.trim().parse().ok()?;
            is_fax_name(name).then(|| Listed {
                name: name.to_owned(),
                pages,
                receiving,
                size,
            })
        })
        .collect()
}

/// Printable ASCII only (anything else becomes `?`), at most `max` characters, trimmed.
fn printable(raw: &str, max: usize) -> String {
    raw.chars()
        .take(max)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The sender's TSI, caller number and caller name from a received fax's first
/// ImageDescription, made safe; empty strings when the TIFF has none.
pub fn sender_of(tiff: &[u8]) -> (String, String, String) {
    let description = Decoder::new(Cursor::new(tiff))
        .ok()
        .and_then(|mut d| d.find_tag(Tag::ImageDescription).ok().flatten())
        .and_then(|v| match v {
            Value::Ascii(s) => Some(s),
            _ => None,
        })
        .unwrap_or_default();
    let mut lines = description.split('\n');
    let tsi = crate::sim::peer_station(lines.next().unwrap_or("").trim());
    let number = printable(lines.next().unwrap_or(""), MAX_CALLER);
    let name = printable(lines.next().unwrap_or(""), MAX_CALLER);
    (tsi, number, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_listing_and_checks_names() {
        // As hfaxd 6.0.7 answered `LIST recvq` with this RCVFMT.
        let listing = "fax000000001.tif|1| |5147\r\nfax000000002.tif|3|*|0\r\n\
../etc/x|1| |5\r\nnonsense\r\n";
        let got = parse_listing(listing);
        assert_eq!(
            got,
            vec![
                Listed {
                    name: "fax000000001.tif".into(),
                    pages: 1,
                    receiving: false,
                    size: 5147
                },
                Listed {
                    name: "fax000000002.tif".into(),
                    pages: 3,
                    receiving: true,
                    size: 0
                }
            ]
        );
        assert!(is_fax_name("fax000000123.tif"));
        for bad in [
            "fax.tif",
            "fax12.tiff",
            "../fax1.tif",
            "fax1.tif\r\nDELE x",
            "fax1234567890123.tif",
        ] {
            assert!(!is_fax_name(bad), "{bad}");
            assert!(check_fax_name(bad).is_err());
        }
    }

    #[test]
    fn reads_the_sender_from_a_fax_written_by_this_crate() {
        use crate::page::{FaxPage, Resolution};
        let tiff = crate::tiff::write_fax_tiff(
            &[FaxPage::white(Resolution::Standard, 10)],
            crate::coding::Coding::Mh,
        )
        .unwrap();
        // No ImageDescription: empty, not an error.
        assert_eq!(
            sender_of(&tiff),
            (String::new(), String::new(), String::new())
        );
        assert_eq!(
            sender_of(b"not a tiff"),
            (String::new(), String::new(), String::new())
        );
        assert_eq!(printable("ACME\u{1b}[2J Corp", 40), "ACME?[2J Corp");
    }
}
