//! One benchmark IRC client: registers, joins the channel, then records
//! every benchmark message it receives and, if it is a sender, sends at its
//! share of the offered rate. The flood scenario's flooder is one too: it
//! writes its lines as fast as its socket takes them ([`Client::flood`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex as AsyncMutex;

use crate::stats::{Closed, FloodSeen, FloodWrite, Receiver};

/// What a client's reader records, per step.
pub type Steps = Arc<Mutex<HashMap<u32, Receiver>>>;

pub struct Client {
    writer: Arc<AsyncMutex<BufWriter<OwnedWriteHalf>>>,
    pub steps: Steps,
    /// The flooder's lines this client received.
    flood: Arc<Mutex<FloodSeen>>,
    /// Set once the server has closed the connection.
    closed: Arc<Mutex<Option<Closed>>>,
}

/// What the reader task shares with its [`Client`].
struct Shared {
    steps: Steps,
    flood: Arc<Mutex<FloodSeen>>,
    closed: Arc<Mutex<Option<Closed>>>,
    samples: bool,
}

impl Shared {
    fn receiver(&self, senders: usize) -> Receiver {
        if self.samples {
            Receiver::with_samples(senders)
        } else {
            Receiver::new(senders)
        }
    }
}

/// Connects, registers as `nick`, joins `channel` and starts the reader
/// task. With `samples` its receivers keep every delivery's send time and
/// latency (see [`Receiver::with_samples`]).
pub async fn connect(
    addr: &str,
    nick: &str,
    channel: &str,
    senders: usize,
    samples: bool,
    epoch: Instant,
) -> Result<Client> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let writer = Arc::new(AsyncMutex::new(BufWriter::new(write)));
    send(
        &writer,
        &format!("NICK {nick}\r\nUSER {nick} 0 * :chat-bench\r\n"),
    )
    .await?;
    wait_for(
        &mut lines,
        &writer,
        |l| l.contains(" 376 ") || l.contains(" 422 "),
        nick,
    )
    .await?;
    send(&writer, &format!("JOIN {channel}\r\n")).await?;
    wait_for(&mut lines, &writer, |l| l.contains(" 366 "), nick).await?;
    let client = Client {
        writer: writer.clone(),
        steps: Arc::new(Mutex::new(HashMap::new())),
        flood: Arc::default(),
        closed: Arc::default(),
    };
    let shared = Shared {
        steps: client.steps.clone(),
        flood: client.flood.clone(),
        closed: client.closed.clone(),
        samples,
    };
    tokio::spawn(read_loop(lines, writer, shared, senders, epoch));
    Ok(client)
}

async fn send(writer: &AsyncMutex<BufWriter<OwnedWriteHalf>>, text: &str) -> Result<()> {
    let mut w = writer.lock().await;
    w.write_all(text.as_bytes()).await?;
    w.flush().await?;
    Ok(())
}

/// Reads lines until one satisfies `done`, answering PINGs; fails on an
/// error numeric that makes the run meaningless.
async fn wait_for(
    lines: &mut BufReader<OwnedReadHalf>,
    writer: &AsyncMutex<BufWriter<OwnedWriteHalf>>,
    done: impl Fn(&str) -> bool,
    nick: &str,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut line = String::new();
    loop {
        line.clear();
        let n = tokio::time::timeout_at(deadline, lines.read_line(&mut line))
            .await
            .with_context(|| format!("{nick}: timed out during registration"))??;
        if n == 0 {
            bail!("{nick}: connection closed during registration");
        }
        let l = line.trim_end();
        if let Some(token) = l.strip_prefix("PING ") {
            send(writer, &format!("PONG {token}\r\n")).await?;
        } else if l.contains(" 433 ") || l.starts_with("ERROR") || l.contains(" 474 ") {
            bail!("{nick}: {l}");
        } else if done(l) {
            return Ok(());
        }
    }
}

async fn read_loop(
    mut lines: BufReader<OwnedReadHalf>,
    writer: Arc<AsyncMutex<BufWriter<OwnedWriteHalf>>>,
    shared: Shared,
    senders: usize,
    epoch: Instant,
) {
    let mut line = String::new();
    let mut error_line = None;
    loop {
        line.clear();
        let read = lines.read_line(&mut line).await;
        let now_ns = epoch.elapsed().as_nanos() as u64;
        let read_error = match read {
            Ok(0) => None,
            Err(e) => Some(e.to_string()),
            Ok(_) => {
                let l = line.trim_end();
                if let Some(token) = l.strip_prefix("PING ") {
                    let _ = send(&writer, &format!("PONG {token}\r\n")).await;
                } else if l.starts_with("ERROR ") {
                    error_line = Some(l.to_string());
                } else if let Some((step, sender, seq, sent_ns)) = parse_bench(l) {
                    let mut steps = shared.steps.lock().expect("steps lock");
                    let rx = steps
                        .entry(step)
                        .or_insert_with(|| shared.receiver(senders));
                    rx.record_sent(sender, seq, sent_ns, now_ns.saturating_sub(sent_ns) / 1000);
                } else if let Some((seq, sent_ns)) = parse_flood(l) {
                    let mut flood = shared.flood.lock().expect("flood lock");
                    flood.record(seq, sent_ns, now_ns);
                }
                continue;
            }
        };
        *shared.closed.lock().expect("closed lock") = Some(Closed {
            at_ns: now_ns,
            error_line,
            read_error,
        });
        return;
    }
}

