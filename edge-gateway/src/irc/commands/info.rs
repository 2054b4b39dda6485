//! Server information a client asks for by hand: `ADMIN`, `INFO` and
//! `HELP` (`MOTD`, `VERSION`, `TIME` and `LUSERS` are with the queries).
//! What the operator says about the server comes from `[irc]` (`admin_*`,
//! `motd` / `motd_file`); the help texts are the gateway's own.

use crate::gateway::VERSION;
use crate::irc::client::Client;
use crate::irc::line::Message;
use crate::irc::numeric::*;

/// `ADMIN [server]`: who runs this server (256-259).
pub fn admin(c: &mut Client) {
    let n = c.num();
    let irc = &c.gw.irc;
    c.send(
        n.n(RPL_ADMINME)
            .param(c.server())
            .text("Administrative info"),
    );
    c.send(n.n(RPL_ADMINLOC1).text(irc.admin_location.as_str()));
    c.send(n.n(RPL_ADMINLOC2).text(irc.network.as_str()));
    c.send(n.n(RPL_ADMINEMAIL).text(irc.admin_email.as_str()));
}

/// `INFO`: what this server is (371, 374).
pub fn info(c: &mut Client) {
    let n = c.num();
    let lines = [
        format!("{VERSION}: the IRC, XMPP and Tinode gateway of one chat platform."),
        "Rooms, accounts and history are shared with XMPP (WebSocket /xmpp) and".to_string(),
        "Tinode (/v0/channels) users; events pass through RabbitMQ, cluster state".to_string(),
        "through NATS, history and accounts are kept in PostgreSQL.".to_string(),
        format!(
            "This gateway: {} since {}.",
            c.gw.id,
            c.gw.started.format("%Y-%m-%d %H:%M:%S UTC")
        ),
    ];
    for line in lines {
        c.send(n.n(RPL_INFO).text(line));
    }
    c.send(n.n(RPL_ENDOFINFO).text("End of /INFO list"));
}

/// One help subject: its name and its lines.
struct Topic {
    name: &'static str,
    lines: &'static [&'static str],
}

