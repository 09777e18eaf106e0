//! The delivery worker of one receiving connection: it pushes the device's queued deliveries
//! one after the other through the connection's data queue, waits for each acknowledgement and
//! records the result (see [`super`] for the rules).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use imagecast_shared::frame::OutFrame;
use imagecast_shared::msg::{
    Deliver, DeliveryOutcome, DeliveryState, DestinationStatus, ServerMsg,
};
use imagecast_shared::{DeliveryId, DistributionId};

use crate::net::outbox::ConnHandle;
use crate::state::ServerState;
use crate::store::queue::{self, PendingDelivery};
use crate::store::spool::SpoolError;

/// Failed tries before a delivery the terminal never acknowledges is given up as failed. A try
/// fails when the terminal's connection drops while the image is pushed or before its
/// acknowledgement, or when no acknowledgement comes in time; a crash or a shutdown of the
/// server is not the terminal's failure and does not count.
pub const MAX_ATTEMPTS: u32 = 5;

/// Why a worker stops.
enum Stop {
    /// The connection is gone.
    Disconnected,
}

/// Makes `conn` the device's receiving connection (an older one is dropped) and starts its
/// worker, which first pushes what was queued while the device was offline.
pub fn attach_receiver(state: &Arc<ServerState>, domain: &str, conn: &ConnHandle) {
    if let Some(key) = state.connections.attach_receiver(domain, conn) {
        tokio::spawn(run_worker(state.clone(), key, conn.clone()));
    }
}

/// Tells the workers of these domains that deliveries were queued for them, starting the
/// workers of online devices that do not run.
pub fn wake<'a>(state: &Arc<ServerState>, domains: impl IntoIterator<Item = &'a str>) {
    for (key, conn) in state.connections.wake(domains) {
        tokio::spawn(run_worker(state.clone(), key, conn));
    }
}

