//! Group file speed: parsing a 10,000-member `.rec` file (the budget is well under 5 ms), and
//! one group-commit batch of 64 registrations against it.
//!
//! `cargo bench -p imagecast-server --bench rec`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use imagecast_server::groups::{RecEdit, RecFile};

const MEMBERS: usize = 10_000;

/// A group file shaped like the seed's, with `MEMBERS` members and a few comments.
fn big_file() -> String {
    let mut text = String::from("# all distribution destinations\n# all.rec\n");
    for i in 0..MEMBERS {
        if i % 1000 == 0 {
            text.push_str(&format!("\n# branch {}\n", i / 1000));
        }
        text.push_str(&format!(
            "devl{i}.Branch{}.mei.co.jp;development department {i}, branch {}\n",
            i % 50,
            i % 50
        ));
    }
    text
}

fn bench(c: &mut Criterion) {
    let text = big_file();
    c.bench_function("parse 10,000 members", |b| {
        b.iter(|| {
            let file = RecFile::parse("all.rec", black_box(text.as_bytes()));
            black_box(file.map(|f| f.member_count()).unwrap_or_default())
        })
    });

    let Ok(file) = RecFile::parse("all.rec", text.as_bytes()) else {
        panic!("the generated file does not parse");
    };
    let domains: Vec<String> = (0..64).map(|i| format!("new{i}.osk.mei.co.jp")).collect();
    let edits: Vec<RecEdit<'_>> = domains
        .iter()
        .map(|domain| RecEdit::Add {
            domain,
            name: "a new terminal",
        })
        .collect();
    c.bench_function("apply 64 registrations to 10,000 members", |b| {
        b.iter(|| black_box(file.apply(black_box(&edits))))
    });
    c.bench_function("clone 10,000 members", |b| {
        b.iter(|| black_box(file.clone()))
    });
    c.bench_function("find in 10,000 members", |b| {
        b.iter(|| {
            black_box(
                file.find(black_box("DEVL9999.branch49.mei.co.jp"))
                    .is_some(),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
