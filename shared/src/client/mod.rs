//! The async client: one authenticated connection from a terminal to the image server.
//!
//! [`Client::connect`] dials, sends the [`Hello`] and reads the server's answer; then two
//! tasks own the connection: a writer (which also sends the heartbeat) and a reader (which
//! pairs replies with requests by ID and passes events on). Requests are methods on
//! [`Client`]; pushed deliveries and progress arrive as [`Event`]s on [`Events`], which the
//! application must keep draining: an undrained event queue holds up the replies behind it.

mod backoff;
pub mod dial;
mod error;
mod inbox;
mod relay;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use backoff::{Backoff, jittered};
pub use error::ClientError;
pub use inbox::safe_file_name as page_file_name;
pub use inbox::{Inbox, InboxError, InboxMode, MAX_INCOMPLETE, Received, stored_in};
pub use relay::{IncomingDemand, RelaySession, SessionReceiver, SessionSender};

use crate::frame::{FrameReader, OutFrame};
use crate::ids::{DeliveryId, DistributionId, RequestId};
use crate::limits::{CHUNK_SIZE, MAX_FRAME, MAX_HELLO_FRAME};
use crate::msg::{
    Accepted, BeginDistribution, ClientMsg, Deliver, DeliveryOutcome, Destination,
    DestinationStatus, DeviceInfo, FailedLogin, GroupEntry, Hello, HelloReply, PageInfo,
    RegisterOutcome, Role, ServerMsg, Welcome, WithdrawOutcome,
};
use crate::tls::TlsSettings;

/// How to reach the server and who this terminal is.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `HOST:PORT` of the image server.
    pub server: String,
    /// This terminal's network domain name.
    pub device: String,
    /// This terminal's device token.
    pub token: String,
    /// Software name and version, for the server's log.
    pub software: String,
    /// Whether this connection takes the deliveries pushed to the device.
    pub receive: bool,
    /// How long to wait for the connection and the handshake.
    pub connect_timeout: Duration,
    /// How long to wait for a reply to a request.
    pub request_timeout: Duration,
    /// TLS and how to trust the server; `None` for plain TCP.
    pub tls: Option<TlsSettings>,
}

impl ClientConfig {
    /// A configuration with default timeouts.
    pub fn new(server: &str, device: &str, token: &str, receive: bool) -> Self {
        Self {
            server: server.to_owned(),
            device: device.to_owned(),
            token: token.to_owned(),
            software: concat!("imagecast ", env!("CARGO_PKG_VERSION")).to_owned(),
            receive,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            tls: None,
        }
    }
}

/// Something the server pushed, in the order it arrived.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A delivery begins; its pages follow as [`Event::DeliverData`].
    Deliver(Deliver),
    /// A piece of a delivered page.
    DeliverData {
        /// Which delivery.
        delivery: DeliveryId,
        /// Page index from 0.
        page: u32,
        /// Byte offset within the page.
        offset: u64,
        /// The piece's bytes (borrowed from the frame, not copied).
        data: Bytes,
    },
    /// The delivery is complete: store it, then [`Client::ack`].
    DeliverEnd {
        /// Which delivery.
        delivery: DeliveryId,
    },
    /// A destination of one of this terminal's distributions changed state.
    Progress {
        /// The distribution, of this terminal's, that progressed.
        dist: DistributionId,
        /// The destination and its state.
        status: DestinationStatus,
    },
    /// Every destination of a distribution is done.
    Done {
        /// The distribution, of this terminal's, that is finished.
        dist: DistributionId,
        /// Final results.
        results: Vec<DestinationStatus>,
    },
    /// A message for the operator.
    Notice(String),
    /// A connection demand for this terminal (seed 004, (7)): answer it with
    /// [`Client::answer`] before it expires.
    Demanded(IncomingDemand),
    /// A demand this terminal was asked is gone unanswered (expired, or the demander left).
    DemandWithdrawn {
        /// The demand's number.
        demand: u64,
        /// Why.
        reason: String,
    },
    /// The device logged out on another connection (seed 004, (23)); this one closes next.
    LoggedOut(String),
    /// A network fax event: a job for a gateway, or a job's progress and records for the
    /// terminal that sent it.
    Fax(crate::fax::FaxEvent),
    /// The connection ended; the reason says why. No event follows.
    Closed(String),
}