/// Runs the delivery worker of one receiving connection (of the device with domain key
/// `domain`) until nothing is queued for the device or the connection closes. Started by
/// [`attach_receiver`] and [`wake`], never twice at once for one connection (the connection's
/// outbox keeps the flag).
async fn run_worker(state: Arc<ServerState>, domain: String, conn: ConnHandle) {
    loop {
        conn.worker_looks();
        let d = domain.clone();
        let next = state.db.call(move |c| queue::next_pending(c, &d)).await;
        match next {
            Ok(Some(delivery)) => {
                if let Err(Stop::Disconnected) =
                    Box::pin(deliver_one(&state, &conn, delivery)).await
                {
                    return;
                }
            }
            Ok(None) => {
                if conn.worker_may_end() {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(domain, error = %e, "cannot read the delivery queue");
                tokio::select! {
                    _ = conn.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn deliver_one(
    state: &Arc<ServerState>,
    conn: &ConnHandle,
    d: PendingDelivery,
) -> Result<(), Stop> {
    if d.attempts >= MAX_ATTEMPTS {
        let reason =
            format!("the terminal did not acknowledge the image after {MAX_ATTEMPTS} attempts");
        finish(state, d.id, DeliveryState::Failed(reason)).await;
        return Ok(());
    }
    let sizes: Vec<u64> = d.pages.iter().map(|p| p.size).collect();
    let image = match state.images.get(&state.spool, d.dist, &sizes).await {
        Ok(image) => image,
        Err(e) => {
            tracing::error!(dist = %d.dist, error = %e, "spooled image unreadable");
            let reason = format!("the server cannot read the spooled image: {}", e.source);
            finish(state, d.id, DeliveryState::Failed(reason)).await;
            return Ok(());
        }
    };
    // A received fax is announced as one just before its delivery (to terminals that speak fax).
    let fax_note = crate::fax::reception::incoming_frame(state, d.dist, &d.user, conn).await;
    // A connection already taken over by a newer one must not claim the acknowledgement slot:
    // the newer connection's worker (started only after this one was cancelled) may already
    // hold it. Nothing is awaited between this check and the claim.
    if conn.is_cancelled() {
        return Err(Stop::Disconnected);
    }
    publish_sending(state, &d);
    let ack = state.acks.expect(d.id, conn.id);
    let header = ServerMsg::Deliver(Deliver {
        delivery: d.id,
        dist: d.dist,
        sender: d.sender.clone(),
        user: d.user.clone(),
        accepted_at_ms: d.accepted_ms.max(0) as u64,
        pages: d.pages.clone(),
        print: true,
    });
    let pushed = async {
        if let Some(note) = fax_note {
            push(conn, Ok(note)).await?;
        }
        push(conn, OutFrame::encode(&header)).await?;
        for page in 0..image.page_count() {
            let mut chunks = match image.chunks(page).await {
                Ok(c) => c,
                Err(e) => return Err(Err(e)),
            };
            loop {
                match chunks.next().await {
                    Ok(Some((offset, bytes))) => {
                        let frame = data_frame(d.id, page as u32, offset, bytes);
                        push(conn, frame).await?;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(Err(e)),
                }
            }
        }
        push(
            conn,
            OutFrame::encode(&ServerMsg::DeliverEnd { delivery: d.id }),
        )
        .await
    };
    match pushed.await {
        Ok(()) => {}
        Err(Ok(Stop::Disconnected)) => {
            // Only this connection's slot goes: a newer connection of the device may already
            // have put its own there.
            state.acks.forget(d.id, conn.id);
            count_failure(state, d.id).await;
            return Err(Stop::Disconnected);
        }
        Err(Err(e)) => {
            state.acks.forget(d.id, conn.id);
            tracing::error!(dist = %d.dist, error = %e, "spooled image unreadable");
            // The terminal holds a half delivery: drop the connection so it discards it.
            conn.cancel();
            let reason = format!("the server cannot read the spooled image: {}", e.source);
            finish(state, d.id, DeliveryState::Failed(reason)).await;
            return Err(Stop::Disconnected);
        }
    }
    // The acknowledgement first: a terminal that acknowledges and hangs up at once (`receive
    // --count 1`) has its acknowledgement handed over before its connection is cancelled,
    // and both are ready when this wakes; an unbiased choice would requeue a delivery the
    // terminal stored.
    let outcome = tokio::select! {
        biased;
        r = tokio::time::timeout(state.config.ack_timeout, ack) => r,
        _ = conn.cancelled() => {
            state.acks.forget(d.id, conn.id);
            count_failure(state, d.id).await;
            return Err(Stop::Disconnected);
        }
    };
    let outcome = match outcome {
        Ok(Ok(o)) => o,
        // Our slot was replaced: the worker of an older connection of this device, on its way
        // out, took this delivery too. It is still queued: take it again.
        Ok(Err(_)) if !conn.is_cancelled() => return Ok(()),
        // The connection went before the acknowledgement (its slots went with it): a failed
        // attempt, as when the cancellation is seen first.
        Ok(Err(_)) => {
            count_failure(state, d.id).await;
            return Err(Stop::Disconnected);
        }
        Err(_) => {
            state.acks.forget(d.id, conn.id);
            count_failure(state, d.id).await;
            tracing::warn!(delivery = %d.id, "no acknowledgement in time; dropping the connection");
            conn.cancel();
            return Err(Stop::Disconnected);
        }
    };
    let result = match outcome {
        DeliveryOutcome::Stored => DeliveryState::Delivered,
        DeliveryOutcome::Printed => DeliveryState::Printed,
        DeliveryOutcome::Refused(reason) => {
            DeliveryState::Failed(format!("the terminal refused it: {reason}"))
        }
    };
    finish(state, d.id, result).await;
    Ok(())
}

/// Counts a failed try of `delivery` against the terminal, unless the server is stopping.
async fn count_failure(state: &ServerState, delivery: DeliveryId) {
    if state.shutdown.is_cancelled() {
        return;
    }
    let counted = state
        .db
        .call(move |c| queue::count_failed_attempt(c, delivery))
        .await;
    if let Err(e) = counted {
        tracing::error!(%delivery, error = %e, "cannot count a failed delivery attempt");
    }
}

fn data_frame(
    delivery: DeliveryId,
    page: u32,
    offset: u64,
    bytes: Bytes,
) -> Result<OutFrame, imagecast_shared::ProtoError> {
    OutFrame::encode_with_data(
        &ServerMsg::DeliverData {
            delivery,
            page,
            offset,
            data: Bytes::new(),
        },
        bytes,
    )
}

async fn push(
    conn: &ConnHandle,
    frame: Result<OutFrame, imagecast_shared::ProtoError>,
) -> Result<(), Result<Stop, SpoolError>> {
    let frame = match frame {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a delivery frame");
            conn.cancel();
            return Err(Ok(Stop::Disconnected));
        }
    };
    conn.push_data(frame)
        .await
        .map_err(|_| Ok(Stop::Disconnected))
}

fn publish_sending(state: &ServerState, d: &PendingDelivery) {
    state.watchers.publish(
        d.dist,
        &ServerMsg::Progress {
            dist: d.dist,
            status: DestinationStatus {
                destination: d.destination.clone(),
                state: DeliveryState::Sending,
            },
        },
        false,
    );
}

/// Records a delivery's result and tells the watchers; when it was the distribution's last,
/// sends the final results and erases the spooled image (FIG. 4, S45).
pub async fn finish(state: &ServerState, delivery: DeliveryId, result: DeliveryState) {
    let recorded = state
        .db
        .call(move |c| queue::record(c, delivery, &result))
        .await;
    let recorded = match recorded {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(%delivery, error = %e, "cannot record a delivery result");
            return;
        }
    };
    tracing::info!(
        dist = %recorded.dist,
        destination = %recorded.status.destination.domain,
        state = ?recorded.status.state,
        "delivery finished"
    );
    state.watchers.publish(
        recorded.dist,
        &ServerMsg::Progress {
            dist: recorded.dist,
            status: recorded.status.clone(),
        },
        false,
    );
    if let Some(results) = recorded.done {
        finish_distribution(state, recorded.dist, results);
    }
}

fn finish_distribution(state: &ServerState, dist: DistributionId, results: Vec<DestinationStatus>) {
    state
        .watchers
        .publish(dist, &ServerMsg::DistributionDone { dist, results }, true);
    state.images.remove(&dist);
    if let Err(e) = state.spool.remove(&dist) {
        tracing::error!(%dist, error = %e, "cannot erase a finished image");
    }
}