/// Extracts `(step, sender, seq, sent_ns)` from a benchmark PRIVMSG.
pub fn parse_bench(line: &str) -> Option<(u32, usize, u64, u64)> {
    let body = line.split_once(" PRIVMSG ")?.1.split_once(" :bench ")?.1;
    let mut it = body.split(' ');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    ))
}

/// Extracts `(seq, sent_ns)` from a flood PRIVMSG.
pub fn parse_flood(line: &str) -> Option<(u64, u64)> {
    let body = line.split_once(" PRIVMSG ")?.1.split_once(" :flood ")?.1;
    let mut it = body.split(' ');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

impl Client {
    /// Writes `lines` flood PRIVMSGs into `channel` in one loop without
    /// pacing: each waits only for the socket to accept it (a full socket
    /// buffer is the only brake, so whatever the server does not read
    /// pushes back here). Stops early on a write error, e.g. once the
    /// server has disconnected us, or at `deadline` if the socket is still
    /// not taking lines then.
    pub async fn flood(
        &self,
        channel: &str,
        lines: u64,
        epoch: Instant,
        deadline: tokio::time::Instant,
    ) -> FloodWrite {
        let start = Instant::now();
        let mut w = self.writer.lock().await;
        let mut written = 0u64;
        let mut write_error = None;
        let mut gave_up = false;
        for seq in 0..=lines {
            // Through the 8 KiB BufWriter: a write reaches the socket
            // whenever the buffer fills, so what counts as written here is
            // at most one buffer ahead of what the kernel has taken. The
            // extra round flushes the tail.
            let result = if seq == lines {
                tokio::time::timeout_at(deadline, w.flush()).await
            } else {
                let ns = epoch.elapsed().as_nanos();
                let line = format!("PRIVMSG {channel} :flood {seq} {ns}\r\n");
                tokio::time::timeout_at(deadline, w.write_all(line.as_bytes())).await
            };
            match result {
                Ok(Ok(())) => written += u64::from(seq < lines),
                Ok(Err(e)) => {
                    write_error = Some(e.to_string());
                    break;
                }
                Err(_) => {
                    gave_up = true;
                    break;
                }
            }
        }
        FloodWrite {
            written,
            write_secs: start.elapsed().as_secs_f64(),
            write_error,
            gave_up,
        }
    }

    /// Takes the flooder's lines this client has recorded.
    pub fn take_flood(&self) -> FloodSeen {
        std::mem::take(&mut *self.flood.lock().expect("flood lock"))
    }

    /// How many distinct flood lines this client has received so far.
    pub fn flood_received(&self) -> u64 {
        self.flood.lock().expect("flood lock").received
    }

    /// How the server ended this connection, if it has.
    pub fn closed(&self) -> Option<Closed> {
        self.closed.lock().expect("closed lock").clone()
    }

    /// Sends `rate` messages per second (this sender's share) into `channel`
    /// for `seconds`, tagged with `step` and this sender's number. Returns how
    /// many it sent. Pacing is by deficit: every tick it sends as many as
    /// should have gone by now, so the offered rate holds above timer
    /// resolution.
    pub async fn send_for(
        &self,
        sender: usize,
        step: u32,
        channel: &str,
        rate: f64,
        seconds: f64,
        epoch: Instant,
    ) -> Result<u64> {
        let start = Instant::now();
        let total = (rate * seconds).round() as u64;
        let mut sent = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while sent < total {
            tick.tick().await;
            let due = ((start.elapsed().as_secs_f64() * rate) as u64).min(total);
            if due <= sent {
                continue;
            }
            let mut w = self.writer.lock().await;
            while sent < due {
                let ns = epoch.elapsed().as_nanos();
                let line = format!("PRIVMSG {channel} :bench {step} {sender} {sent} {ns}\r\n");
                w.write_all(line.as_bytes()).await?;
                sent += 1;
            }
            w.flush().await?;
        }
        Ok(sent)
    }

    /// Takes what this client recorded for `step`.
    pub fn take_step(&self, step: u32, senders: usize) -> Receiver {
        self.steps
            .lock()
            .expect("steps lock")
            .remove(&step)
            .unwrap_or_else(|| Receiver::new(senders))
    }

    /// How many deliveries this client has recorded for `step` so far.
    pub fn received(&self, step: u32) -> u64 {
        self.steps
            .lock()
            .expect("steps lock")
            .get(&step)
            .map_or(0, |r| r.received)
    }

    pub async fn quit(&self) {
        let _ = send(&self.writer, "QUIT :bench done\r\n").await;
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_bench, parse_flood};

    #[test]
    fn parses_bench_lines() {
        let l = "@time=x :b1!~b1@h PRIVMSG #bench :bench 2 3 17 123456";
        assert_eq!(parse_bench(l), Some((2, 3, 17, 123456)));
        assert_eq!(parse_bench(":a PRIVMSG #c :hello"), None);
        assert_eq!(parse_bench(":a PRIVMSG #c :bench x 1 2 3"), None);
    }

    #[test]
    fn parses_flood_lines() {
        let l = "@time=x :f!~f@h PRIVMSG #bench :flood 9999 123456";
        assert_eq!(parse_flood(l), Some((9999, 123456)));
        assert_eq!(parse_flood(":a PRIVMSG #c :bench 1 2 3 4"), None);
        assert_eq!(parse_flood(":a PRIVMSG #c :flood 7"), None);
        assert_eq!(parse_bench(l), None, "a flood line is not a probe line");
    }
}
