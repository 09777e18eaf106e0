//! `RecFile::parse` on arbitrary bytes: never a panic; a usable file keeps its exact bytes and
//! every problem names a line the file has; adding a domain no line names and removing it
//! again restores the bytes.
#![no_main]

use imagecast_server::groups::RecFile;
use libfuzzer_sys::fuzz_target;

const BOM: &[u8] = b"\xEF\xBB\xBF";

fuzz_target!(|bytes: &[u8]| {
    let text = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let lines = text.iter().filter(|&&b| b == b'\n').count()
        + usize::from(!text.is_empty() && !text.ends_with(b"\n"));
    let f = match RecFile::parse("x.rec", bytes) {
        Ok(f) => f,
        Err(problems) => {
            assert!(!problems.is_empty());
            for p in &problems {
                assert!((1..=lines.max(2)).contains(&p.line), "{p}");
                let _ = p.to_string();
            }
            return;
        }
    };
    assert_eq!(f.to_bytes(), bytes);
    assert_eq!(f.line_count(), lines);
    for p in f.problems() {
        assert!((1..=lines).contains(&p.line), "{p}");
    }
    for m in f.members() {
        assert!((3..=lines).contains(&m.line));
        assert_eq!(f.find(&m.domain).map(|x| x.line), Some(m.line));
    }
    let domain = "zz.fresh.example";
    if String::from_utf8_lossy(bytes)
        .to_ascii_lowercase()
        .contains(".fresh.example")
    {
        return;
    }
    let (g, added) = f.with_member_added(domain, "Fuzz").expect("a valid member");
    assert!(added);
    let g = RecFile::parse("x.rec", &g.to_bytes()).expect("the edited file parses");
    assert!(g.contains(domain));
    let (h, removed) = g.with_member_removed(domain);
    assert!(removed);
    // Add then remove gives back the file byte for byte.
    assert_eq!(h.to_bytes(), bytes);
});
