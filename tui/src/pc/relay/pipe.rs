//! `relay pipe` and the byte-stream splice that `relay listen --forward` shares: the end of
//! one side's input half-closes the session toward the other.

use super::*;

/// Carries bytes both ways between a session and a local reader and writer until both
/// directions are closed: the end of `rd` half-closes the session toward the peer; the
/// peer's half-close shuts `wr` down. Returns how the session ended.
pub async fn splice<R, W>(
    sender: SessionSender,
    mut receiver: SessionReceiver,
    mut rd: R,
    mut wr: W,
) -> Result<String, String>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let up = {
        let sender = sender.clone();
        tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(CHUNK_SIZE);
            loop {
                buf.reserve(CHUNK_SIZE);
                let n = rd
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| format!("cannot read the local input: {e}"))?;
                if n == 0 {
                    break;
                }
                sender
                    .send(buf.split().freeze())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            sender.finish().await.map_err(|e| e.to_string())
        })
    };
    let down = pump_down(&mut receiver, &mut wr).await;
    if let Err(reason) = down {
        up.abort();
        return Err(reason);
    }
    // The peer sent everything: wait for our own input to end, unless the session ends.
    let ended = async {
        loop {
            match receiver.recv().await {
                Err(ClientError::SessionEnded(r)) => return r,
                Err(e) => return e.to_string(),
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        r = up => match r {
            Ok(Ok(())) => {
                let _ = sender.end("done").await;
                Ok("done".into())
            }
            Ok(Err(e)) => {
                let _ = sender.end(&e).await;
                Err(e)
            }
            Err(e) => Err(e.to_string()),
        },
        reason = ended => Ok(reason),
    }
}

/// Writes the peer's data to `wr` until the peer half-closes (then shuts `wr` down).
async fn pump_down<W: AsyncWrite + Unpin>(
    receiver: &mut SessionReceiver,
    wr: &mut W,
) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("cannot write the local output: {e}");
    loop {
        match receiver.recv().await {
            Ok(Some(mut b)) => {
                while b.has_remaining() {
                    wr.write_all_buf(&mut b).await.map_err(failed)?;
                }
                // Interactive streams (ssh) need each piece at once.
                wr.flush().await.map_err(failed)?;
            }
            Ok(None) => {
                let _ = wr.shutdown().await;
                return Ok(());
            }
            Err(ClientError::SessionEnded(r)) => return Err(r),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// `relay pipe`: standard input to the peer, the peer to standard output.
pub async fn pipe(s: &Settings, target: &RelayTarget, wait: Duration) -> anyhow::Result<()> {
    let (client, session) = open(s, target, wait).await?;
    let result = splice(
        session.sender,
        session.receiver,
        tokio::io::stdin(),
        tokio::io::stdout(),
    )
    .await;
    client.close().await;
    match result {
        Ok(_) => Ok(()),
        Err(reason) => Err(SessionFailed(format!(
            "session {} broke: {}",
            session.id,
            peer_reason(&reason)
        ))
        .into()),
    }
}
