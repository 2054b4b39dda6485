//! One benchmark IRC client: registers, joins the channel, then records
//! every benchmark message it receives and, if it is a sender, sends at its
//! share of the offered rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex as AsyncMutex;

use crate::stats::Receiver;

/// What a client's reader records, per step.
pub type Steps = Arc<Mutex<HashMap<u32, Receiver>>>;

pub struct Client {
    writer: Arc<AsyncMutex<BufWriter<OwnedWriteHalf>>>,
    pub steps: Steps,
}

/// Connects, registers as `nick`, joins `channel` and starts the reader task.
pub async fn connect(
    addr: &str,
    nick: &str,
    channel: &str,
    senders: usize,
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
    let steps: Steps = Arc::new(Mutex::new(HashMap::new()));
    tokio::spawn(read_loop(
        lines,
        writer.clone(),
        steps.clone(),
        senders,
        epoch,
    ));
    Ok(Client { writer, steps })
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
    steps: Steps,
    senders: usize,
    epoch: Instant,
) {
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let now_ns = epoch.elapsed().as_nanos() as u64;
        let l = line.trim_end();
        if let Some(token) = l.strip_prefix("PING ") {
            let _ = send(&writer, &format!("PONG {token}\r\n")).await;
            continue;
        }
        let Some((step, sender, seq, sent_ns)) = parse_bench(l) else {
            continue;
        };
        let mut steps = steps.lock().expect("steps lock");
        let rx = steps.entry(step).or_insert_with(|| Receiver::new(senders));
        rx.record(sender, seq, now_ns.saturating_sub(sent_ns) / 1000);
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

impl Client {
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
    use super::parse_bench;

    #[test]
    fn parses_bench_lines() {
        let l = "@time=x :b1!~b1@h PRIVMSG #bench :bench 2 3 17 123456";
        assert_eq!(parse_bench(l), Some((2, 3, 17, 123456)));
        assert_eq!(parse_bench(":a PRIVMSG #c :hello"), None);
        assert_eq!(parse_bench(":a PRIVMSG #c :bench x 1 2 3"), None);
    }
}
