//! One logged-in connection to hfaxd, the HylaFAX client-protocol server.
//!
//! Data connections are passive (`PASV`): the server listens, and the driver connects to
//! the port it names on the **control connection's peer address** (the address in the
//! `227` reply is ignored, so a server cannot point the driver elsewhere). Every command,
//! connection and transfer read has the session's timeout.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::HylafaxError;
use super::reply::{self, Reply, passive_port, shown, value_after};

/// A connection to hfaxd.
pub struct Session {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    peer: IpAddr,
    timeout: Duration,
    /// Set when a data command was refused after `PASV`: hfaxd keeps the unaccepted data
    /// connection and would hand it to the next transfer, so the session is not used again.
    out_of_step: bool,
}

/// The command as it may be shown: the argument of `PASS` and `ADMIN` is replaced.
fn shown_command(cmd: &str) -> String {
    let upper = cmd.to_ascii_uppercase();
    if upper.starts_with("PASS ") || upper.starts_with("ADMIN ") {
        let verb = cmd.split(' ').next().unwrap_or("");
        format!("{verb} ****")
    } else {
        shown(cmd)
    }
}

impl Session {
    /// Connects to `addr` (`HOST:PORT`) and reads the server's greeting (`220`).
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Session, HylafaxError> {
        let stream = within(timeout, "connecting", TcpStream::connect(addr))
            .await?
            .map_err(|source| HylafaxError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let peer = stream
            .peer_addr()
            .map_err(|source| HylafaxError::Connect {
                addr: addr.to_owned(),
                source,
            })?
            .ip();
        let (read, writer) = stream.into_split();
        let mut session = Session {
            reader: BufReader::new(read),
            writer,
            peer,
            timeout,
            out_of_step: false,
        };
        let greeting = session.read_reply("the greeting").await?;
        if greeting.code != 220 {
            return Err(HylafaxError::Refused {
                command: "the connection".into(),
                code: greeting.code,
                text: greeting.shown(),
            });
        }
        tracing::debug!(server = %greeting.shown(), "connected to hfaxd");
        Ok(session)
    }

    /// `USER`, then `PASS` when the server asks for a password (`331`). A user the server's
    /// `hosts.hfaxd` admits without a password is logged in at `USER` (`230`).
    pub async fn login(&mut self, user: &str, password: Option<&str>) -> Result<(), HylafaxError> {
        let refused = |r: &Reply| HylafaxError::Login {
            user: shown(user),
            text: format!("{} {}", r.code, r.shown()),
        };
        let r = self.command(&format!("USER {user}")).await?;
        match r.code {
            230 => return Ok(()),
            331 => {}
            _ => return Err(refused(&r)),
        }
        let Some(password) = password else {
            return Err(HylafaxError::Login {
                user: shown(user),
                text: format!(
                    "the server asks for a password; set {}",
                    super::PASSWORD_ENV
                ),
            });
        };
        let r = self.command(&format!("PASS {password}")).await?;
        if r.code == 230 {
            Ok(())
        } else {
            Err(refused(&r))
        }
    }

    /// `ADMIN`: administrative privileges (needed to see and remove received faxes that are
    /// not public).
    pub async fn admin(&mut self, password: &str) -> Result<(), HylafaxError> {
        self.expect(&format!("ADMIN {password}"), &[230])
            .await
            .map(drop)
    }

    /// Sends one command line and reads its reply.
    pub async fn command(&mut self, cmd: &str) -> Result<Reply, HylafaxError> {
        if self.out_of_step {
            return Err(HylafaxError::Protocol(
                "a data command was refused after PASV; this session is not used again".into(),
            ));
        }
        if cmd.contains(['\r', '\n']) || cmd.len() > reply::MAX_LINE {
            return Err(HylafaxError::Config(format!(
                "refusing to send {:?}: it holds a line break or is too long",
                shown_command(cmd)
            )));
        }
        let step = shown_command(cmd);
        tracing::trace!(command = %step, "hfaxd <-");
        let line = format!("{cmd}\r\n");
        within(self.timeout, &step, self.writer.write_all(line.as_bytes()))
            .await?
            .map_err(|source| HylafaxError::Io {
                step: step.clone(),
                source,
            })?;
        let r = self.read_reply(&step).await?;
        tracing::trace!(code = r.code, text = %r.shown(), "hfaxd ->");
        Ok(r)
    }

    /// [`Session::command`], refused unless the reply code is one of `codes`.
    pub async fn expect(&mut self, cmd: &str, codes: &[u16]) -> Result<Reply, HylafaxError> {
        let r = self.command(cmd).await?;
        if codes.contains(&r.code) {
            Ok(r)
        } else {
            Err(HylafaxError::Refused {
                command: shown_command(cmd),
                code: r.code,
                text: r.shown(),
            })
        }
    }

    async fn read_reply(&mut self, step: &str) -> Result<Reply, HylafaxError> {
        within(
            self.timeout,
            step,
            reply::read_reply(&mut self.reader, step),
        )
        .await?
    }

    /// Whether a refused data command left this session unusable (open a new one).
    pub fn is_out_of_step(&self) -> bool {
        self.out_of_step
    }

    /// [`Session::expect`] for the command of a transfer after `PASV`: a refusal leaves the
    /// session out of step.
    async fn start_transfer(&mut self, cmd: &str) -> Result<Reply, HylafaxError> {
        let r = self.expect(cmd, &[125, 150]).await;
        if r.is_err() {
            self.out_of_step = true;
        }
        r
    }

    /// `SIZE PATH`: the size of a file, `None` when it does not exist or may not be seen
    /// (`550`). Checked before `RETR`, which must not be refused (see
    /// [`Session::is_out_of_step`]).
    pub async fn size(&mut self, path: &str) -> Result<Option<u64>, HylafaxError> {
        let cmd = format!("SIZE {path}");
        let r = self.command(&cmd).await?;
        match r.code {
            213 => r.text().trim().parse().map(Some).map_err(|_| {
                HylafaxError::Protocol(format!("SIZE: {:?} is not a size", r.shown()))
            }),
            550 => Ok(None),
            code => Err(HylafaxError::Refused {
                command: shown(&cmd),
                code,
                text: r.shown(),
            }),
        }
    }

    /// `PASV` and a connection to the port it names, on the control connection's peer.
    async fn open_data(&mut self) -> Result<TcpStream, HylafaxError> {
        let r = self.expect("PASV", &[227]).await?;
        let port = passive_port(r.text())
            .ok_or_else(|| HylafaxError::Protocol(format!("PASV: no port in {:?}", r.shown())))?;
        within(
            self.timeout,
            "the data connection",
            TcpStream::connect((self.peer, port)),
        )
        .await?
        .map_err(|source| HylafaxError::Io {
            step: format!("the data connection to port {port}"),
            source,
        })
    }

    /// Sends `cmd` (`RETR`, `LIST`) over a new data connection and reads what comes back,
    /// at most `limit` bytes.
    pub async fn download(&mut self, cmd: &str, limit: usize) -> Result<Vec<u8>, HylafaxError> {
        let mut data = self.open_data().await?;
        self.start_transfer(cmd).await?;
        let step = shown_command(cmd);
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = within(self.timeout, &step, data.read(&mut buf))
                .await?
                .map_err(|source| HylafaxError::Io {
                    step: step.clone(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            if out.len() + n > limit {
                return Err(HylafaxError::TooLarge {
                    what: format!("the answer to {step}"),
                    limit,
                });
            }
            out.extend_from_slice(&buf[..n]);
        }
        drop(data);
        let done = self.read_reply(&step).await?;
        if done.code != 226 && done.code != 250 {
            return Err(HylafaxError::Refused {
                command: step,
                code: done.code,
                text: done.shown(),
            });
        }
        Ok(out)
    }

    /// `STOT`: stores `data` as a temporary file the server names (removed when this
    /// session ends, unless a job links it); returns its name, e.g. `/tmp/doc7.tif`.
    pub async fn store_temp(&mut self, data: &[u8]) -> Result<String, HylafaxError> {
        let mut conn = self.open_data().await?;
        let r = self.start_transfer("STOT").await?;
        let name = value_after(r.text(), "FILE:")
            .filter(|n| n.chars().all(|c| c.is_ascii_graphic()))
            .map(str::to_owned)
            .ok_or_else(|| {
                HylafaxError::Protocol(format!("STOT: no file name in {:?}", r.shown()))
            })?;
        within(self.timeout, "STOT", async {
            conn.write_all(data).await?;
            conn.shutdown().await
        })
        .await?
        .map_err(|source| HylafaxError::Io {
            step: "STOT".into(),
            source,
        })?;
        drop(conn);
        let done = self.read_reply("STOT").await?;
        if done.code != 226 {
            return Err(HylafaxError::Refused {
                command: "STOT".into(),
                code: done.code,
                text: done.shown(),
            });
        }
        Ok(name)
    }

    /// `JNEW`: a new job (suspended, a copy of the default job); returns its ID.
    pub async fn new_job(&mut self) -> Result<String, HylafaxError> {
        let r = self.expect("JNEW", &[200]).await?;
        value_after(r.text(), "jobid:")
            .filter(|id| id.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_owned)
            .ok_or_else(|| HylafaxError::Protocol(format!("JNEW: no job ID in {:?}", r.shown())))
    }

    /// `JPARM NAME VALUE` on the current job.
    pub async fn job_param(&mut self, name: &str, value: &str) -> Result<(), HylafaxError> {
        self.expect(&format!("JPARM {name} {value}"), &[200, 213])
            .await
            .map(drop)
    }

    /// `JSUBM ID`: hands a job to the scheduler (faxq).
    pub async fn submit_job(&mut self, job: &str) -> Result<(), HylafaxError> {
        self.expect(&format!("JSUBM {job}"), &[200]).await.map(drop)
    }

    /// `JKILL ID`: ends a job that is not done (aborting a call in progress).
    pub async fn kill_job(&mut self, job: &str) -> Result<Reply, HylafaxError> {
        self.command(&format!("JKILL {job}")).await
    }

    /// `JDELE ID`: removes a job that is done, failed or suspended.
    pub async fn delete_job(&mut self, job: &str) -> Result<Reply, HylafaxError> {
        self.command(&format!("JDELE {job}")).await
    }

    /// `DELE PATH`: removes a file (a received fax).
    pub async fn delete(&mut self, path: &str) -> Result<(), HylafaxError> {
        self.expect(&format!("DELE {path}"), &[250]).await.map(drop)
    }

    /// `QUIT`, ignoring any failure: the connection is dropped either way.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }
}

/// `fut`, or [`HylafaxError::Timeout`] naming `step` when it takes longer than `timeout`.
async fn within<T>(
    timeout: Duration,
    step: &str,
    fut: impl Future<Output = T>,
) -> Result<T, HylafaxError> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| HylafaxError::Timeout {
            step: step.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(shown_command("PASS s3cret"), "PASS ****");
        assert_eq!(shown_command("admin s3cret"), "admin ****");
        assert_eq!(shown_command("JSUBM 12"), "JSUBM 12");
    }
}
