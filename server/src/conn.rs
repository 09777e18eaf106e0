//! One terminal's connection: the handshake, the request loop, and the writer.
//!
//! The handshake reads one frame of at most [`MAX_HELLO_FRAME`] bytes within the handshake
//! timeout, checks magic and version before anything else, then the device token. After it,
//! the connection has two outbound queues, both bounded: control (replies and events, pushed
//! with `try_send`: a peer that lets it fill up is dropped) and data (delivered pages, awaited
//! by this device's delivery worker only). A writer task drains both and sends heartbeats; the
//! connection's own task reads requests and answers them in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use imagecast_shared::ProtoError;
use imagecast_shared::frame::{FrameReader, OutFrame};
use imagecast_shared::limits::{CHUNK_SIZE, MAX_FRAME, MAX_HELLO_FRAME, PROTOCOL_VERSION};
use imagecast_shared::msg::{
    ClientMsg, ErrorCode, Hello, HelloCheck, HelloReply, Refusal, RefusalCode, ServerMsg, Welcome,
    parse_hello,
};
use tokio::io::{AsyncRead, AsyncWrite, WriteHalf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ServerState;
use crate::auth::{self, Device, TokenCheck};
use crate::cmd::{Session, error};
use crate::delivery;
use crate::hub::ConnHandle;

/// Replies and events a connection may have queued before it counts as not reading.
const CONTROL_QUEUE: usize = 1024;
/// Delivered-page frames queued per connection (each at most one chunk).
const DATA_QUEUE: usize = 8;

/// Serves one accepted connection until it closes.
pub async fn serve<S>(state: Arc<ServerState>, stream: S, peer: String)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (rd, mut wr) = tokio::io::split(stream);
    let mut reader = FrameReader::new(rd, MAX_HELLO_FRAME);
    let device = match Box::pin(handshake(&state, &mut reader, &mut wr, &peer)).await {
        Some(d) => d,
        None => return,
    };
    reader.set_max(MAX_FRAME);
    let receive = device.1;
    let device = device.0;

    let cancel = state.shutdown.child_token();
    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (data_tx, data_rx) = mpsc::channel(DATA_QUEUE);
    let conn = ConnHandle {
        id: state.hub.next_conn_id(),
        control: control_tx,
        cancel: cancel.clone(),
    };
    tracing::info!(conn = conn.id, %peer, device = %device.domain, receive, "terminal connected");
    state.hub.attach(&conn, &device.domain);
    let writer = tokio::spawn(write_loop(
        wr,
        control_rx,
        data_rx,
        state.config.heartbeat,
        cancel.clone(),
        state.shutdown.clone(),
    ));
    if receive {
        let wake = state.hub.attach_receiver(&device.domain, conn.clone());
        tokio::spawn(delivery::run_worker(
            state.clone(),
            device.domain.clone(),
            conn.clone(),
            data_tx,
            wake,
        ));
    } else {
        drop(data_tx);
    }

    let mut session = Session {
        state: state.clone(),
        peer: peer.clone(),
        device,
        conn: conn.clone(),
        user: None,
        uploads: HashMap::new(),
        watching: Vec::new(),
    };
    let silence = state.config.heartbeat * 2;
    let reason = loop {
        let read = tokio::select! {
            _ = cancel.cancelled() => break "closed by the server".to_owned(),
            r = tokio::time::timeout(silence, read_client_msg(&mut reader)) => r,
        };
        let msg = match read {
            Err(_) => break format!("silent for {} s", silence.as_secs()),
            Ok(Ok(None)) => break "closed by the terminal".to_owned(),
            Ok(Ok(Some(m))) => m,
            Ok(Err(e)) if !e.is_fatal() => {
                let reply = ServerMsg::Error {
                    id: None,
                    error: error(ErrorCode::Malformed, None, e.to_string()),
                };
                push(&conn, &reply);
                continue;
            }
            Ok(Err(e)) => {
                if let ProtoError::FrameTooLarge { .. } = e {
                    let reply = ServerMsg::Error {
                        id: None,
                        error: error(ErrorCode::TooLarge, None, e.to_string()),
                    };
                    push(&conn, &reply);
                }
                break e.to_string();
            }
        };
        if let Some(reply) = Box::pin(session.handle(msg)).await {
            push(&conn, &reply);
        }
    };
    tracing::info!(conn = conn.id, device = %session.device.domain, %reason, "terminal disconnected");
    session.close();
    state.hub.detach(conn.id);
    if receive {
        state.hub.detach_receiver(&session.device.domain, conn.id);
    }
    // Let the writer flush the last replies (an error explaining the close), then stop it.
    let flush = tokio::time::timeout(Duration::from_secs(2), async {
        while conn.control.capacity() < CONTROL_QUEUE && !conn.cancel.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let _ = flush.await;
    cancel.cancel();
    let _ = writer.await;
}

/// Reads one client message without copying page data.
async fn read_client_msg<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
) -> Result<Option<ClientMsg>, ProtoError> {
    match reader.read_frame_bytes().await? {
        None => Ok(None),
        Some(body) => imagecast_shared::frame::decode_client_msg(body).map(Some),
    }
}

fn push(conn: &ConnHandle, msg: &ServerMsg) {
    match OutFrame::encode(msg) {
        Ok(frame) => {
            conn.push(frame);
        }
        Err(e) => tracing::error!(error = %e, "cannot encode a reply"),
    }
}

/// Reads and checks the hello; answers it. Returns the device and whether it receives.
async fn handshake<R, W>(
    state: &ServerState,
    reader: &mut FrameReader<R>,
    wr: &mut W,
    peer: &str,
) -> Option<(Device, bool)>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let refuse = |code, message: String| {
        tracing::warn!(%peer, ?code, %message, "handshake refused");
        HelloReply::Refused(Refusal { code, message })
    };
    let frame = match tokio::time::timeout(state.config.handshake_timeout, reader.read_frame())
        .await
    {
        Err(_) => {
            let reply = refuse(
                RefusalCode::NotHello,
                format!(
                    "no hello within {} s of connecting",
                    state.config.handshake_timeout.as_secs()
                ),
            );
            send_reply(wr, &reply).await;
            return None;
        }
        Ok(Ok(None)) => return None,
        Ok(Err(ProtoError::FrameTooLarge { len, max })) => {
            let prefix = (len as u32).to_be_bytes();
            let text = if prefix.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
                format!(
                    " (the first bytes read {:?}: is this another protocol?)",
                    String::from_utf8_lossy(&prefix)
                )
            } else {
                String::new()
            };
            let reply = refuse(
                RefusalCode::NotHello,
                format!("the first frame announces {len} bytes; a hello is at most {max}{text}"),
            );
            send_reply(wr, &reply).await;
            return None;
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "connection failed before the hello");
            return None;
        }
        Ok(Ok(Some(body))) => body,
    };
    let reply = match parse_hello(&frame) {
        HelloCheck::NotHello => Err(refuse(
            RefusalCode::NotHello,
            "the first frame is not an imagecast hello".into(),
        )),
        HelloCheck::OtherVersion(v) => Err(refuse(
            RefusalCode::VersionMismatch,
            format!(
                "this server speaks protocol version {PROTOCOL_VERSION}, the terminal version {v}: update the older side"
            ),
        )),
        HelloCheck::Malformed(e) => Err(refuse(
            RefusalCode::NotHello,
            format!("malformed hello: {e}"),
        )),
        HelloCheck::Hello(hello) => check_device(state, &hello)
            .await
            .map_err(|(c, m)| refuse(c, m))
            .map(|d| (d, hello.receive)),
    };
    match reply {
        Err(refusal) => {
            send_reply(wr, &refusal).await;
            None
        }
        Ok((mut device, receive)) => {
            // The destination name in all.rec wins over the device record's, for the whole
            // connection (Welcome, and the sender of its distributions).
            if let Some(name) = state
                .group_snapshot()
                .await
                .ok()
                .and_then(|s| s.destination_name(&device.domain).map(str::to_owned))
            {
                device.name = name;
            }
            let welcome = HelloReply::Welcome(Welcome {
                version: PROTOCOL_VERSION,
                server: concat!("imagecast-server ", env!("CARGO_PKG_VERSION")).into(),
                device_name: device.name.clone(),
                kind: device.kind,
                heartbeat_ms: state.config.heartbeat.as_millis() as u32,
                max_frame: MAX_FRAME as u32,
                chunk_size: CHUNK_SIZE as u32,
            });
            if !send_reply(wr, &welcome).await {
                return None;
            }
            Some((device, receive))
        }
    }
}

