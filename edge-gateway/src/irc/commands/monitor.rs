//! MONITOR (IRCv3): a client's list of nicks to be told about when they
//! come online (730) or go offline (731). State comes from the nicks
//! bucket: lookups for `+` and `S`, and the gateway's one watch of it
//! ([`crate::nickwatch`]) for changes, which the connection receives only
//! while its list is not empty.

use std::collections::{BTreeMap, BTreeSet};

use bus::kv::nick_key;
use tokio::sync::broadcast::{self, error::RecvError};

use super::split_list;
use crate::irc::client::Client;
use crate::irc::line::Message;
use crate::irc::numeric::*;
use crate::irc::validate::valid_nick;
use crate::nickwatch::NickChange;

/// Most nicks one client may monitor (ISUPPORT `MONITOR=`).
pub const MONITOR_MAX: usize = 100;

/// Bytes of targets per 730–732 line (well under the 512-byte line).
const TARGETS_PER_LINE: usize = 400;

/// One connection's monitor list.
#[derive(Default)]
pub struct Monitor {
    /// Nick key → the nick as the client wrote it.
    targets: BTreeMap<String, String>,
    /// The keys of the targets known to be online.
    online: BTreeSet<String>,
    /// Nick changes, while `targets` is not empty.
    pub rx: Option<broadcast::Receiver<NickChange>>,
}

/// The next nick change for a monitoring connection (never, otherwise).
pub async fn next_change(rx: &mut Option<broadcast::Receiver<NickChange>>) -> NickChange {
    match rx {
        Some(rx) => match rx.recv().await {
            Ok(change) => change,
            // Missed some: look everything up again.
            Err(RecvError::Lagged(_)) => NickChange::Resync,
            Err(RecvError::Closed) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// `MONITOR + <targets>`, `- <targets>`, `C`, `L`, `S`.
pub async fn monitor(c: &mut Client, m: &Message) {
    let Some(sub) = m.params.first() else {
        c.send(c.num().need_more_params("MONITOR"));
        return;
    };
    let targets = m.params.get(1).map(String::as_str).unwrap_or("");
    match sub.as_str() {
        "+" | "-" if targets.is_empty() => c.send(c.num().need_more_params("MONITOR")),
        "+" => add(c, targets).await,
        "-" => {
            for t in split_list(targets) {
                let key = nick_key(t);
                c.monitor.targets.remove(&key);
                c.monitor.online.remove(&key);
            }
            if c.monitor.targets.is_empty() {
                c.monitor.rx = None;
            }
        }
        "C" | "c" => c.monitor = Monitor::default(),
        "L" | "l" => {
            let list: Vec<String> = c.monitor.targets.values().cloned().collect();
            send_lists(c, RPL_MONLIST, &list);
            c.send(c.num().n(RPL_ENDOFMONLIST).text("End of MONITOR list"));
        }
        "S" | "s" => {
            let keys: Vec<String> = c.monitor.targets.keys().cloned().collect();
            c.monitor.online.clear();
            status(c, keys, true).await;
        }
        other => c.fail(
            "MONITOR",
            "INVALID_PARAMS",
            &[other],
            "Unknown MONITOR subcommand (+ - C L S)",
        ),
    }
}

async fn add(c: &mut Client, targets: &str) {
    let mut added = Vec::new();
    let wanted: Vec<&str> = split_list(targets).filter(|t| valid_nick(t)).collect();
    for (i, t) in wanted.iter().enumerate() {
        let key = nick_key(t);
        if c.monitor.targets.contains_key(&key) {
            added.push(key);
            continue;
        }
        if c.monitor.targets.len() >= MONITOR_MAX {
            let rest = wanted[i..].join(",");
            c.send(
                c.num()
                    .n(ERR_MONLISTFULL)
                    .param(MONITOR_MAX.to_string())
                    .param(rest)
                    .text("Monitor list is full."),
            );
            break;
        }
        c.monitor.targets.insert(key.clone(), t.to_string());
        added.push(key);
    }
    if c.monitor.rx.is_none() && !c.monitor.targets.is_empty() {
        // Subscribe before looking up, so no change falls in between.
        c.monitor.rx = Some(c.gw.registry.watch_nicks());
    }
    for key in &added {
        c.monitor.online.remove(key);
    }
    status(c, added, true).await;
}

/// Looks `keys` up and tells the client of those whose state differs from
/// what it was told (all of them with `tell_all`).
async fn status(c: &mut Client, keys: Vec<String>, tell_all: bool) {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for key in keys {
        let Some(target) = c.monitor.targets.get(&key).cloned() else {
            continue;
        };
        let claim = match c.gw.registry.nick_claim(&target).await {
            Ok(claim) => claim,
            Err(e) => {
                tracing::warn!(error = %e, "MONITOR lookup failed");
                continue;
            }
        };
        let was = c.monitor.online.contains(&key);
        match claim {
            Some(claim) => {
                c.monitor.online.insert(key);
                if tell_all || !was {
                    on.push(claim.nick);
                }
            }
            None => {
                c.monitor.online.remove(&key);
                if tell_all || was {
                    off.push(target);
                }
            }
        }
    }
    send_lists(c, RPL_MONONLINE, &on);
    send_lists(c, RPL_MONOFFLINE, &off);
}

/// A change from the nicks bucket: tells the client if it concerns a nick
/// it monitors and changes what it was last told.
pub async fn on_change(c: &mut Client, change: NickChange) {
    match change {
        NickChange::Claimed { key, nick } => {
            if c.monitor.targets.contains_key(&key) && c.monitor.online.insert(key) {
                send_lists(c, RPL_MONONLINE, &[nick]);
            }
        }
        NickChange::Released { key } => {
            if c.monitor.online.remove(&key) {
                if let Some(target) = c.monitor.targets.get(&key).cloned() {
                    send_lists(c, RPL_MONOFFLINE, &[target]);
                }
            }
        }
        NickChange::Resync => {
            let keys: Vec<String> = c.monitor.targets.keys().cloned().collect();
            status(c, keys, false).await;
        }
    }
}

/// `<code> <me> :a,b,c` lines, as many as the targets need.
fn send_lists(c: &Client, code: u16, targets: &[String]) {
    for line in joined_lines(targets, TARGETS_PER_LINE) {
        c.send(c.num().n(code).text(line));
    }
}

/// `targets` comma-joined into lines of at most `max` bytes (a longer
/// single target gets a line of its own).
fn joined_lines(targets: &[String], max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for t in targets {
        if !line.is_empty() && line.len() + 1 + t.len() > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(',');
        }
        line.push_str(t);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_lines() {
        let t: Vec<String> = ["alice", "bob", "carol", "dave"].map(String::from).to_vec();
        assert_eq!(joined_lines(&t, 100), vec!["alice,bob,carol,dave"]);
        assert_eq!(joined_lines(&t, 9), vec!["alice,bob", "carol", "dave"]);
        assert_eq!(joined_lines(&t, 3), vec!["alice", "bob", "carol", "dave"]);
        assert!(joined_lines(&[], 10).is_empty());
    }
}
