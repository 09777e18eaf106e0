//! The panel's connection: dials the server, keeps dialling with back-off when it goes away
//! (the app shows the countdown and keeps the operator's place), and prints what is delivered:
//! pages go into the output tray through the [`Inbox`], which recognises redeliveries, and each
//! delivery is acknowledged as printed. It takes connection demands, which the app puts to
//! the operator.

use std::path::PathBuf;
use std::time::Duration;

use imagecast_shared::client::{Client, ClientConfig, ClientError, Event, Inbox, InboxMode};
use imagecast_shared::msg::DeliveryOutcome;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::app::AppEvent;
use crate::paper::pages::count_pages;

/// Back-off between attempts: 0.5 s doubling to 10 s (each pause drawn from the upper half
/// of its step, [`imagecast_shared::client::jittered`]).
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64 << attempt.clamp(1, 6).saturating_sub(1))
        .min(Duration::from_secs(10))
}

/// Runs the connection until `cancel`; `retry` cuts a back-off short (the operator asked
/// for the server while offline).
pub async fn run(
    cfg: ClientConfig,
    tray: PathBuf,
    tx: mpsc::UnboundedSender<AppEvent>,
    cancel: CancellationToken,
    retry: std::sync::Arc<tokio::sync::Notify>,
) {
    let mut inbox = match Inbox::open(&tray, InboxMode::Store) {
        Ok(i) => Some(i),
        Err(e) => {
            let _ = tx.send(AppEvent::Server(Event::Notice(format!(
                "cannot receive: {e}"
            ))));
            None
        }
    };
    let mut attempt = 1u32;
    loop {
        let connected = tokio::select! {
            _ = cancel.cancelled() => return,
            r = Client::connect(&cfg) => r,
        };
        let pause;
        match connected {
            Ok((client, mut events)) => {
                attempt = 1;
                let welcome = Box::new(client.welcome().clone());
                // The panel takes connection demands and asks its operator (seed 004).
                if let Err(e) = client.relay_listen().await {
                    tracing::info!(error = %e, "this server takes no real-time sessions");
                }
                let _ = tx.send(AppEvent::Connected(client.clone(), welcome));
                let reason = loop {
                    let ev = tokio::select! {
                        _ = cancel.cancelled() => {
                            client.close().await;
                            return;
                        }
                        ev = events.recv() => ev,
                    };
                    let Some(ev) = ev else {
                        break "connection closed".to_owned();
                    };
                    match ev {
                        Event::Closed(reason) => break reason,
                        // A fax note goes to the inbox, which names the delivery that
                        // follows as a fax.
                        Event::Deliver(_)
                        | Event::DeliverData { .. }
                        | Event::DeliverEnd { .. }
                        | Event::Fax(imagecast_shared::fax::FaxEvent::Incoming(_)) => {
                            deliver(&client, inbox.as_mut(), &ev, &tx).await;
                        }
                        other => {
                            let _ = tx.send(AppEvent::Server(other));
                        }
                    }
                };
                client.close().await;
                // What was cut off comes again from the start on the next connection.
                if let Some(inbox) = inbox.as_mut() {
                    inbox.abandon_incomplete();
                }
                pause = imagecast_shared::client::jittered(backoff(attempt));
                let _ = tx.send(AppEvent::Disconnected {
                    reason,
                    attempt,
                    retry_in: pause,
                });
            }
            Err(ClientError::Refused(r)) => {
                let _ = tx.send(AppEvent::Refused(r.message));
                return;
            }
            Err(e) => {
                pause = imagecast_shared::client::jittered(backoff(attempt));
                let _ = tx.send(AppEvent::Disconnected {
                    reason: e.to_string(),
                    attempt: attempt + 1,
                    retry_in: pause,
                });
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
            _ = retry.notified() => {}
        }
        attempt += 1;
    }
}

async fn deliver(
    client: &Client,
    inbox: Option<&mut Inbox>,
    ev: &Event,
    tx: &mpsc::UnboundedSender<AppEvent>,
) {
    let Some(inbox) = inbox else {
        if let Event::DeliverEnd { delivery } = ev {
            let _ = client
                .ack(
                    *delivery,
                    DeliveryOutcome::Refused("the output tray is unusable".into()),
                )
                .await;
        }
        return;
    };
    match inbox.handle(ev) {
        Ok(None) => {}
        Ok(Some(r)) => {
            let _ = client.ack(r.delivery, DeliveryOutcome::Printed).await;
            let files = r.files.clone();
            let pages = tokio::task::spawn_blocking(move || count_pages(&files))
                .await
                .unwrap_or(r.pages);
            let fax = inbox.take_fax(&r.dist).map(Box::new);
            let _ = tx.send(AppEvent::Received {
                received: r,
                pages,
                fax,
            });
        }
        Err(e) => {
            let _ = tx.send(AppEvent::Server(Event::Notice(format!(
                "cannot print: {e}"
            ))));
            if let Event::DeliverEnd { delivery } = ev {
                let _ = client
                    .ack(*delivery, DeliveryOutcome::Refused(e.to_string()))
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_ten_seconds() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(5), Duration::from_secs(8));
        assert_eq!(backoff(9), Duration::from_secs(10));
    }
}
