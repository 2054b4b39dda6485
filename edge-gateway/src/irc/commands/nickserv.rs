//! The NickServ pseudo-user: account commands for clients without SASL or
//! `REGISTER` support. Messages to `NickServ` never reach the bus as chat;
//! answers are NOTICEs from `NickServ!NickServ@services.`.

use bus::names::fold;
use bus::schema::{AuthError, AuthReplyBody, AuthRequestBody};

use super::account;
use crate::irc::auth::{self, CertOp, Purpose, Via};
use crate::irc::client::Client;
use crate::irc::line::Message;

pub const NICK: &str = "NickServ";
const SOURCE: &str = "NickServ!NickServ@services.";

/// Whether `target` names the pseudo-user (case-insensitive).
pub fn is_nickserv(target: &str) -> bool {
    target.eq_ignore_ascii_case(NICK)
}

pub fn say(c: &Client, text: impl Into<String>) {
    c.send(
        Message::new("NOTICE")
            .with_source(SOURCE)
            .param(c.nick())
            .text(text),
    );
}

const HELP: [&str; 9] = [
    "NickServ commands:",
    "  REGISTER <password> [email]  - register your current nick as an account",
    "  IDENTIFY [account] <password> - log in to an account",
    "  GHOST <nick>                 - disconnect a session logged in as your account",
    "  INFO <account>               - show facts about an account",
    "  CERT ADD [fingerprint]       - log in with a TLS client certificate (SASL EXTERNAL);",
    "                                 without a fingerprint, the one you are connected with",
    "  CERT DEL <fingerprint> | CERT LIST",
    "  HELP                         - this list",
];

/// A PRIVMSG (or NOTICE) to NickServ.
pub async fn command(c: &mut Client, text: &str) {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some(cmd) = words.first().map(|w| w.to_ascii_uppercase()) else {
        return;
    };
    let args = &words[1..];
    match (cmd.as_str(), args) {
        ("REGISTER", [password, rest @ ..]) if rest.len() <= 1 => {
            register(c, password, rest.first().copied()).await
        }
        ("IDENTIFY", [password]) => {
            let account = c.nick.clone().unwrap_or_default();
            identify(c, &account, password).await
        }
        ("IDENTIFY", [account, password]) => identify(c, account, password).await,
        ("GHOST", [nick]) => ghost(c, nick).await,
        ("INFO", [account]) => info(c, account).await,
        ("CERT", [sub, rest @ ..]) if rest.len() <= 1 => {
            cert(c, &sub.to_ascii_uppercase(), rest.first().copied()).await
        }
        ("HELP", _) => {
            for line in HELP {
                say(c, line);
            }
        }
        ("REGISTER" | "IDENTIFY" | "GHOST" | "INFO" | "CERT", _) => say(
            c,
            format!("Wrong arguments for {cmd}. Send HELP for usage."),
        ),
        _ => say(
            c,
            format!("Unknown command {cmd}. Commands: REGISTER, IDENTIFY, GHOST, INFO, CERT, HELP"),
        ),
    }
}

async fn register(c: &mut Client, password: &str, email: Option<&str>) {
    if let Some(acct) = &c.account {
        say(c, format!("You are already logged in as {acct}."));
        return;
    }
    let account = fold(c.nick());
    let email = email.map(str::to_string);
    account::start(c, Via::NickServ, account, email, password.to_string()).await;
}

async fn identify(c: &mut Client, account: &str, password: &str) {
    if let Some(acct) = &c.account {
        say(c, format!("You are already logged in as {acct}."));
        return;
    }
    let body = AuthRequestBody::Plain {
        authzid: None,
        account: account.to_string(),
        password: password.to_string(),
    };
    let purpose = Purpose::Login {
        via: Via::NickServ,
        registered: false,
    };
    if !auth::request(c, body, purpose).await {
        say(c, "Accounts are temporarily unavailable, try again later.");
    }
}

/// NickServ CERT ADD / DEL / LIST, for the account the session is logged
/// in to.
async fn cert(c: &mut Client, sub: &str, arg: Option<&str>) {
    let Some(account) = c.account.clone() else {
        say(c, "You must be logged in to use CERT.");
        return;
    };
    let (what, fingerprint) = match (sub, arg) {
        ("ADD", Some(fp)) => (CertOp::Add, fp.to_string()),
        ("ADD", None) => match c.security.certfp.clone() {
            Some(fp) => (CertOp::Add, fp),
            None => {
                say(
                    c,
                    "You are not using a TLS client certificate; give a fingerprint.",
                );
                return;
            }
        },
        ("DEL", Some(fp)) => (CertOp::Del, fp.to_string()),
        ("LIST", None) => (CertOp::List, String::new()),
        _ => {
            say(c, "Wrong arguments for CERT. Send HELP for usage.");
            return;
        }
    };
    let body = match what {
        CertOp::Add => AuthRequestBody::CertAdd {
            account,
            fingerprint: fingerprint.clone(),
        },
        CertOp::Del => AuthRequestBody::CertDel {
            account,
            fingerprint: fingerprint.clone(),
        },
        CertOp::List => AuthRequestBody::CertList { account },
    };
    if !auth::request(c, body, Purpose::Cert { what, fingerprint }).await {
        say(c, "Accounts are temporarily unavailable, try again later.");
    }
}

