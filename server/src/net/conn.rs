//! One terminal's connection: the handshake, then the reader and the writer.
//!
//! The handshake reads one frame of at most [`MAX_HELLO_FRAME`] bytes within the handshake
//! timeout, checks magic and version before anything else, then the device token. After it,
//! the connection has an [`Outbox`](super::outbox::Outbox) with two bounded queues: control
//! (replies and events, never waited for: a peer that lets it fill up is dropped) and data
//! (delivered pages, waited for by this device's delivery worker only). The reader reads
//! requests and answers them in order; the writer drains the outbox, control first, and sends
//! heartbeats. Both run side by side in the connection's one task.
//!
//! Idle connections are meant to be cheap (thousands of terminals stay connected all day): an
//! idle connection is that one task and an empty outbox. Nothing is buffered between frames,
//! handshake and request state is boxed while in use, one timer serves the heartbeat, the
//! limit on a write and the limit on silence, and the futures are written so that the
//! compiler does not keep room for one await's state next to another's (each such place says
//! so).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use imagecast_shared::ProtoError;
use imagecast_shared::frame::{FrameReader, OutFrame};
use imagecast_shared::limits::{
    CHUNK_SIZE, MAX_FRAME, MAX_HELLO_FRAME, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
use imagecast_shared::msg::{
    ErrorCode, ErrorInfo, Hello, HelloCheck, HelloReply, Refusal, RefusalCode, ServerMsg, Welcome,
    parse_hello,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::outbox::{ConnHandle, Next};
use crate::cmd::{Session, error};
use crate::delivery;
use crate::state::ServerState;
use crate::store::auth::{self, Device, TokenCheck};

/// Serves one accepted connection until it closes; `held` (the connection's slot, say) is
/// dropped when it does.
pub fn serve<S, H>(
    state: Arc<ServerState>,
    stream: S,
    peer: String,
    held: H,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    H: Send + 'static,
{
    // Split before the future exists, so that it keeps no room for the stream (a TLS stream
    // is large). An `async move` block rather than an `async fn`: the arguments of an
    // `async fn` are stored twice.
    let (rd, mut wr) = tokio::io::split(stream);
    let mut reader = FrameReader::new(rd, MAX_HELLO_FRAME);
    async move {
        // Boxed in a statement of its own, so this future keeps no room for the handshake's.
        let handshake = Box::pin(handshake(&state, &mut reader, &mut wr, &peer));
        let mut session = match handshake.await {
            Some((device, receive, version)) => start(&state, device, receive, version, peer),
            None => return,
        };
        reader.set_max(MAX_FRAME);
        let conn = session.conn.clone();
        // The writer's timer also watches the reader for silence.
        let silence = Silence::default();
        let ended_in_order = {
            let writing = send_frames(&mut wr, &conn, state.config.heartbeat, &silence);
            tokio::pin!(writing);
            let mut written = None;
            {
                let reason = {
                    let reading = read_loop(&mut session, &mut reader, &silence);
                    tokio::pin!(reading);
                    loop {
                        tokio::select! {
                            reason = &mut reading => break reason,
                            // The writer failed and cancelled the connection: the reader
                            // sees that.
                            w = &mut writing, if written.is_none() => written = Some(w),
                        }
                    }
                };
                tracing::info!(conn = conn.id, device = %session.device.domain, %reason, "terminal disconnected");
                // Its sessions end, with the reason to each peer.
                state.relay.detach(conn.id, &reason);
            }
            session.close();
            state.connections.detach(conn.id);
            state
                .connections
                .detach_receiver(&session.device.domain, conn.id);
            // The writer sends the last replies (an error explaining the close), then ends.
            conn.outbox.close();
            match written {
                Some(w) => w,
                None => writing.await,
            }
        };
        conn.cancel();
        conn.outbox.shut();
        drop(session);
        if ended_in_order {
            // Boxed in a statement of its own: an idle connection keeps no room for it.
            let finish = Box::pin(finish_writing(&mut wr, &state.shutdown));
            finish.await;
        }
        drop(held);
    }
}

/// Files an authenticated connection in the registry (and a receiving terminal's delivery
/// worker) and returns its session.
fn start(
    state: &Arc<ServerState>,
    device: Device,
    receive: bool,
    version: u16,
    peer: String,
) -> Session {
    let cancel = state.shutdown.child_token();
    let conn = ConnHandle::new(state.connections.next_conn_id(), cancel).speaking(version);
    tracing::info!(conn = conn.id, %peer, device = %device.domain, receive, version, "terminal connected");
    state
        .connections
        .attach(&conn, &device.domain, device.checked_ms);
    state.connections.describe(conn.id, &device.name);
    if receive {
        delivery::attach_receiver(state, &device.domain, &conn);
    }
    Session {
        state: state.clone(),
        peer,
        device,
        conn,
        user: None,
        uploads: HashMap::new(),
        watching: Vec::new(),
    }
}

/// The reader: reads requests and answers them in order until the connection ends; returns
/// why it ended.
// Not an `async fn`: its arguments would be stored twice (see `serve`).
#[allow(clippy::manual_async_fn)]
fn read_loop<'a, R: AsyncRead + Unpin>(
    session: &'a mut Session,
    reader: &'a mut FrameReader<R>,
    silence: &'a Silence,
) -> impl Future<Output = String> + 'a {
    async move {
        loop {
            silence.waiting();
            // An idle connection waits here: for a length prefix, nothing bigger.
            let len = tokio::select! {
                _ = session.conn.cancelled() => return closed_by_server(silence),
                len = reader.read_len() => len,
            };
            let body = match len {
                Ok(None) => return "closed by the terminal".to_owned(),
                Ok(Some(len)) => {
                    let body = Box::pin(reader.read_body(len));
                    tokio::select! {
                        _ = session.conn.cancelled() => return closed_by_server(silence),
                        body = body => body,
                    }
                }
                Err(e) => Err(e),
            };
            silence.busy();
            let msg = match body
                .and_then(|b| imagecast_shared::frame::decode_client_msg(Bytes::from(b)))
            {
                Ok(m) => m,
                Err(e) if !e.is_fatal() => {
                    let reply = ServerMsg::Error {
                        id: None,
                        error: error(ErrorCode::Malformed, None, e.to_string()),
                    };
                    push(&session.conn, &reply);
                    continue;
                }
                Err(e) => {
                    if let ProtoError::FrameTooLarge { .. } = e {
                        let reply = ServerMsg::Error {
                            id: None,
                            error: error(ErrorCode::TooLarge, None, e.to_string()),
                        };
                        push(&session.conn, &reply);
                    }
                    return e.to_string();
                }
            };
            // Boxed in a statement of its own (see `serve`).
            let handled = Box::pin(session.handle(msg));
            if let Some(reply) = handled.await {
                push(&session.conn, &reply);
            }
        }
    }
}

fn closed_by_server(silence: &Silence) -> String {
    match silence.expired() {
        Some(limit) => format!("silent for {} s", limit.as_secs()),
        None => "closed by the server".to_owned(),
    }
}

/// Queues a reply in a form the terminal's protocol version knows: an error whose code came
/// later goes as [`ErrorCode::Internal`] with the same message; any other newer message is
/// not sent (an older terminal cannot have asked for it).
fn push(conn: &ConnHandle, msg: &ServerMsg) {
    let older;
    let msg = match msg {
        _ if conn.speaks(msg) => msg,
        ServerMsg::Error { id, error } => {
            older = ServerMsg::Error {
                id: *id,
                error: ErrorInfo {
                    code: ErrorCode::Internal,
                    ..error.clone()
                },
            };
            &older
        }
        _ => {
            tracing::warn!(
                conn = conn.id,
                version = conn.version,
                "reply too new for the terminal; not sent"
            );
            return;
        }
    };
    match OutFrame::encode(msg) {
        Ok(frame) => {
            conn.push(frame);
        }
        Err(e) => tracing::error!(error = %e, "cannot encode a reply"),
    }
}

/// The writer: sends the outbox's frames, control first, and a heartbeat every interval while
/// idle. Once the connection is cancelled or closes it sends only the control frames still
/// queued (an error that explains the close, say; each within [`LAST_WRITE`]) and returns
/// true; it returns false when a write fails or stalls (and cancels the connection).
///
/// One timer serves the heartbeat, the limit on a write (a write that takes two heartbeat
/// intervals means the peer stopped reading) and the reader's [`Silence`] limit (two heartbeat
/// intervals without a frame from the peer).
// Not an `async fn`: its arguments would be stored twice (see `serve`).
#[allow(clippy::manual_async_fn)]
fn send_frames<'a, S: AsyncWrite>(
    wr: &'a mut WriteHalf<S>,
    conn: &'a ConnHandle,
    heartbeat: Duration,
    silence: &'a Silence,
) -> impl Future<Output = bool> + 'a {
    async move {
        let mut next_beat = Instant::now() + heartbeat;
        let timer = tokio::time::sleep_until(next_beat);
        tokio::pin!(timer);
        // What the last wait found: a heartbeat is due (or the peer went silent).
        let mut beat = false;
        let mut idle = false;
        loop {
            if idle {
                // An idle connection waits here. No frame is held while it waits.
                {
                    let silent = silence.deadline(heartbeat * 2);
                    let wake = silent.map_or(next_beat, |s| s.min(next_beat));
                    if timer.deadline() != wake {
                        timer.as_mut().reset(wake);
                    }
                }
                // Cancelling the connection (or closing the outbox) wakes this too.
                tokio::select! {
                    biased;
                    _ = conn.outbox.ready() => {}
                    _ = &mut timer => {
                        let now = Instant::now();
                        if silence.expire(now, heartbeat * 2) {
                            conn.cancel();
                        } else if now >= next_beat {
                            next_beat = now + heartbeat;
                            beat = true;
                        }
                    }
                }
                idle = false;
            }
            if conn.is_cancelled() {
                // Only the control frames still queued go out now.
                conn.outbox.close();
            }
            let (mut buf, last) = match conn.outbox.pop() {
                Next::Frame(frame) => (frame.into_buf(), false),
                Next::Last(frame) => (frame.into_buf(), true),
                Next::Done => return true,
                Next::Empty if beat => {
                    beat = false;
                    match OutFrame::encode(&ServerMsg::Heartbeat) {
                        Ok(frame) => (frame.into_buf(), false),
                        Err(_) => continue,
                    }
                }
                Next::Empty => {
                    idle = true;
                    continue;
                }
            };
            let limit = if last { LAST_WRITE } else { heartbeat * 2 };
            let stalled = Instant::now() + limit;
            let written = {
                let write = wr.write_all_buf(&mut buf);
                tokio::pin!(write);
                loop {
                    // The peer may speak while the write is under way: its silence deadline is
                    // looked at again each time the timer fires; the stall limit stays.
                    let wake = match silence.deadline(heartbeat * 2) {
                        Some(s) if !last => s.min(stalled),
                        _ => stalled,
                    };
                    timer.as_mut().reset(wake);
                    tokio::select! {
                        r = &mut write => break Some(r),
                        _ = &mut timer => {
                            let now = Instant::now();
                            if now >= stalled || (!last && silence.expire(now, heartbeat * 2)) {
                                break None;
                            }
                        }
                    }
                }
            };
            match written {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "write failed");
                    conn.cancel();
                    return false;
                }
                None if last => return false,
                None => {
                    // The peer went silent, or stopped reading.
                    if silence.expired().is_none() {
                        tracing::warn!(
                            "peer stopped reading for {} s; dropping it",
                            (heartbeat * 2).as_secs()
                        );
                    }
                    conn.cancel();
                    return false;
                }
            }
        }
    }
}

