//! `{hi}`, `{acc}` and `{login}`: the handshake and accounts, through the
//! auth service (the same accounts IRC and XMPP log in to).
//!
//! `basic` secrets are base64 of `login:password`; `token` secrets are the
//! token an earlier login returned, passed back unchanged. A successful
//! login starts the platform session (nick = account name, as for XMPP).

use base64::Engine;
use bus::schema::{AuthError, AuthReplyBody, AuthRequestBody};
use serde_json::{json, Value};

use super::conn::{Conn, Platform, Transport, User, Wait};
use super::ids;
use super::wire::{self, code, Acc, Hi, Login};
use crate::gateway::VERSION;
use crate::sessions::{self, AccountStartError};

/// The protocol version this server speaks.
const PROTOCOL_VERSION: &str = "0.25";

/// An account being created by `{acc}`.
#[derive(Debug)]
pub struct Registering {
    pub id: Option<String>,
    pub password: String,
    pub login: bool,
    pub public: Option<Value>,
}

/// A login in flight (`{login}`, or `{acc login:true}`).
#[derive(Debug)]
pub struct LoggingIn {
    pub id: Option<String>,
    /// The `{acc}` this login completes, which answers with `desc` too.
    pub created: Option<Option<Value>>,
}

pub fn on_hi(c: &mut Conn, hi: Hi) {
    let id = hi.id.as_deref();
    if c.greeted {
        // A later {hi} only updates the user agent.
        c.reply(wire::ctrl(id, code::OK));
        return;
    }
    match hi.ver.as_deref().map(wire::version_ok) {
        None | Some(None) => {
            c.reply(wire::ctrl(id, code::MALFORMED));
            return;
        }
        Some(Some(false)) => {
            c.reply(wire::ctrl(id, code::VERSION));
            return;
        }
        Some(Some(true)) => {}
    }
    c.greeted = true;
    // Over long polling the session already exists (201 came with the sid).
    let (status, text) = match c.transport {
        Transport::WebSocket => code::CREATED,
        Transport::LongPoll => code::OK,
    };
    let ctrl = wire::Ctrl::new(id, status, text)
        .param("ver", PROTOCOL_VERSION)
        .param("build", VERSION)
        .param("sid", c.sid.clone())
        .param("maxMessageSize", c.cfg.max_message_bytes)
        .param("maxSubscriberCount", 1000)
        .param("minTagLength", 2)
        .param("maxTagLength", 96)
        .param("maxTagCount", 16)
        .param("maxFileUploadSize", 0)
        .param("msgDelAge", 600);
    c.reply(ctrl);
}

