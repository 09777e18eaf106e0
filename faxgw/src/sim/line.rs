//! A station's hold on a number: answering incoming calls and dialling out.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use super::exchange::now_secs;
use super::faults::{OnLine, Ring};
use super::wire::{self, CalleeMsg, CallerMsg};
use super::{
    BIT_RATE, CallOutcome, CallProgress, CallRecord, CallResult, Capabilities, DialOptions,
    Exchange, IncomingCall, Reception, SimError, check_number, check_station, for_receiver,
    peer_station,
};
use crate::coding::{self, check};
use crate::page::{FaxPage, MAX_ROWS};

/// How long either end waits for the other's next message once a call is connected.
const PAGE_TIMEOUT: Duration = Duration::from_secs(120);
/// The least time a caller waits for a held number to answer, whatever the ring time.
const MIN_ANSWER_WAIT: Duration = Duration::from_secs(2);
/// Seconds of T.30 phase B (training, DIS/DCS) in a real call, scaled by the time scale.
const HANDSHAKE_SECS: f64 = 6.0;
/// Answered calls waiting for [`Line::accept`].
const RECEIVED_QUEUE: usize = 16;

/// Counts the lines in use; a [`Slot`] frees its line when dropped.
#[derive(Debug)]
struct Lines {
    total: AtomicUsize,
    in_use: AtomicUsize,
}

struct Slot(Arc<Lines>);