async fn check_device(state: &ServerState, hello: &Hello) -> Result<Device, (RefusalCode, String)> {
    let domain = hello.device.clone();
    let token = hello.token.clone();
    if domain.is_empty() || domain.len() > imagecast_shared::limits::MAX_NAME {
        return Err((
            RefusalCode::UnknownDevice,
            "the hello names no device".into(),
        ));
    }
    let check = state
        .db
        .call(move |c| {
            auth::check_token(c, &domain, &token).map_err(|e| match e {
                auth::AuthError::Db(d) => d,
                other => crate::db::DbError::Corrupt(other.to_string()),
            })
        })
        .await;
    match check {
        Ok(TokenCheck::Valid(d)) => Ok(d),
        Ok(TokenCheck::UnknownDevice) => Err((
            RefusalCode::UnknownDevice,
            format!(
                "device {} is not known to this server (the administrator adds it with `imagecast-server device add`)",
                hello.device
            ),
        )),
        Ok(TokenCheck::BadToken) => Err((
            RefusalCode::BadToken,
            format!("wrong device token for {}", hello.device),
        )),
        Ok(TokenCheck::Revoked) => Err((
            RefusalCode::Revoked,
            format!("the token of device {} was revoked", hello.device),
        )),
        Err(e) => {
            tracing::error!(error = %e, "cannot check a device token");
            Err((
                RefusalCode::Unavailable,
                "the server cannot check device tokens right now".into(),
            ))
        }
    }
}