/// The stream of [`Event`]s of one connection.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event; `None` once the connection is gone and every event was taken.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

/// One page to send: its name and where its bytes come from.
#[derive(Clone, Debug)]
pub struct OutgoingPage {
    /// File name the destinations will see.
    pub name: String,
    /// Where the page's bytes come from: memory, or a file read while sending.
    pub source: PageSource,
}

/// Where an outgoing page's bytes are.
#[derive(Clone, Debug)]
pub enum PageSource {
    /// A file, read in chunks while sending.
    File(PathBuf),
    /// Bytes in memory.
    Bytes(Bytes),
}

impl OutgoingPage {
    /// A page read from `path`, named after the file.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, ClientError> {
        let path = path.into();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                ClientError::BadPage(format!("{} has no usable file name", path.display()))
            })?
            .to_owned();
        Ok(Self {
            name,
            source: PageSource::File(path),
        })
    }

    /// A page from memory.
    pub fn from_bytes(name: &str, bytes: impl Into<Bytes>) -> Self {
        Self {
            name: name.to_owned(),
            source: PageSource::Bytes(bytes.into()),
        }
    }
}

/// What a distribution asks for.
#[derive(Clone, Debug)]
pub struct DistributionRequest {
    /// Client-chosen ID; reuse it to retry safely.
    pub dist: DistributionId,
    /// Group names.
    pub groups: Vec<String>,
    /// Individual destinations by domain.
    pub destinations: Vec<String>,
    /// The pages of the image, in order.
    pub pages: Vec<OutgoingPage>,
}

struct Shared {
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    /// The relay sessions open on this connection.
    relay: relay::Links,
}

#[derive(Default)]
struct Pending {
    waiting: HashMap<RequestId, oneshot::Sender<ServerMsg>>,
    closed: Option<String>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self, reason: &str) {
        let mut p = self.lock();
        if p.closed.is_none() {
            p.closed = Some(reason.to_owned());
        }
        p.waiting.clear();
    }

    fn closed_reason(&self) -> String {
        self.lock()
            .closed
            .clone()
            .unwrap_or_else(|| "connection closed".to_owned())
    }
}

/// A connected, authenticated terminal. Cheap to clone; the connection closes when the last
/// clone is dropped or [`Client::close`] is called.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    out: mpsc::Sender<OutFrame>,
    welcome: Arc<Welcome>,
    cancel: CancellationToken,
    _guard: Arc<DropGuard>,
    request_timeout: Duration,
    writer: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

