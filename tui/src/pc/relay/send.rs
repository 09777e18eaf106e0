//! `relay send`: a connection demand, then each file as one page, confirmed once stored.

use super::*;

/// `relay send`: demands a session, sends each file as one page, prints each confirmation,
/// and ends the session.
pub async fn send(
    s: &Settings,
    target: &RelayTarget,
    wait: Duration,
    files: &[PathBuf],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut pages = Vec::new();
    for f in files {
        let size = std::fs::metadata(f)
            .with_context(|| format!("cannot read {}", f.display()))?
            .len();
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", f.display()))?
            .to_owned();
        pages.push((f.clone(), name, size));
    }
    let (client, session) = open(s, target, wait).await?;
    let RelaySession {
        id,
        peer: who,
        sender,
        receiver,
        ..
    } = session;
    let domain = peer(&who.domain).into_owned();
    writeln!(
        out,
        "connection demand to {}: accepted (session {id})",
        target_text(target)
    )?;
    out.flush()?;
    let n = pages.len();
    let sending = {
        let sender = sender.clone();
        tokio::spawn(async move {
            for (k, (path, name, size)) in pages.into_iter().enumerate() {
                let header = format!("page {} {n} {size} {}\n", k + 1, name.len());
                sender.send(Bytes::from(header)).await?;
                sender.send(Bytes::from(name.into_bytes())).await?;
                let mut file =
                    tokio::fs::File::open(&path)
                        .await
                        .map_err(|reason| ClientError::File {
                            path: path.clone(),
                            reason,
                        })?;
                let mut left = size;
                while left > 0 {
                    let want = (CHUNK_SIZE as u64).min(left) as usize;
                    let mut buf = vec![0u8; want];
                    file.read_exact(&mut buf)
                        .await
                        .map_err(|reason| ClientError::File {
                            path: path.clone(),
                            reason,
                        })?;
                    sender.send(Bytes::from(buf)).await?;
                    left -= want as u64;
                }
            }
            Ok::<(), ClientError>(())
        })
    };
    let mut input = SessionIn::new(receiver);
    let mut printed = 0usize;
    let broke = loop {
        if printed == n {
            break None;
        }
        match input.read_line().await {
            Ok(Some(line)) => {
                let mut words = line.splitn(3, ' ');
                match (
                    words.next(),
                    words.next().and_then(|k| k.parse::<usize>().ok()),
                ) {
                    (Some("printed"), Some(k)) if k == printed + 1 => {
                        printed = k;
                        writeln!(out, "page {k}/{n} printed by {domain}")?;
                        out.flush()?;
                    }
                    (Some("failed"), Some(k)) => {
                        break Some(format!(
                            "{domain} could not store page {k}: {}",
                            peer_reason(words.next().unwrap_or(""))
                        ));
                    }
                    _ => {
                        break Some(format!(
                            "{domain} answered {:?}, not a page confirmation",
                            peer_reason(&line)
                        ));
                    }
                }
            }
            Ok(None) => break Some(format!("{domain} closed the session early")),
            Err(e) => break Some(e.to_string()),
        }
    };
    sending.abort();
    match broke {
        None => {
            let _ = sender.end("done").await;
            client.close().await;
            Ok(())
        }
        Some(reason) => {
            let _ = sender.end(&reason).await;
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
