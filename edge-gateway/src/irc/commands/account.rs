//! `REGISTER` and `VERIFY` (IRCv3 `draft/account-registration`), also the
//! shared tail of NickServ REGISTER: create the account, then log in with
//! the same password so the client ends up authenticated either way.

use bus::names::fold;
use bus::schema::{AuthError, AuthReplyBody, AuthRequestBody};

use super::nickserv;
use crate::irc::auth::{self, fail, Purpose, Via};
use crate::irc::client::Client;
use crate::irc::line::Message;

/// `REGISTER <account|*> <email|*> <password>`.
pub async fn register(c: &mut Client, m: &Message) {
    if m.params.len() < 3 {
        fail(
            c,
            "REGISTER",
            "NEED_MORE_PARAMS",
            "*",
            "Not enough parameters",
        );
        return;
    }
    if let Some(acct) = c.account.clone() {
        fail(
            c,
            "REGISTER",
            "ALREADY_AUTHENTICATED",
            &acct,
            "You are already authenticated",
        );
        return;
    }
    let account = match m.params[0].as_str() {
        "*" => match &c.nick {
            Some(n) => fold(n),
            None => {
                fail(
                    c,
                    "REGISTER",
                    "BAD_ACCOUNT_NAME",
                    "*",
                    "Choose a nick first",
                );
                return;
            }
        },
        a => fold(a),
    };
    let email = Some(m.params[1].clone()).filter(|e| e != "*" && !e.is_empty());
    let password = m.params[2].clone();
    start(c, Via::Command, account, email, password).await;
}

/// Sends the Register request; shared with NickServ REGISTER.
pub async fn start(
    c: &mut Client,
    via: Via,
    account: String,
    email: Option<String>,
    password: String,
) {
    let body = AuthRequestBody::Register {
        account: account.clone(),
        password: password.clone(),
        email,
    };
    let purpose = Purpose::Register {
        via,
        account: account.clone(),
        password,
    };
    if !auth::request(c, body, purpose).await {
        refuse(c, via, &account, AuthError::Internal);
    }
}

/// `VERIFY <account> <code>`: no verification is configured, so no code is
/// ever valid.
pub fn verify(c: &mut Client, m: &Message) {
    let account = m.params.first().map(String::as_str).unwrap_or("*");
    fail(
        c,
        "VERIFY",
        "INVALID_CODE",
        account,
        "Invalid verification code",
    );
}

/// The answer to a Register request: on success, log in.
pub async fn on_registered(
    c: &mut Client,
    via: Via,
    account: String,
    password: String,
    body: AuthReplyBody,
) {
    match body {
        AuthReplyBody::Registered { account } => {
            let body = AuthRequestBody::Plain {
                authzid: None,
                account: account.clone(),
                password,
            };
            let purpose = Purpose::Login {
                via,
                registered: true,
            };
            if !auth::request(c, body, purpose).await {
                refuse(c, via, &account, AuthError::Internal);
            }
        }
        AuthReplyBody::Failure { code, .. } => refuse(c, via, &account, code),
        _ => refuse(c, via, &account, AuthError::Internal),
    }
}

/// The login after `REGISTER` (`registered`) succeeded or failed.
pub async fn on_login(c: &mut Client, registered: bool, body: AuthReplyBody) {
    match body {
        AuthReplyBody::Success { account, .. } => {
            if registered {
                c.send(
                    Message::new("REGISTER")
                        .with_source(c.server())
                        .param("SUCCESS")
                        .param(account.as_str())
                        .text("Account successfully registered"),
                );
            }
            auth::log_in(c, &account).await;
        }
        AuthReplyBody::Failure { code, .. } => refuse(c, Via::Command, "*", code),
        _ => refuse(c, Via::Command, "*", AuthError::Internal),
    }
}

/// Tells the client why registering failed, in the words of its face.
pub fn refuse(c: &Client, via: Via, account: &str, code: AuthError) {
    if via == Via::NickServ {
        nickserv::register_failed(c, account, code);
        return;
    }
    let (code, text) = register_error(code);
    fail(c, "REGISTER", code, account, text);
}

/// The `FAIL REGISTER` code and text for an auth error.
pub fn register_error(code: AuthError) -> (&'static str, &'static str) {
    match code {
        AuthError::AccountExists => ("ACCOUNT_EXISTS", "Account already exists"),
        AuthError::BadAccountName => ("BAD_ACCOUNT_NAME", "Account name is not valid"),
        AuthError::WeakPassword => ("WEAK_PASSWORD", "Password too weak"),
        _ => (
            "TEMPORARILY_UNAVAILABLE",
            "Registration is temporarily unavailable, try again later",
        ),
    }
}