struct DropGuard(CancellationToken);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("device_name", &self.welcome.device_name)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Dials the server over TCP and performs the handshake.
    pub async fn connect(cfg: &ClientConfig) -> Result<(Client, Events), ClientError> {
        let stream = tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(&cfg.server))
            .await
            .map_err(|_| ClientError::Connect {
                server: cfg.server.clone(),
                reason: std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"),
            })?
            .map_err(|reason| ClientError::Connect {
                server: cfg.server.clone(),
                reason,
            })?;
        let _ = stream.set_nodelay(true);
        match &cfg.tls {
            None => Self::handshake(stream, cfg).await,
            Some(tls) => {
                let stream = dial::tls(stream, &cfg.server, tls, cfg.connect_timeout).await?;
                Self::handshake(stream, cfg).await
            }
        }
    }

    /// Performs the handshake over an established byte stream (TCP, TLS, or a test pipe).
    pub async fn handshake<S>(
        stream: S,
        cfg: &ClientConfig,
    ) -> Result<(Client, Events), ClientError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (rd, mut wr) = tokio::io::split(stream);
        let mut reader = FrameReader::new(rd, MAX_HELLO_FRAME);
        let hello = Hello::new(&cfg.device, &cfg.token, &cfg.software, cfg.receive);
        let exchange = async {
            OutFrame::encode(&hello)?.write_to(&mut wr).await?;
            reader.read_msg::<HelloReply>("handshake reply").await
        };
        let reply = tokio::time::timeout(cfg.connect_timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout("the handshake"))??;
        let welcome = match reply {
            None => {
                return Err(ClientError::Closed(
                    "the server closed the connection during the handshake".into(),
                ));
            }
            Some(HelloReply::Refused(r)) => return Err(ClientError::Refused(r)),
            Some(HelloReply::Welcome(w)) => w,
        };
        reader.set_max(MAX_FRAME.max(welcome.max_frame as usize));

        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(1),
            relay: relay::Links::default(),
        });
        let cancel = CancellationToken::new();
        let (out_tx, out_rx) = mpsc::channel::<OutFrame>(16);
        let (ev_tx, ev_rx) = mpsc::channel::<Event>(256);
        let heartbeat = Duration::from_millis(u64::from(welcome.heartbeat_ms.max(100)));
        let writer = tokio::spawn(write_loop(
            wr,
            out_rx,
            heartbeat,
            shared.clone(),
            cancel.clone(),
        ));
        tokio::spawn(read_loop(
            reader,
            ev_tx,
            heartbeat * 2,
            shared.clone(),
            cancel.clone(),
        ));
        let client = Client {
            shared,
            out: out_tx,
            welcome: Arc::new(welcome),
            _guard: Arc::new(DropGuard(cancel.clone())),
            cancel,
            request_timeout: cfg.request_timeout,
            writer: Arc::new(Mutex::new(Some(writer))),
        };
        Ok((client, Events { rx: ev_rx }))
    }

    /// What the server said at the handshake.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.cancel.is_cancelled() || self.shared.lock().closed.is_some()
    }

    /// Closes the connection.
    ///
    /// What was queued before (an acknowledgement, say) is still sent; this returns once it
    /// was, or after two seconds.
    pub async fn close(&self) {
        self.shared.close("closed by this terminal");
        self.cancel.cancel();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = writer {
            let _ = tokio::time::timeout(Duration::from_secs(3), w).await;
        }
    }

    async fn send(&self, msg: &ClientMsg) -> Result<(), ClientError> {
        self.send_frame(OutFrame::encode(msg)?).await
    }

    async fn send_frame(&self, frame: OutFrame) -> Result<(), ClientError> {
        self.out
            .send(frame)
            .await
            .map_err(|_| ClientError::Closed(self.shared.closed_reason()))
    }

    fn register_pending(&self) -> Result<(RequestId, oneshot::Receiver<ServerMsg>), ClientError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut p = self.shared.lock();
        if let Some(reason) = &p.closed {
            return Err(ClientError::Closed(reason.clone()));
        }
        p.waiting.insert(id, tx);
        Ok((id, rx))
    }

    async fn await_reply(
        &self,
        rx: oneshot::Receiver<ServerMsg>,
        what: &'static str,
    ) -> Result<ServerMsg, ClientError> {
        let reply = tokio::time::timeout(self.request_timeout, rx)
            .await
            .map_err(|_| ClientError::Timeout(what))?
            .map_err(|_| ClientError::Closed(self.shared.closed_reason()))?;
        match reply {
            ServerMsg::Error { error, .. } => Err(ClientError::Server(error)),
            other => Ok(other),
        }
    }

    async fn request(
        &self,
        what: &'static str,
        make: impl FnOnce(RequestId) -> ClientMsg,
    ) -> Result<ServerMsg, ClientError> {
        let (id, rx) = self.register_pending()?;
        if let Err(e) = self.send(&make(id)).await {
            self.shared.lock().waiting.remove(&id);
            return Err(e);
        }
        self.await_reply(rx, what).await
    }

    /// Logs a user in on this connection (FIG. 6).
    pub async fn login(&self, user: &str, password: &str) -> Result<Role, ClientError> {
        let reply = self
            .request("the login", |id| ClientMsg::Login {
                id,
                user: user.to_owned(),
                password: password.to_owned(),
            })
            .await?;
        match reply {
            ServerMsg::LoggedIn { role, .. } => Ok(role),
            _ => Err(ClientError::Unexpected("the login")),
        }
    }

    /// Logs the user out.
    pub async fn logout(&self) -> Result<(), ClientError> {
        match self
            .request("the logout", |id| ClientMsg::Logout { id })
            .await?
        {
            ServerMsg::Ok { .. } => Ok(()),
            _ => Err(ClientError::Unexpected("the logout")),
        }
    }

    /// The destination groups (FIG. 9), or those open for registration (FIG. 12).
    pub async fn groups(&self, for_registration: bool) -> Result<Vec<GroupEntry>, ClientError> {
        let reply = self
            .request("the group list", |id| ClientMsg::ListGroups {
                id,
                for_registration,
            })
            .await?;
        match reply {
            ServerMsg::Groups { groups, .. } => Ok(groups),
            _ => Err(ClientError::Unexpected("the group list")),
        }
    }

    /// The groups this terminal is a member of (the panel's withdraw list, FIG. 12).
    pub async fn memberships(&self) -> Result<Vec<String>, ClientError> {
        let reply = self
            .request("the membership list", |id| ClientMsg::Memberships { id })
            .await?;
        match reply {
            ServerMsg::Memberships { groups, .. } => Ok(groups),
            _ => Err(ClientError::Unexpected("the membership list")),
        }
    }

    /// Every destination in `all.rec` (FIG. 10).
    pub async fn destinations(&self) -> Result<Vec<Destination>, ClientError> {
        let reply = self
            .request("the destination list", |id| ClientMsg::ListDestinations {
                id,
            })
            .await?;
        match reply {
            ServerMsg::Destinations { destinations, .. } => Ok(destinations),
            _ => Err(ClientError::Unexpected("the destination list")),
        }
    }

    /// Registers this terminal with a group (section 2.3).
    pub async fn register(&self, group: &str) -> Result<RegisterOutcome, ClientError> {
        let reply = self
            .request("the registration", |id| ClientMsg::Register {
                id,
                group: group.to_owned(),
            })
            .await?;
        match reply {
            ServerMsg::Registered { outcome, .. } => Ok(outcome),
            _ => Err(ClientError::Unexpected("the registration")),
        }
    }

    /// Withdraws this terminal from a group.
    pub async fn withdraw(&self, group: &str) -> Result<WithdrawOutcome, ClientError> {
        let reply = self
            .request("the withdrawal", |id| ClientMsg::Withdraw {
                id,
                group: group.to_owned(),
            })
            .await?;
        match reply {
            ServerMsg::Withdrawn { outcome, .. } => Ok(outcome),
            _ => Err(ClientError::Unexpected("the withdrawal")),
        }
    }

    /// Problems in the server's group files, as `FILE:LINE: reason`.
    pub async fn group_problems(&self) -> Result<Vec<String>, ClientError> {
        let reply = self
            .request("the problem list", |id| ClientMsg::GroupProblems { id })
            .await?;
        match reply {
            ServerMsg::Problems { problems, .. } => Ok(problems),
            _ => Err(ClientError::Unexpected("the problem list")),
        }
    }

    /// A distribution's current state; its later progress then arrives as events.
    pub async fn watch(&self, dist: DistributionId) -> Result<Vec<DestinationStatus>, ClientError> {
        let reply = self
            .request("the status request", |id| ClientMsg::WatchDistribution {
                id,
                dist,
            })
            .await?;
        match reply {
            ServerMsg::DistributionStatus { destinations, .. } => Ok(destinations),
            _ => Err(ClientError::Unexpected("the status request")),
        }
    }

    /// Admin: registers another terminal with a group.
    pub async fn admin_register(
        &self,
        group: &str,
        domain: &str,
    ) -> Result<RegisterOutcome, ClientError> {
        let reply = self
            .request("the registration", |id| ClientMsg::AdminRegister {
                id,
                group: group.to_owned(),
                domain: domain.to_owned(),
            })
            .await?;
        match reply {
            ServerMsg::Registered { outcome, .. } => Ok(outcome),
            _ => Err(ClientError::Unexpected("the registration")),
        }
    }

    /// Admin: withdraws another terminal from a group.
    pub async fn admin_withdraw(
        &self,
        group: &str,
        domain: &str,
    ) -> Result<WithdrawOutcome, ClientError> {
        let reply = self
            .request("the withdrawal", |id| ClientMsg::AdminWithdraw {
                id,
                group: group.to_owned(),
                domain: domain.to_owned(),
            })
            .await?;
        match reply {
            ServerMsg::Withdrawn { outcome, .. } => Ok(outcome),
            _ => Err(ClientError::Unexpected("the withdrawal")),
        }
    }

    /// Admin: every device.
    pub async fn devices(&self) -> Result<Vec<DeviceInfo>, ClientError> {
        match self
            .request("the device list", |id| ClientMsg::ListDevices { id })
            .await?
        {
            ServerMsg::Devices { devices, .. } => Ok(devices),
            _ => Err(ClientError::Unexpected("the device list")),
        }
    }

    /// Admin: revokes a device's token and drops its connections.
    pub async fn revoke_device(&self, domain: &str) -> Result<(), ClientError> {
        match self
            .request("the revocation", |id| ClientMsg::RevokeDevice {
                id,
                domain: domain.to_owned(),
            })
            .await?
        {
            ServerMsg::Ok { .. } => Ok(()),
            _ => Err(ClientError::Unexpected("the revocation")),
        }
    }

    /// Admin: the most recent failed logins, oldest first.
    pub async fn failed_logins(&self, last: u32) -> Result<Vec<FailedLogin>, ClientError> {
        match self
            .request("the failed-login list", |id| ClientMsg::FailedLogins {
                id,
                last,
            })
            .await?
        {
            ServerMsg::FailedLogins { entries, .. } => Ok(entries),
            _ => Err(ClientError::Unexpected("the failed-login list")),
        }
    }

    /// A network fax request (version 2): the reply, `Ok` or a [`crate::fax::FaxEvent`].
    pub async fn fax(
        &self,
        what: &'static str,
        make: impl FnOnce(RequestId) -> crate::fax::FaxRequest,
    ) -> Result<ServerMsg, ClientError> {
        self.request(what, |id| ClientMsg::Fax(make(id))).await
    }

    /// A network fax message that has no reply (a gateway's progress).
    pub async fn fax_notify(&self, msg: crate::fax::FaxRequest) -> Result<(), ClientError> {
        self.send(&ClientMsg::Fax(msg)).await
    }

    /// Acknowledges a pushed delivery once it is stored (or refused).
    pub async fn ack(
        &self,
        delivery: DeliveryId,
        outcome: DeliveryOutcome,
    ) -> Result<(), ClientError> {
        self.send(&ClientMsg::DeliveryAck { delivery, outcome })
            .await
    }

    /// Sends an image to groups and destinations and waits until the server has stored it.
    ///
    /// Pages are read and sent in [`CHUNK_SIZE`] pieces, so an image of any size is never
    /// held whole in memory. Retrying with the same [`DistributionRequest::dist`] after a
    /// lost answer is safe: the server recognises it.
    pub async fn distribute(&self, req: &DistributionRequest) -> Result<Accepted, ClientError> {
        self.distribute_with_progress(req, &|_, _| {}).await
    }

    /// [`Client::distribute`], calling `progress(sent, total)` with the bytes handed to the
    /// connection so far and the total, after each piece (for a progress bar).
    pub async fn distribute_with_progress(
        &self,
        req: &DistributionRequest,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<Accepted, ClientError> {
        let mut infos = Vec::with_capacity(req.pages.len());
        for page in &req.pages {
            let size = match &page.source {
                PageSource::Bytes(b) => b.len() as u64,
                PageSource::File(path) => tokio::fs::metadata(path)
                    .await
                    .map_err(|reason| ClientError::File {
                        path: path.clone(),
                        reason,
                    })?
                    .len(),
            };
            infos.push(PageInfo {
                name: page.name.clone(),
                size,
            });
        }
        let (upload, rx) = self.register_pending()?;
        self.send(&ClientMsg::BeginDistribution {
            id: upload,
            request: BeginDistribution {
                dist: req.dist,
                groups: req.groups.clone(),
                destinations: req.destinations.clone(),
                pages: infos.clone(),
            },
        })
        .await?;
        match self.await_reply(rx, "the distribution request").await? {
            ServerMsg::Accepted { accepted, .. } => return Ok(accepted),
            ServerMsg::UploadReady { .. } => {}
            _ => return Err(ClientError::Unexpected("the distribution request")),
        }
        // An error while uploading arrives under the upload's ID: watch for it.
        let (abort_tx, mut abort_rx) = oneshot::channel();
        self.shared.lock().waiting.insert(upload, abort_tx);
        let sent = self
            .upload_pages(upload, req, &infos, &mut abort_rx, progress)
            .await;
        if let Err(e) = sent {
            self.shared.lock().waiting.remove(&upload);
            if !e.is_connection_lost() && !matches!(e, ClientError::Server(_)) {
                let _ = self.send(&ClientMsg::AbortDistribution { upload }).await;
            }
            return Err(e);
        }
        let (id, rx) = self.register_pending()?;
        self.send(&ClientMsg::CommitDistribution { id, upload })
            .await?;
        let reply = tokio::select! {
            r = self.await_reply(rx, "the distribution") => r,
            Ok(ServerMsg::Error { error, .. }) = &mut abort_rx => Err(ClientError::Server(error)),
        };
        self.shared.lock().waiting.remove(&upload);
        match reply? {
            ServerMsg::Accepted { accepted, .. } => Ok(accepted),
            _ => Err(ClientError::Unexpected("the distribution")),
        }
    }

    async fn upload_pages(
        &self,
        upload: RequestId,
        req: &DistributionRequest,
        infos: &[PageInfo],
        abort: &mut oneshot::Receiver<ServerMsg>,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<(), ClientError> {
        let total: u64 = infos.iter().map(|i| i.size).sum();
        let mut done = 0u64;
        for (index, (page, info)) in req.pages.iter().zip(infos).enumerate() {
            let index = index as u32;
            let mut offset = 0u64;
            match &page.source {
                PageSource::Bytes(bytes) => {
                    for chunk in bytes.chunks(CHUNK_SIZE) {
                        self.check_abort(abort)?;
                        self.send_page_data(upload, index, offset, bytes.slice_ref(chunk))
                            .await?;
                        offset += chunk.len() as u64;
                        done += chunk.len() as u64;
                        progress(done, total);
                    }
                }
                PageSource::File(path) => {
                    let file_err = |reason| ClientError::File {
                        path: path.clone(),
                        reason,
                    };
                    let mut file = tokio::fs::File::open(path).await.map_err(file_err)?;
                    while offset < info.size {
                        self.check_abort(abort)?;
                        let want = CHUNK_SIZE.min((info.size - offset) as usize);
                        let mut buf = vec![0u8; want];
                        file.read_exact(&mut buf).await.map_err(|e| {
                            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                                ClientError::BadPage(format!(
                                    "{} shrank while it was being sent",
                                    path.display()
                                ))
                            } else {
                                file_err(e)
                            }
                        })?;
                        self.send_page_data(upload, index, offset, Bytes::from(buf))
                            .await?;
                        offset += want as u64;
                        done += want as u64;
                        progress(done, total);
                    }
                }
            }
        }
        Ok(())
    }

    fn check_abort(&self, abort: &mut oneshot::Receiver<ServerMsg>) -> Result<(), ClientError> {
        match abort.try_recv() {
            Ok(ServerMsg::Error { error, .. }) => Err(ClientError::Server(error)),
            Ok(_) => Err(ClientError::Unexpected("the page upload")),
            Err(oneshot::error::TryRecvError::Empty) => Ok(()),
            Err(oneshot::error::TryRecvError::Closed) => {
                Err(ClientError::Closed(self.shared.closed_reason()))
            }
        }
    }

    async fn send_page_data(
        &self,
        upload: RequestId,
        page: u32,
        offset: u64,
        data: Bytes,
    ) -> Result<(), ClientError> {
        let frame = OutFrame::encode_with_data(
            &ClientMsg::PageData {
                upload,
                page,
                offset,
                data: Bytes::new(),
            },
            data,
        )?;
        self.send_frame(frame).await
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<OutFrame>,
    heartbeat: Duration,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let beat = match OutFrame::encode(&ClientMsg::Heartbeat) {
        Ok(f) => f,
        Err(_) => return,
    };
    let mut ticker = tokio::time::interval(heartbeat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let frame = tokio::select! {
            _ = cancel.cancelled() => break,
            f = rx.recv() => match f { Some(f) => f, None => break },
            _ = ticker.tick() => beat.clone(),
        };
        if let Err(e) = frame.write_to(&mut wr).await {
            shared.close(&format!("cannot send to the server: {e}"));
            cancel.cancel();
            return;
        }
    }
    // Closing: what was queued before (an acknowledgement, say) still goes out.
    let flush = async {
        while let Ok(frame) = rx.try_recv() {
            if frame.write_to(&mut wr).await.is_err() {
                return;
            }
        }
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut wr).await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
}

/// Reads one server message without copying page data.
async fn read_server_msg<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
) -> Result<Option<ServerMsg>, crate::ProtoError> {
    match reader.read_frame_bytes().await? {
        None => Ok(None),
        Some(body) => crate::frame::decode_server_msg(body).map(Some),
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: FrameReader<R>,
    events: mpsc::Sender<Event>,
    silence: Duration,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let reason = loop {
        let msg = tokio::select! {
            _ = cancel.cancelled() => break "closed by this terminal".to_owned(),
            r = tokio::time::timeout(silence, read_server_msg(&mut reader)) => r,
        };
        let msg = match msg {
            Err(_) => break format!("the server was silent for {} s", silence.as_secs()),
            Ok(Ok(None)) => break "the server closed the connection".to_owned(),
            Ok(Err(e)) => break e.to_string(),
            Ok(Ok(Some(m))) => m,
        };
        // Session data goes to its session, not through the events.
        let Some(msg) = shared.relay.handle(msg) else {
            continue;
        };
        if let Some(id) = msg.reply_to() {
            let waiter = shared.lock().waiting.remove(&id);
            if let Some(tx) = waiter {
                let _ = tx.send(msg);
            }
            continue;
        }
        let event = match msg {
            ServerMsg::Heartbeat => continue,
            ServerMsg::Deliver(d) => Event::Deliver(d),
            ServerMsg::DeliverData {
                delivery,
                page,
                offset,
                data,
            } => Event::DeliverData {
                delivery,
                page,
                offset,
                data,
            },
            ServerMsg::DeliverEnd { delivery } => Event::DeliverEnd { delivery },
            ServerMsg::Progress { dist, status } => Event::Progress { dist, status },
            ServerMsg::DistributionDone { dist, results } => Event::Done { dist, results },
            ServerMsg::Notice { text } => Event::Notice(text),
            ServerMsg::Demanded {
                demand,
                from,
                user,
                expires_ms,
            } => Event::Demanded(IncomingDemand {
                demand,
                from,
                user,
                expires: Duration::from_millis(u64::from(expires_ms)),
            }),
            ServerMsg::DemandWithdrawn { demand, reason } => {
                Event::DemandWithdrawn { demand, reason }
            }
            ServerMsg::LoggedOut { reason } => Event::LoggedOut(reason),
            ServerMsg::Fax(f) => Event::Fax(f),
            ServerMsg::Error { error, .. } => Event::Notice(error.message),
            _ => continue,
        };
        let sent = tokio::select! {
            _ = cancel.cancelled() => break "closed by this terminal".to_owned(),
            r = events.send(event) => r,
        };
        if sent.is_err() {
            // Nobody listens for events any more; replies still flow.
            continue;
        }
    };
    shared.close(&reason);
    shared.relay.close_all(&reason);
    cancel.cancel();
    let _ = events.try_send(Event::Closed(reason));
}
