//! `WHOWAS <nick> [count]`: who used a nick lately, from the registry's
//! `whowas` bucket (any gateway's users, for a day, the newest ten per
//! nick; recorded when a session quits or changes nick).

use crate::irc::client::Client;
use crate::irc::line::Message;
use crate::irc::numeric::*;

pub async fn whowas(c: &mut Client, m: &Message) {
    let Some(nick) = m
        .params
        .first()
        .and_then(|p| p.split(',').next())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
    else {
        c.send(c.num().n(ERR_NONICKNAMEGIVEN).text("No nickname given"));
        return;
    };
    // A count of 0 or less (or none) means all of them.
    let count = m
        .params
        .get(1)
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .map_or(usize::MAX, |n| n as usize);
    let entries = match c.gw.registry.whowas(&nick).await {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(error = %e, "WHOWAS lookup failed");
            c.bus_trouble();
            return;
        }
    };
    let n = c.num();
    if entries.is_empty() {
        c.send(
            n.n(ERR_WASNOSUCHNICK)
                .param(nick.as_str())
                .text("There was no such nickname"),
        );
    }
    for e in entries.iter().take(count) {
        c.send(
            n.n(RPL_WHOWASUSER)
                .param(e.nick.as_str())
                .param(e.user.as_str())
                .param(e.host.as_str())
                .param("*")
                .text(e.realname.as_str()),
        );
        let when = chrono::DateTime::from_timestamp_millis(e.at)
            .map(|t| t.format("%a %b %d %H:%M:%S %Y UTC").to_string())
            .unwrap_or_default();
        c.send(
            n.n(RPL_WHOISSERVER)
                .param(e.nick.as_str())
                .param(e.server.as_str())
                .text(when),
        );
        if let Some(account) = &e.account {
            c.send(
                n.n(RPL_WHOISACCOUNT)
                    .param(e.nick.as_str())
                    .param(account.as_str())
                    .text("was logged in as"),
            );
        }
    }
    c.send(
        n.n(RPL_ENDOFWHOWAS)
            .param(nick.as_str())
            .text("End of WHOWAS"),
    );
}
