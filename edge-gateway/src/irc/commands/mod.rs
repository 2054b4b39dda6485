//! Command dispatch: one file per command family.

pub mod account;
mod channel;
pub mod chanserv;
pub mod chathistory;
mod info;
pub mod messaging;
pub mod mode;
pub mod monitor;
pub mod nickserv;
mod oper;
mod query;
pub use query::who_lines;
pub mod redact;
pub mod registration;
pub mod sasl;
pub mod user;
mod whowas;

use super::client::Client;
use super::line::Message;

/// Commands a client may send before registration completes.
const BEFORE_REGISTRATION: [&str; 10] = [
    "CAP",
    "NICK",
    "USER",
    "PASS",
    "PING",
    "PONG",
    "QUIT",
    "AUTHENTICATE",
    "REGISTER",
    "VERIFY",
];

/// Handles one parsed message.
pub async fn dispatch(c: &mut Client, m: Message) {
    let registered = c.session.is_some();
    let cmd = m.command.as_str();
    if !registered && !BEFORE_REGISTRATION.contains(&cmd) {
        c.send(c.num().not_registered());
        return;
    }
    match cmd {
        "CAP" => registration::cap(c, &m).await,
        "NICK" if registered => user::nick(c, &m).await,
        "NICK" => registration::nick(c, &m).await,
        "USER" => registration::user(c, &m).await,
        "PASS" => registration::pass(c, &m),
        "AUTHENTICATE" => sasl::authenticate(c, &m).await,
        "REGISTER" => account::register(c, &m).await,
        "VERIFY" => account::verify(c, &m),
        "PING" => registration::ping(c, &m),
        "PONG" => {}
        "QUIT" => registration::quit(c, &m),
        "JOIN" => channel::join(c, &m).await,
        "PART" => channel::part(c, &m).await,
        "TOPIC" => channel::topic(c, &m).await,
        "NAMES" => channel::names(c, &m).await,
        "LIST" => channel::list(c, &m).await,
        "KICK" => channel::kick(c, &m).await,
        "INVITE" => channel::invite(c, &m).await,
        "PRIVMSG" | "NOTICE" | "TAGMSG" => messaging::message(c, &m).await,
        "MODE" => mode::mode(c, &m).await,
        "WHO" => query::who(c, &m).await,
        "WHOIS" => query::whois(c, &m).await,
        "WHOWAS" => whowas::whowas(c, &m).await,
        "ISON" => query::ison(c, &m).await,
        "USERHOST" => query::userhost(c, &m).await,
        "LUSERS" => query::lusers(c),
        "MOTD" => query::motd(c),
        "VERSION" => query::version(c),
        "TIME" => query::time(c),
        "ADMIN" => info::admin(c),
        "INFO" => info::info(c),
        "HELP" => info::help(c, &m),
        "OPER" => oper::oper(c, &m).await,
        "KILL" => oper::kill(c, &m).await,
        "CHGHOST" => oper::chghost(c, &m).await,
        "AWAY" => user::away(c, &m).await,
        "SETNAME" => user::setname(c, &m).await,
        "MONITOR" => monitor::monitor(c, &m).await,
        "CHATHISTORY" => chathistory::chathistory(c, &m).await,
        "REDACT" => redact::redact(c, &m).await,
        other => c.send(c.num().unknown_command(other)),
    }
}

/// Splits a comma-separated list, dropping empty items.
fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|x| !x.is_empty())
}