async fn send_reply<W: AsyncWrite + Unpin>(wr: &mut W, reply: &HelloReply) -> bool {
    let Ok(frame) = OutFrame::encode(reply) else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), frame.write_to(wr)).await,
        Ok(Ok(()))
    )
}

async fn write_loop<S: AsyncWrite>(
    mut wr: WriteHalf<S>,
    mut control: mpsc::Receiver<Box<OutFrame>>,
    mut data: mpsc::Receiver<Box<OutFrame>>,
    heartbeat: Duration,
    cancel: CancellationToken,
    shutdown: CancellationToken,
) {
    let beat = OutFrame::encode(&ServerMsg::Heartbeat).ok();
    let mut ticker = tokio::time::interval(heartbeat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut data_open = true;
    // A write that takes longer than this means the peer stopped reading.
    let stall = heartbeat * 2;
    loop {
        let frame = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            f = control.recv() => match f { Some(f) => f, None => break },
            f = data.recv(), if data_open => match f {
                Some(f) => f,
                None => { data_open = false; continue; }
            },
            _ = ticker.tick() => match &beat { Some(b) => Box::new(b.clone()), None => continue },
        };
        match tokio::time::timeout(stall, frame.write_to(&mut wr)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "write failed");
                cancel.cancel();
                return;
            }
            Err(_) => {
                tracing::warn!(
                    "peer stopped reading for {} s; dropping it",
                    stall.as_secs()
                );
                cancel.cancel();
                return;
            }
        }
    }
    // Flush what is already queued (for example the error that explains a close).
    while let Ok(frame) = control.try_recv() {
        if tokio::time::timeout(Duration::from_millis(500), frame.write_to(&mut wr))
            .await
            .is_err()
        {
            break;
        }
    }
    if shutdown.is_cancelled() {
        if let Ok(f) = OutFrame::encode(&ServerMsg::Notice {
            text: "the image server is shutting down".into(),
        }) {
            let _ = tokio::time::timeout(Duration::from_millis(500), f.write_to(&mut wr)).await;
        }
    }
    let _ = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::io::AsyncWriteExt::shutdown(&mut wr),
    )
    .await;
}