/// `login:password` from a basic secret (standard base64, padding or not).
fn basic_secret(secret: &str) -> Option<(String, String)> {
    let engine = base64::engine::general_purpose::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(secret.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (login, password) = text.split_once(':')?;
    Some((login.to_ascii_lowercase(), password.to_string()))
}

pub async fn on_acc(c: &mut Conn, acc: Acc) {
    let id = acc.id.as_deref();
    let user = acc.user.as_deref().unwrap_or("new");
    if !user.starts_with("new") {
        // Changing an existing account's secret or tags.
        c.reply(wire::ctrl(id, code::NOT_IMPLEMENTED));
        return;
    }
    if acc.login && c.user.is_some() {
        c.reply(wire::ctrl(id, code::ALREADY_AUTHENTICATED));
        return;
    }
    if acc.scheme.as_deref().unwrap_or("basic") != "basic" {
        c.reply(wire::ctrl(id, code::UNKNOWN_SCHEME));
        return;
    }
    let Some((account, password)) = acc.secret.as_deref().and_then(basic_secret) else {
        c.reply(wire::ctrl(id, code::MALFORMED));
        return;
    };
    let public = acc
        .desc
        .as_ref()
        .and_then(|d| d.get("public"))
        .cloned()
        .filter(|p| !p.is_null());
    let body = AuthRequestBody::Register {
        account,
        password: password.clone(),
        email: None,
    };
    let wait = Wait::Register(Registering {
        id: acc.id.clone(),
        password,
        login: acc.login,
        public,
    });
    if c.ask_auth(body, wait).await.is_none() {
        c.reply(wire::ctrl(id, code::UNAVAILABLE));
    }
}

/// The answer to a failed auth request, in Tinode's words.
fn failure(id: Option<&str>, code: AuthError, retry: Option<u64>) -> wire::Ctrl {
    match code {
        AuthError::InvalidCredentials
        | AuthError::NotFound
        | AuthError::BadToken
        | AuthError::Disabled => wire::ctrl(id, code::AUTH_FAILED),
        AuthError::AccountExists | AuthError::Taken => {
            wire::ctrl(id, code::DUPLICATE_CREDENTIAL).param("what", "auth")
        }
        AuthError::BadAccountName | AuthError::WeakPassword => wire::ctrl(id, code::POLICY),
        AuthError::Malformed => wire::ctrl(id, code::MALFORMED),
        AuthError::RateLimited => match retry {
            Some(secs) => wire::ctrl(id, code::TOO_MANY).param("retryAfter", secs),
            None => wire::ctrl(id, code::TOO_MANY),
        },
        AuthError::Internal => wire::ctrl(id, code::INTERNAL),
    }
}

/// The `desc` of a new account as `{acc}` answers it.
fn account_desc(public: &Option<Value>) -> Value {
    let now = wire::ts(bus::now_ms());
    let mut desc = json!({
        "created": now,
        "updated": now,
        "defacs": {"auth": "JRWPAS", "anon": "N"},
    });
    if let Some(p) = public {
        desc["public"] = p.clone();
    }
    desc
}

pub async fn on_registered(c: &mut Conn, r: Registering, body: AuthReplyBody) {
    let id = r.id.as_deref();
    match body {
        AuthReplyBody::Registered { account } => {
            tracing::info!(%account, "tinode: account created");
            if !r.login {
                let ctrl = wire::ctrl(id, code::CREATED)
                    .param("user", ids::account_uid(&account))
                    .param("desc", account_desc(&r.public));
                c.reply(ctrl);
                return;
            }
            let body = AuthRequestBody::Plain {
                authzid: None,
                account,
                password: r.password,
            };
            let wait = Wait::Login(LoggingIn {
                id: r.id.clone(),
                created: Some(r.public),
            });
            if c.ask_auth(body, wait).await.is_none() {
                c.reply(wire::ctrl(id, code::UNAVAILABLE));
            }
        }
        AuthReplyBody::Failure {
            code,
            retry_after_secs,
        } => c.reply(failure(id, code, retry_after_secs)),
        other => {
            tracing::warn!(?other, "tinode: unexpected answer to a registration");
            c.reply(wire::ctrl(id, code::INTERNAL));
        }
    }
}

pub async fn on_login(c: &mut Conn, login: Login) {
    let id = login.id.as_deref();
    if c.user.is_some() {
        c.reply(wire::ctrl(id, code::ALREADY_AUTHENTICATED));
        return;
    }
    let body = match login.scheme.as_str() {
        "basic" => match basic_secret(&login.secret) {
            Some((account, password)) => AuthRequestBody::Plain {
                authzid: None,
                account,
                password,
            },
            None => {
                c.reply(wire::ctrl(id, code::MALFORMED));
                return;
            }
        },
        "token" => AuthRequestBody::Token {
            token: login.secret.clone(),
        },
        _ => {
            c.reply(wire::ctrl(id, code::UNKNOWN_SCHEME));
            return;
        }
    };
    let wait = Wait::Login(LoggingIn {
        id: login.id.clone(),
        created: None,
    });
    if c.ask_auth(body, wait).await.is_none() {
        c.reply(wire::ctrl(id, code::UNAVAILABLE));
    }
}

pub async fn on_logged_in(c: &mut Conn, l: LoggingIn, body: AuthReplyBody) {
    let id = l.id.as_deref();
    let (account, token, expires) = match body {
        AuthReplyBody::Success {
            account,
            token,
            token_expires,
            ..
        } => (account, token, token_expires),
        AuthReplyBody::Failure {
            code,
            retry_after_secs,
        } => {
            c.reply(failure(id, code, retry_after_secs));
            return;
        }
        other => {
            tracing::warn!(?other, "tinode: unexpected answer to a login");
            c.reply(wire::ctrl(id, code::INTERNAL));
            return;
        }
    };
    if c.user.is_some() {
        // Two logins raced; the first one won.
        c.reply(wire::ctrl(id, code::ALREADY_AUTHENTICATED));
        return;
    }
    let uid = ids::account_uid(&account);
    let started = sessions::start_account(
        &c.gw,
        &c.sid,
        &account,
        &c.addr,
        &uid,
        "tinode",
        c.kill.clone(),
    )
    .await;
    let (actor, started) = match started {
        Ok(s) => s,
        Err(AccountStartError::NoNick) => {
            c.reply(wire::Ctrl::new(id, 503, "too many sessions"));
            return;
        }
        Err(AccountStartError::Start(e)) => {
            tracing::warn!(error = %e, "tinode: starting the session failed");
            c.reply(wire::ctrl(id, code::UNAVAILABLE));
            return;
        }
    };
    // Before any direct message can come or go (see p2p).
    let nats = c.gw.registry.nats().clone();
    let prefix = c.nats_prefix.clone();
    c.numbers.listen(&nats, &prefix, &account).await;
    tracing::info!(%account, nick = %actor.nick, "tinode: logged in");
    c.user = Some(User {
        account,
        uid: uid.clone(),
    });
    c.platform = Some(Platform {
        actor,
        shared: started.shared,
        inbox: started.inbox,
    });
    let mut ctrl = wire::ctrl(id, code::OK)
        .param("user", uid)
        .param("authlvl", "auth")
        .param("token", token)
        .param("expires", wire::ts(expires));
    if let Some(public) = &l.created {
        ctrl = ctrl.param("desc", account_desc(public));
    }
    c.reply(ctrl);
    super::marks::load(c).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_secrets() {
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            basic_secret(&enc("Alice:pa:ss")),
            Some(("alice".into(), "pa:ss".into()))
        );
        assert_eq!(
            basic_secret(enc("bob:x").trim_end_matches('=')),
            Some(("bob".into(), "x".into()))
        );
        assert_eq!(basic_secret(&enc("nocolon")), None);
        assert_eq!(basic_secret("!!"), None);
    }
}