/// How long each of the last control frames may take to write once the connection ends.
const LAST_WRITE: Duration = Duration::from_millis(500);

/// How long the reader has been waiting for a frame from the peer, shared with the writer,
/// whose timer drops a peer that stays silent too long (the reader needs no timer of its own).
#[derive(Default)]
struct Silence {
    /// When the reader began to wait for the current frame, in milliseconds after [`epoch`];
    /// [`Silence::BUSY`] while it handles a request.
    waiting_since: AtomicU64,
    /// The limit the peer exceeded, in milliseconds; 0 while it has not.
    expired_after: AtomicU64,
}

/// A fixed point in time that [`Silence`] counts from.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Silence {
    const BUSY: u64 = 0;

    /// The reader waits for a frame from now on.
    fn waiting(&self) {
        // Never BUSY: the epoch is at least a millisecond old (or it is the first call).
        let ms = (epoch().elapsed().as_millis() as u64).max(1);
        self.waiting_since.store(ms, Ordering::Relaxed);
    }

    /// The reader got a frame and handles it.
    fn busy(&self) {
        self.waiting_since.store(Self::BUSY, Ordering::Relaxed);
    }

    /// When the peer counts as silent, if the reader is waiting.
    fn deadline(&self, limit: Duration) -> Option<Instant> {
        match self.waiting_since.load(Ordering::Relaxed) {
            Self::BUSY => None,
            ms => Some(epoch() + Duration::from_millis(ms) + limit),
        }
    }

    /// True (and remembered) when the peer has been silent for `limit` at `now`.
    fn expire(&self, now: Instant, limit: Duration) -> bool {
        if self.deadline(limit).is_some_and(|d| d <= now) {
            let ms = (limit.as_millis() as u64).max(1);
            self.expired_after.store(ms, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// The limit the peer exceeded, if the connection ends for its silence.
    fn expired(&self) -> Option<Duration> {
        match self.expired_after.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }
}

/// Sends a notice when the server is stopping, and closes the stream.
async fn finish_writing<S: AsyncWrite>(wr: &mut WriteHalf<S>, shutdown: &CancellationToken) {
    if shutdown.is_cancelled() {
        if let Ok(f) = OutFrame::encode(&ServerMsg::Notice {
            text: "the image server is shutting down".into(),
        }) {
            let _ = tokio::time::timeout(LAST_WRITE, f.write_to(wr)).await;
        }
    }
    let _ = tokio::time::timeout(LAST_WRITE, wr.shutdown()).await;
}

/// Reads and checks the hello; answers it. Returns the device, whether it receives, and the
/// protocol version it speaks.
async fn handshake<R, W>(
    state: &ServerState,
    reader: &mut FrameReader<R>,
    wr: &mut W,
    peer: &str,
) -> Option<(Device, bool, u16)>
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
                "this server speaks protocol versions {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}, the terminal version {v}: update the older side"
            ),
        )),
        HelloCheck::Malformed(e) => Err(refuse(
            RefusalCode::NotHello,
            format!("malformed hello: {e}"),
        )),
        HelloCheck::Hello(hello) => check_device(state, &hello)
            .await
            .map_err(|(c, m)| refuse(c, m))
            .map(|d| (d, hello.receive, hello.version)),
    };
    match reply {
        Err(refusal) => {
            send_reply(wr, &refusal).await;
            None
        }
        Ok((mut device, receive, version)) => {
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
                version,
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
            Some((device, receive, version))
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
        .call(move |c| auth::check_token(c, &domain, &token))
        .await;
    // The name as the peer wrote it, safe to log and to send back.
    let shown = imagecast_shared::text::escape(&hello.device);
    // An unknown device and a wrong token get the same answer, so that device names cannot
    // be found out without a token; only the log tells them apart.
    let unknown_or_wrong = || {
        (
            RefusalCode::BadToken,
            format!(
                "device {} is unknown or its token is wrong (the administrator adds devices with `imagecast-server device add` and issues tokens with `imagecast-server device token`)",
                shown
            ),
        )
    };
    match check {
        Ok(TokenCheck::Valid(d)) => Ok(d),
        Ok(TokenCheck::UnknownDevice) => {
            tracing::info!(device = %shown, "hello from an unknown device");
            Err(unknown_or_wrong())
        }
        Ok(TokenCheck::BadToken) => {
            tracing::info!(device = %shown, "hello with a wrong device token");
            Err(unknown_or_wrong())
        }
        Ok(TokenCheck::Revoked) => Err((
            RefusalCode::Revoked,
            format!("the token of device {shown} was revoked"),
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