/// The auth service's answer to a CERT command.
pub fn on_cert(c: &mut Client, what: CertOp, fingerprint: &str, body: AuthReplyBody) {
    match (what, body) {
        (CertOp::Add, AuthReplyBody::Stored) => say(
            c,
            format!("Added {fingerprint}: it logs you in with SASL EXTERNAL."),
        ),
        (
            CertOp::Add,
            AuthReplyBody::Failure {
                code: AuthError::Taken,
                ..
            },
        ) => say(c, format!("{fingerprint} is another account's.")),
        (
            CertOp::Add | CertOp::Del,
            AuthReplyBody::Failure {
                code: AuthError::NotFound,
                ..
            },
        ) => say(
            c,
            format!("{fingerprint} is not a fingerprint of your account."),
        ),
        (CertOp::Del, AuthReplyBody::Stored) => say(c, format!("Removed {fingerprint}.")),
        (CertOp::List, AuthReplyBody::Certs { fingerprints }) => {
            if fingerprints.is_empty() {
                say(c, "No certificate fingerprints.");
            }
            for fp in fingerprints {
                say(c, fp);
            }
            say(c, "End of certificate fingerprints.");
        }
        _ => say(c, "Accounts are temporarily unavailable, try again later."),
    }
}

async fn info(c: &mut Client, account: &str) {
    let account = fold(account);
    let body = AuthRequestBody::Info {
        account: account.clone(),
    };
    if !auth::request(c, body, Purpose::Info { account }).await {
        say(c, "Accounts are temporarily unavailable, try again later.");
    }
}

/// Disconnects the session using `nick` if it is logged in as our account
/// (someone who lost their connection reclaiming their nick).
async fn ghost(c: &mut Client, nick: &str) {
    let Some(mine) = c.account.clone() else {
        say(c, "You must be logged in to use GHOST.");
        return;
    };
    let rec = match c.gw.registry.session_by_nick(nick).await {
        Ok(Some(rec)) => rec,
        Ok(None) => {
            say(c, format!("{nick} is not online."));
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "GHOST lookup failed");
            say(c, "Accounts are temporarily unavailable, try again later.");
            return;
        }
    };
    if rec.actor.sid == c.sid() {
        say(c, "You cannot ghost yourself.");
        return;
    }
    if rec.actor.account.as_deref() != Some(mine.as_str()) {
        say(c, format!("{nick} is not logged in as your account."));
        return;
    }
    let reason = format!("Ghosted by {}", c.nick());
    let killed = crate::sessions::kill_remote(&c.gw, &c.actor(), &rec.actor.sid, reason).await;
    if killed {
        say(c, format!("{} has been ghosted.", rec.actor.nick));
    } else {
        say(c, format!("Could not ghost {nick}, try again."));
    }
}

/// The answer to IDENTIFY, or to the login after NickServ REGISTER.
pub async fn on_login(c: &mut Client, registered: bool, body: AuthReplyBody) {
    match body {
        AuthReplyBody::Success { account, .. } => {
            auth::log_in(c, &account).await;
            if registered {
                say(c, format!("Account {account} registered."));
            }
            say(c, format!("You are now identified for {account}."));
        }
        AuthReplyBody::Failure {
            code: AuthError::RateLimited,
            retry_after_secs,
        } => say(
            c,
            format!(
                "Too many attempts, wait {} seconds.",
                retry_after_secs.unwrap_or(60)
            ),
        ),
        AuthReplyBody::Failure {
            code: AuthError::InvalidCredentials | AuthError::Disabled | AuthError::NotFound,
            ..
        } => say(c, "Invalid account or password."),
        _ => say(c, "Accounts are temporarily unavailable, try again later."),
    }
}

/// The answer to INFO.
pub fn on_info(c: &mut Client, account: &str, body: AuthReplyBody) {
    match body {
        AuthReplyBody::Info {
            account,
            registered_at,
            disabled,
        } => {
            let when = chrono::DateTime::from_timestamp_millis(registered_at)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "unknown".into());
            say(c, format!("Information on {account}:"));
            say(c, format!("Registered: {when}"));
            if disabled {
                say(c, "This account is disabled.");
            }
        }
        AuthReplyBody::Failure {
            code: AuthError::NotFound | AuthError::BadAccountName,
            ..
        } => say(c, format!("{account} is not registered.")),
        _ => say(c, "Accounts are temporarily unavailable, try again later."),
    }
}

/// NickServ REGISTER failed.
pub fn register_failed(c: &Client, account: &str, code: AuthError) {
    let text = match code {
        AuthError::AccountExists => format!("{account} is already registered."),
        AuthError::BadAccountName => format!("{account} cannot be registered as an account."),
        AuthError::WeakPassword => "That password is too weak (8 to 256 bytes).".to_string(),
        AuthError::RateLimited => "Too many attempts, wait a while.".to_string(),
        _ => "Accounts are temporarily unavailable, try again later.".to_string(),
    };
    say(c, text);
}
