//! `relay send`: a connection demand, then each file as one page, confirmed once stored;
//! pages the peer sends back in the session are stored too ([`super::pages`]).

use super::pages::{Next, Outgoing, PageEvent, exchange, next_for_demander};
use super::*;

/// `relay send`: demands a session, sends each file as one page, prints each confirmation,
/// stores in `out_dir` what the peer sends back, and ends the session once every page is
/// confirmed and the peer is done.
pub async fn send(
    s: &Settings,
    target: &RelayTarget,
    wait: Duration,
    files: &[PathBuf],
    out_dir: &Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let pages = files
        .iter()
        .map(|f| Outgoing::file(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    imagecast_shared::private::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let (client, session) = open(s, target, wait).await?;
    let id = session.id;
    let domain = peer(&session.peer.domain).into_owned();
    writeln!(
        out,
        "connection demand to {}: accepted (session {id})",
        target_text(target)
    )?;
    out.flush()?;
    let n = pages.len() as u64;
    let (link, mut events) = exchange(session, out_dir.to_owned());
    link.send(pages);
    link.done();
    let mut printed = 0u64;
    let mut peer_done = false;
    let broke = loop {
        let event = match next_for_demander(&mut events, printed == n, peer_done).await {
            Next::Finished => break None,
            Next::Closed => break Some("the session ended".to_owned()),
            Next::Event(e) => e,
        };
        match event {
            PageEvent::Printed { k, .. } if k == printed + 1 => {
                printed = k;
                writeln!(out, "page {k}/{n} printed by {domain}")?;
                out.flush()?;
            }
            PageEvent::Printed { k, .. } => {
                break Some(format!("{domain} confirmed page {k} out of order"));
            }
            PageEvent::Refused { k, reason } => {
                break Some(format!("{domain} could not store page {k}: {reason}"));
            }
            PageEvent::Stored { k, n, path } => {
                writeln!(
                    out,
                    "page {k}/{n} from {domain} stored as {}",
                    path.display()
                )?;
                out.flush()?;
            }
            PageEvent::NotStored { k, reason } => {
                break Some(format!("page {k} from {domain} not stored: {reason}"));
            }
            PageEvent::PeerDone => peer_done = true,
            PageEvent::Ended(Ok(reason)) if printed == n => {
                // The peer ended it once all was confirmed.
                let _ = reason;
                client.close().await;
                return Ok(());
            }
            PageEvent::Ended(Ok(reason) | Err(reason)) => break Some(reason),
        }
    };
    match broke {
        None => {
            link.end_when_sent("done").await;
            client.close().await;
            Ok(())
        }
        Some(reason) => {
            link.end(&reason).await;
            client.close().await;
            let got = if printed == 0 {
                "no page was printed".to_owned()
            } else {
                format!("pages 1 to {printed} of {n} were printed")
            };
            Err(SessionFailed(format!("session {id} broke: {reason}; {got}")).into())
        }
    }
}
