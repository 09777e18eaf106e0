//! Delivery: pushing accepted images to terminals over their own connections (FIG. 4, S44),
//! store and forward for terminals that are offline, and recording each result.
//!
//! A receiving connection runs one worker while there is something queued for its device: it
//! starts when the connection attaches (to push what was queued while the device was offline)
//! and when [`crate::hub::Hub::wake`] says deliveries were queued, and ends when the queue is
//! empty, so an idle terminal costs no task. The worker takes the device's oldest queued
//! delivery from the database, pushes the header, the pages and the end marker through the
//! connection's bounded data queue (a slow terminal slows only its own worker), and waits for
//! the terminal's acknowledgement, which it records in the queue and journal. A connection
//! that drops leaves the delivery queued; it is pushed again when the terminal comes back, with
//! the same delivery and distribution IDs, so the terminal can recognise it.
//!
//! When a newer receiving connection of the device takes over, the older worker may still be
//! on its way out with the same delivery: a worker whose connection is gone never clears the
//! acknowledgement slot (it may already be the newer connection's), and a worker whose slot
//! was taken while its connection lives simply takes the delivery again. Only failures on the
//! terminal's side count toward [`MAX_ATTEMPTS`]; a server crash does not.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use imagecast_shared::frame::OutFrame;
use imagecast_shared::msg::{
    Deliver, DeliveryOutcome, DeliveryState, DestinationStatus, ServerMsg,
};
use imagecast_shared::{DeliveryId, DistributionId};

use crate::ServerState;
use crate::hub::ConnHandle;
use crate::queue::{self, PendingDelivery};

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

/// Runs the delivery worker of one receiving connection (of the device with domain key
/// `domain`) until nothing is queued for the device or the connection closes. Started by the
/// [`crate::hub::Hub`], never twice at once for one connection.
pub async fn run_worker(state: Arc<ServerState>, domain: String, conn: ConnHandle) {
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
    // A connection already taken over by a newer one must not claim the acknowledgement slot:
    // the newer connection's worker (started only after this one was cancelled) may already
    // hold it. Nothing is awaited between this check and the claim.
    if conn.is_cancelled() {
        return Err(Stop::Disconnected);
    }
    publish_sending(state, &d);
    let ack = state.hub.expect_ack(d.id, conn.id);
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
            state.hub.forget_ack(d.id, conn.id);
            count_failure(state, d.id).await;
            return Err(Stop::Disconnected);
        }
        Err(Err(e)) => {
            state.hub.forget_ack(d.id, conn.id);
            tracing::error!(dist = %d.dist, error = %e, "spooled image unreadable");
            // The terminal holds a half delivery: drop the connection so it discards it.
            conn.cancel();
            let reason = format!("the server cannot read the spooled image: {}", e.source);
            finish(state, d.id, DeliveryState::Failed(reason)).await;
            return Err(Stop::Disconnected);
        }
    }
    let outcome = tokio::select! {
        _ = conn.cancelled() => {
            state.hub.forget_ack(d.id, conn.id);
            count_failure(state, d.id).await;
            return Err(Stop::Disconnected);
        }
        r = tokio::time::timeout(state.config.ack_timeout, ack) => r,
    };
    let outcome = match outcome {
        Ok(Ok(o)) => o,
        // Our slot was replaced: the worker of an older connection of this device, on its way
        // out, took this delivery too. It is still queued: take it again.
        Ok(Err(_)) if !conn.is_cancelled() => return Ok(()),
        Ok(Err(_)) => return Err(Stop::Disconnected),
        Err(_) => {
            state.hub.forget_ack(d.id, conn.id);
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
) -> Result<(), Result<Stop, crate::spool::SpoolError>> {
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
    state.hub.publish(
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
    state.hub.publish(
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
        .hub
        .publish(dist, &ServerMsg::DistributionDone { dist, results }, true);
    state.images.remove(&dist);
    if let Err(e) = state.spool.remove(&dist) {
        tracing::error!(%dist, error = %e, "cannot erase a finished image");
    }
}