const HELP: &[Topic] = &[
    Topic {
        name: "*",
        lines: &[
            "Commands: ADMIN AUTHENTICATE AWAY CAP CHATHISTORY HELP INFO INVITE ISON",
            "JOIN KICK LIST LUSERS MODE MONITOR MOTD NAMES NICK NOTICE PART PING PRIVMSG",
            "QUIT REDACT REGISTER SETNAME TAGMSG TIME TOPIC USERHOST VERSION WHO WHOIS",
            "WHOWAS — for operators: OPER KILL CHGHOST",
            "Accounts: /msg NickServ HELP. Channel registration: /msg ChanServ HELP.",
            "HELP <command> for one command.",
        ],
    },
    Topic {
        name: "OPER",
        lines: &[
            "OPER <name> <password>",
            "Become an IRC operator (user modes +o and +s: server notices about",
            "clients connecting and exiting, OPER, KILL and CHGHOST). MODE <nick> -o",
            "gives it up, -s stops the notices.",
        ],
    },
    Topic {
        name: "KILL",
        lines: &[
            "KILL <nick> [:<reason>]",
            "Operators only: disconnects <nick>, on whichever gateway it is.",
        ],
    },
    Topic {
        name: "CHGHOST",
        lines: &[
            "CHGHOST <nick> <host>",
            "Operators only: changes the host <nick> is shown with (a cloak).",
            "Clients with the chghost capability see CHGHOST, others a rejoin.",
        ],
    },
    Topic {
        name: "WHOWAS",
        lines: &[
            "WHOWAS <nick> [<count>]",
            "Who recently used <nick> (up to 10 entries, kept for a day).",
        ],
    },
    Topic {
        name: "JOIN",
        lines: &[
            "JOIN <#channel>[,<#channel>…] [<key>[,<key>…]]",
            "Joins channels, creating them if needed. The same rooms are XMPP's",
            "room@conference.<domain> and Tinode's grp<room> topics.",
        ],
    },
    Topic {
        name: "PART",
        lines: &[
            "PART <#channel>[,<#channel>…] [:<reason>]",
            "Leaves channels.",
        ],
    },
    Topic {
        name: "PRIVMSG",
        lines: &[
            "PRIVMSG <target>[,<target>…] :<text>",
            "Sends to a channel or a nick (an account's nick reaches it on any protocol,",
            "and is kept for it while it is offline).",
        ],
    },
    Topic {
        name: "TOPIC",
        lines: &[
            "TOPIC <#channel> [:<topic>]",
            "Shows or sets the channel's topic.",
        ],
    },
    Topic {
        name: "MODE",
        lines: &[
            "MODE <#channel> [<modes> [<args>…]] | MODE <nick> [<modes>]",
            "Channel modes: o v b n t m i k l s. Ban by account: +b $a:<account>.",
        ],
    },
    Topic {
        name: "KICK",
        lines: &[
            "KICK <#channel> <nick> [:<reason>]",
            "Removes someone (operators only).",
        ],
    },
    Topic {
        name: "INVITE",
        lines: &["INVITE <nick> <#channel>", "Invites someone (past +i)."],
    },
    Topic {
        name: "LIST",
        lines: &["LIST [<#channel>[,…]]", "Lists the visible channels."],
    },
    Topic {
        name: "WHO",
        lines: &["WHO <#channel>|<nick>", "Lists who is there."],
    },
    Topic {
        name: "WHOIS",
        lines: &[
            "WHOIS <nick>",
            "Who someone is: account (330), secure connection (671), channels.",
        ],
    },
    Topic {
        name: "AWAY",
        lines: &[
            "AWAY [:<message>]",
            "Marks you away, or back without a message.",
        ],
    },
    Topic {
        name: "MONITOR",
        lines: &[
            "MONITOR + <nicks> | - <nicks> | C | L | S",
            "Tells you when those nicks come online (730) or go offline (731).",
        ],
    },
    Topic {
        name: "SETNAME",
        lines: &[
            "SETNAME :<realname>",
            "Changes your realname (WHOIS); channels with the setname cap see it.",
        ],
    },
    Topic {
        name: "CHATHISTORY",
        lines: &[
            "CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN|TARGETS …",
            "Pages a channel's or a conversation's history (IRCv3 draft/chathistory).",
        ],
    },
    Topic {
        name: "REDACT",
        lines: &[
            "REDACT <#channel> <msgid> [:<reason>]",
            "Deletes a message for everyone: your own, or anyone's as an operator.",
        ],
    },
    Topic {
        name: "REGISTER",
        lines: &[
            "REGISTER * <email or *> <password>",
            "Creates an account named after your nick (IRCv3 account-registration).",
        ],
    },
    Topic {
        name: "NICK",
        lines: &["NICK <nick>", "Changes your nick."],
    },
    Topic {
        name: "QUIT",
        lines: &["QUIT [:<reason>]", "Disconnects."],
    },
];

/// `HELP [subject]` (704-706, or 524 for an unknown subject).
pub fn help(c: &mut Client, m: &Message) {
    let asked = m.params.first().map(|s| s.to_ascii_uppercase());
    let subject = asked.clone().unwrap_or_else(|| "*".to_string());
    let Some(topic) = HELP.iter().find(|t| t.name == subject) else {
        c.send(
            c.num()
                .n(ERR_HELPNOTFOUND)
                .param(asked.unwrap_or_default())
                .text("No help available on this topic"),
        );
        return;
    };
    let n = c.num();
    let (first, rest) = topic.lines.split_first().unwrap_or((&"", &[]));
    c.send(n.n(RPL_HELPSTART).param(topic.name).text(*first));
    for line in rest {
        c.send(n.n(RPL_HELPTXT).param(topic.name).text(*line));
    }
    c.send(n.n(RPL_ENDOFHELP).param(topic.name).text("End of /HELP"));
}

#[cfg(test)]
mod tests {
    use super::HELP;

    #[test]
    fn every_help_subject_is_named_in_the_index() {
        let index = HELP[0].lines.join(" ");
        for t in &HELP[1..] {
            assert!(
                index.split_whitespace().any(|w| w == t.name),
                "{} not in the index",
                t.name
            );
        }
    }
}