impl Lines {
    fn take(self: &Arc<Self>) -> Option<Slot> {
        self.in_use
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.total.load(Ordering::SeqCst)).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the answering side of a line needs, shared with its tasks.
struct Station {
    number: String,
    station: std::sync::RwLock<String>,
    caps: std::sync::RwLock<Capabilities>,
    lines: Arc<Lines>,
}

impl Station {
    fn station(&self) -> String {
        self.station
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn caps(&self) -> Capabilities {
        *self.caps.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// A number held on an [`Exchange`] by this process, with `lines` lines: it answers incoming
/// calls in the background (busy when every line is in use) and dials out.
///
/// Dropping the `Line` stops answering and releases the number.
pub struct Line {
    exchange: Exchange,
    station: Arc<Station>,
    received: Mutex<mpsc::Receiver<IncomingCall>>,
    listener: JoinHandle<()>,
    socket: PathBuf,
    _holder: File,
}

impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Line")
            .field("number", &self.station.number)
            .field("station", &self.station.station())
            .field("lines", &self.lines())
            .finish()
    }
}

impl Line {
    /// Holds `number` on `exchange` for a station called `station` (at most 20 printable
    /// ASCII characters) with `caps` and `lines` lines (at least 1), and starts answering its
    /// calls. Fails with [`SimError::NumberTaken`] while another live process holds it. Call
    /// inside a tokio runtime.
    pub async fn register(
        exchange: &Exchange,
        number: &str,
        station: &str,
        caps: Capabilities,
        lines: usize,
    ) -> Result<Line, SimError> {
        check_number(number)?;
        check_station(station)?;
        let dir = exchange.line_dir(number);
        imagecast_shared::private::create_dir_all(&dir).map_err(|e| SimError::io(&dir, e))?;
        let holder_path = dir.join("holder");
        let mut holder = imagecast_shared::private::open_options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&holder_path)
            .map_err(|e| SimError::io(&holder_path, e))?;
        // `pstn numbers` takes the lock for a moment to see whether a number is held: try a
        // few times before calling the number taken.
        let mut tries = 0;
        loop {
            match holder.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if tries < 5 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(SimError::NumberTaken(number.to_string()));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(SimError::io(&holder_path, e)),
            }
        }
        holder
            .set_len(0)
            .and_then(|()| write!(holder, "{}\n{station}\n", std::process::id()))
            .map_err(|e| SimError::io(&holder_path, e))?;
        let socket = dir.join("sock");
        if socket.as_os_str().len() >= 100 {
            return Err(SimError::PathTooLong(socket.display().to_string()));
        }
        // We hold the number: a socket left here belongs to a process that died.
        match std::fs::remove_file(&socket) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(SimError::io(&socket, e));
            }
            _ => {}
        }
        let listener = UnixListener::bind(&socket).map_err(|e| SimError::io(&socket, e))?;
        let station = Arc::new(Station {
            number: number.to_string(),
            station: std::sync::RwLock::new(station.to_string()),
            caps: std::sync::RwLock::new(caps),
            lines: Arc::new(Lines {
                total: AtomicUsize::new(lines.max(1)),
                in_use: AtomicUsize::new(0),
            }),
        });
        let (tx, rx) = mpsc::channel(RECEIVED_QUEUE);
        let listener = tokio::spawn(listen(listener, station.clone(), tx));
        Ok(Line {
            exchange: exchange.clone(),
            station,
            received: Mutex::new(rx),
            listener,
            socket,
            _holder: holder,
        })
    }

    /// The number this line holds.
    pub fn number(&self) -> &str {
        &self.station.number
    }

    /// This station's ID.
    pub fn station(&self) -> String {
        self.station.station()
    }

    /// This station's capabilities.
    pub fn capabilities(&self) -> Capabilities {
        self.station.caps()
    }

    /// How many lines this station has.
    pub fn lines(&self) -> usize {
        self.station.lines.total.load(Ordering::SeqCst)
    }

    /// Changes the station ID used from the next call on (settings pushed to a gateway).
    pub fn set_station(&self, station: &str) -> Result<(), SimError> {
        check_station(station)?;
        *self
            .station
            .station
            .write()
            .unwrap_or_else(|e| e.into_inner()) = station.to_string();
        Ok(())
    }

    /// Changes the capabilities offered from the next call on.
    pub fn set_capabilities(&self, caps: Capabilities) {
        *self.station.caps.write().unwrap_or_else(|e| e.into_inner()) = caps;
    }

    /// Changes the number of lines (at least 1); calls in progress keep theirs.
    pub fn set_lines(&self, lines: usize) {
        self.station
            .lines
            .total
            .store(lines.max(1), Ordering::SeqCst);
    }

    /// Lines in use right now (calls in either direction).
    pub fn lines_in_use(&self) -> usize {
        self.station.lines.in_use.load(Ordering::SeqCst)
    }

    /// Stops answering: new calls to this number ring out unanswered while the calls in
    /// progress go on; once they have ended, [`Line::accept`] returns [`SimError::Closed`].
    /// For a clean shutdown that loses no confirmed page. The number stays held until the
    /// `Line` is dropped.
    pub fn stop_answering(&self) {
        self.listener.abort();
        let _ = std::fs::remove_file(&self.socket);
    }

    /// The next answered incoming call, once it has ended (complete, rejected at a page, or
    /// dropped), with the pages confirmed in it. Waits until a call comes.
    pub async fn accept(&self) -> Result<IncomingCall, SimError> {
        self.received
            .lock()
            .await
            .recv()
            .await
            .ok_or(SimError::Closed)
    }

    /// Dials `number` and sends `pages` from `options.first_page` on, on a free line of this
    /// station. Every attempt is written to the exchange's call log. Errors are local problems
    /// only (a bad number, no free line, no pages); whatever happened on the network is in
    /// the outcome's [`CallResult`].
    pub async fn dial(
        &self,
        number: &str,
        pages: &[FaxPage],
        options: &DialOptions,
    ) -> Result<CallOutcome, SimError> {
        check_number(number)?;
        if options.first_page == 0 || options.first_page > pages.len() {
            return Err(SimError::NoPages {
                first: options.first_page,
                pages: pages.len(),
            });
        }
        let _slot = self
            .station
            .lines
            .take()
            .ok_or(SimError::NoFreeLine(self.lines()))?;
        let time = now_secs();
        let started = Instant::now();
        let mut outcome = CallOutcome {
            number: number.to_string(),
            result: CallResult::Failed(String::new()),
            remote_station: None,
            pages_confirmed: 0,
            next_page: options.first_page,
            coding: None,
            ecm: false,
            bit_rate: None,
            duration: Duration::ZERO,
        };
        let report = |step: CallProgress| {
            if let Some(progress) = &options.progress {
                let _ = progress.send(step);
            }
        };
        outcome.result = match self.call(number, pages, &mut outcome, &report).await {
            Ok(result) => result,
            Err(e) => CallResult::Failed(e.to_string()),
        };
        outcome.duration = started.elapsed();
        let record = CallRecord {
            time,
            caller: self.station.number.clone(),
            called: number.to_string(),
            result: outcome.result.word().to_string(),
            pages: outcome.pages_confirmed,
            coding: outcome.coding.map_or("", |c| c.name()).to_string(),
            duration_ms: outcome.duration.as_millis() as u64,
            remote_station: outcome.remote_station.clone().unwrap_or_default(),
            reason: outcome.result.reason().unwrap_or_default(),
        };
        if let Err(e) = self.exchange.log_call(&record) {
            tracing::warn!("call log: {e}");
        }
        Ok(outcome)
    }

    /// Sleeps `secs` of real call time scaled by the exchange's time scale.
    async fn pace(&self, secs: f64) {
        let scaled = secs * self.exchange.time_scale();
        if scaled > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(scaled.min(3600.0))).await;
        }
    }

    /// One call: ring, connect, send the pages. Fills `outcome` as it goes.
    async fn call(
        &self,
        number: &str,
        pages: &[FaxPage],
        outcome: &mut CallOutcome,
        report: &impl Fn(CallProgress),
    ) -> Result<CallResult, SimError> {
        let ring_time = self.exchange.ring_time();
        report(CallProgress::Dialling);
        match self.exchange.take_ring(number)? {
            Ring::Busy => return Ok(CallResult::Busy),
            Ring::NoAnswer => {
                tokio::time::sleep(ring_time).await;
                return Ok(CallResult::NoAnswer);
            }
            Ring::Normal => {}
        }
        let socket = self.exchange.line_dir(number).join("sock");
        let deadline = Instant::now() + ring_time;
        let mut stream = loop {
            match UnixStream::connect(&socket).await {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    tokio::time::sleep(left.min(Duration::from_millis(50))).await;
                }
                Err(_) => return Ok(CallResult::NoAnswer),
            }
        };
        wire::send(
            &mut stream,
            &CallerMsg::Call {
                caller: self.station.number.clone(),
                called: number.to_string(),
                station: self.station.station(),
                caps: self.station.caps(),
            },
        )
        .await
        .map_err(|e| SimError::io(&socket, e))?;
        let answer_wait = ring_time.max(MIN_ANSWER_WAIT);
        let their_caps = match tokio::time::timeout(answer_wait, wire::recv(&mut stream)).await {
            Err(_) => return Ok(CallResult::NoAnswer),
            Ok(Err(e)) => return Ok(CallResult::Failed(format!("no answer signal: {e}"))),
            Ok(Ok(None)) => return Ok(CallResult::Failed("the line dropped while ringing".into())),
            Ok(Ok(Some(CalleeMsg::Busy))) => return Ok(CallResult::Busy),
            Ok(Ok(Some(CalleeMsg::Answer { station, caps }))) => {
                outcome.remote_station = Some(peer_station(&station));
                caps
            }
            Ok(Ok(Some(other))) => {
                return Ok(CallResult::Failed(format!(
                    "unexpected {other:?} while ringing"
                )));
            }
        };
        let on_line: OnLine = self.exchange.take_on_line(number)?;
        let (coding, ecm) = self.station.caps().negotiate(their_caps);
        outcome.coding = Some(coding);
        outcome.ecm = ecm;
        outcome.bit_rate = Some(BIT_RATE);
        report(CallProgress::Connected {
            remote_station: outcome.remote_station.clone().unwrap_or_default(),
            coding,
            ecm,
        });
        self.pace(HANDSHAKE_SECS).await;
        let first = outcome.next_page;
        for (i, page) in pages[first - 1..].iter().enumerate() {
            let call_page = i as u32 + 1;
            let doc_page = first + i;
            report(CallProgress::SendingPage {
                page: doc_page,
                of: pages.len(),
            });
            let page = for_receiver(page, their_caps.fine).into_owned();
            let (resolution, rows) = (page.resolution, page.rows);
            let mut data = tokio::task::spawn_blocking(move || coding::encode(&page, coding))
                .await
                .map_err(|e| SimError::Protocol(format!("page coder: {e}")))?;
            let fcs = ecm.then(|| check::frame_check(&data));
            if on_line.page_error == Some(call_page) {
                check::corrupt(&mut data);
            }
            self.pace(data.len() as f64 * 8.0 / f64::from(BIT_RATE))
                .await;
            let msg = CallerMsg::Page {
                number: call_page,
                resolution,
                coding,
                rows,
                fcs,
                data,
            };
            if let Err(e) = wire::send(&mut stream, &msg).await {
                return Ok(CallResult::Failed(format!(
                    "the line dropped during page {doc_page}: {e}"
                )));
            }
            match tokio::time::timeout(PAGE_TIMEOUT, wire::recv(&mut stream)).await {
                Ok(Ok(Some(CalleeMsg::Confirm { number }))) if number == call_page => {
                    outcome.pages_confirmed += 1;
                    outcome.next_page = doc_page + 1;
                    report(CallProgress::PageConfirmed { page: doc_page });
                }
                Ok(Ok(Some(CalleeMsg::Reject { reason, .. }))) => {
                    return Ok(CallResult::PageError {
                        page: doc_page,
                        reason: imagecast_shared::text::escape_bounded(&reason, 200).into_owned(),
                    });
                }
                Ok(Ok(None)) | Ok(Err(_)) => {
                    return Ok(CallResult::Failed(format!(
                        "the receiver hung up during page {doc_page}"
                    )));
                }
                Ok(Ok(Some(other))) => {
                    return Ok(CallResult::Failed(format!(
                        "unexpected {other:?} after page {doc_page}"
                    )));
                }
                Err(_) => {
                    return Ok(CallResult::Failed(format!(
                        "no confirmation of page {doc_page} within {} s",
                        PAGE_TIMEOUT.as_secs()
                    )));
                }
            }
            let more = doc_page < pages.len();
            if more && on_line.hang_up_after == Some(call_page) {
                drop(stream);
                return Ok(CallResult::Failed(format!(
                    "the line dropped after page {doc_page}"
                )));
            }
        }
        // The receiver may already be gone once the last page is confirmed: that is fine.
        let _ = wire::send(&mut stream, &CallerMsg::Done).await;
        Ok(CallResult::Sent)
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.listener.abort();
        // Remove the socket while the holder lock is still ours (fields drop after this).
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Accepts connections on the line's socket, one task per call.
async fn listen(listener: UnixListener, station: Arc<Station>, tx: mpsc::Sender<IncomingCall>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(answer(stream, station.clone(), tx.clone()));
            }
            Err(e) => {
                tracing::warn!("line {}: accept: {e}", station.number);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Answers one call: busy when every line is in use, otherwise receives and checks its pages
/// and hands the call to [`Line::accept`].
async fn answer(mut stream: UnixStream, station: Arc<Station>, tx: mpsc::Sender<IncomingCall>) {
    let first =
        tokio::time::timeout(MIN_ANSWER_WAIT * 5, wire::recv::<CallerMsg>(&mut stream)).await;
    let Ok(Ok(Some(CallerMsg::Call {
        caller,
        called,
        station: remote,
        caps,
    }))) = first
    else {
        tracing::warn!("line {}: a connection that did not call", station.number);
        return;
    };
    let caller = if check_number(&caller).is_ok() {
        caller
    } else {
        "?".to_string()
    };
    let Some(slot) = station.lines.take() else {
        let _ = wire::send(&mut stream, &CalleeMsg::Busy).await;
        return;
    };
    let answered = Instant::now();
    let my_caps = station.caps();
    let reply = CalleeMsg::Answer {
        station: station.station(),
        caps: my_caps,
    };
    if wire::send(&mut stream, &reply).await.is_err() {
        return;
    }
    let (coding, ecm) = my_caps.negotiate(caps);
    let mut call = IncomingCall {
        caller,
        called: if called == station.number {
            called
        } else {
            station.number.clone()
        },
        remote_station: peer_station(&remote),
        pages: Vec::new(),
        coding,
        ecm,
        reception: Reception::Complete,
        duration: Duration::ZERO,
    };
    call.reception = receive_pages(&mut stream, &station, &mut call).await;
    call.duration = answered.elapsed();
    // The line is free again before anyone hears of the call.
    drop(slot);
    let _ = tx.send(call).await;
}

/// Receives pages until the caller is done, a page fails its check, or the line drops.
async fn receive_pages(
    stream: &mut UnixStream,
    station: &Station,
    call: &mut IncomingCall,
) -> Reception {
    loop {
        let msg = match tokio::time::timeout(PAGE_TIMEOUT, wire::recv::<CallerMsg>(stream)).await {
            Err(_) => return Reception::Dropped("the caller went silent".into()),
            Ok(Err(e)) => return Reception::Dropped(e.to_string()),
            Ok(Ok(None)) => {
                return Reception::Dropped(format!(
                    "the caller hung up after {} pages",
                    call.pages.len()
                ));
            }
            Ok(Ok(Some(msg))) => msg,
        };
        match msg {
            CallerMsg::Done => return Reception::Complete,
            CallerMsg::Call { .. } => return Reception::Dropped("a second call signal".into()),
            CallerMsg::Page {
                number,
                resolution,
                coding,
                rows,
                fcs,
                data,
            } => {
                let refused = if coding != call.coding {
                    Some(format!("{} was not agreed", coding.name()))
                } else if rows == 0 || rows > MAX_ROWS {
                    Some(format!("a page of {rows} rows"))
                } else if call.ecm && fcs.is_none() {
                    Some("an error-correction page without a frame check".into())
                } else if resolution == crate::page::Resolution::Fine && !station.caps().fine {
                    Some("fine resolution was not offered".into())
                } else {
                    None
                };
                let result = match refused {
                    Some(reason) => Err(reason),
                    None => {
                        let fcs = if call.ecm { fcs } else { None };
                        let checked = tokio::task::spawn_blocking(move || {
                            check::check_page(&data, coding, resolution, rows, fcs)
                        })
                        .await;
                        match checked {
                            Ok(c) if c.confirmed() => Ok(c.page),
                            Ok(c) => Err(c.reason().unwrap_or_default()),
                            Err(e) => Err(format!("page check: {e}")),
                        }
                    }
                };
                match result {
                    Ok(page) => {
                        call.pages.push(page);
                        if wire::send(stream, &CalleeMsg::Confirm { number })
                            .await
                            .is_err()
                        {
                            return Reception::Dropped("the caller hung up".into());
                        }
                    }
                    Err(reason) => {
                        tracing::info!(
                            "line {}: page {number} from {} rejected: {reason}",
                            station.number,
                            call.caller
                        );
                        let _ = wire::send(
                            stream,
                            &CalleeMsg::Reject {
                                number,
                                reason: reason.clone(),
                            },
                        )
                        .await;
                        return Reception::PageRejected {
                            page: number as usize,
                            reason,
                        };
                    }
                }
            }
        }
    }
}
