//! Answering one request: the protocol-neutral logic of registration,
//! PLAIN, SCRAM, tokens and account info. Transport-free (see
//! [`crate::worker`] for the queue), so every path is a plain async call.

use std::sync::Arc;
use std::time::Instant;

use bus::schema::{AuthError, AuthReplyBody, AuthRequest, AuthRequestBody, ScramMechanism};
use tokio::sync::Semaphore;

use crate::config::AuthConfig;
use crate::credentials::{self, StoredCredentials};
use crate::db::{Account, CertAdded, Db, DbError, Inserted, Limits, NewAccount};
use crate::passwords::{HashError, Hasher};
use crate::roster::Change;
use crate::scram::{self, ScramError};
use crate::scram_state::{fake_salt, ScramState};
use crate::seal::Sealer;
use crate::tokens::Token;
use crate::validate::{fold, valid_account, valid_password};

/// Why a request could not be answered normally (answered `Internal`).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("a hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("the hashing limiter is closed")]
    Closed(#[from] tokio::sync::AcquireError),
}

/// The largest vCard stored (a photo should be an avatar, XEP-0084).
const MAX_VCARD_BYTES: usize = 32 * 1024;
/// The longest topic key kept (`room:` or `peer:` and a folded name).
const MAX_TOPIC_KEY: usize = 256;
/// Terms of one search looked at, and the most accounts it returns.
const MAX_SEARCH_TERMS: usize = 16;
const MAX_SEARCH_RESULTS: u32 = 100;
/// Ranges one soft delete may hide.
const MAX_HIDE_RANGES: usize = 64;
/// The longest roster item name or group, in characters.
const MAX_ROSTER_TEXT: usize = 256;
/// The most groups one roster item may be in.
const MAX_ROSTER_GROUPS: usize = 32;

/// A request's outcome before it becomes a reply.
type Outcome = Result<AuthReplyBody, ServiceError>;

fn failure(code: AuthError) -> AuthReplyBody {
    AuthReplyBody::Failure {
        code,
        retry_after_secs: None,
    }
}

/// The auth logic and what it needs.
pub struct Service {
    db: Db,
    hasher: Hasher,
    sealer: Sealer,
    cfg: AuthConfig,
    /// Bounds concurrent argon2/PBKDF2 work to the CPU count: each argon2
    /// hash holds `argon2_memory_kib` of memory, and more parallel hashes
    /// than cores only add latency.
    cpu: Arc<Semaphore>,
}

impl Service {
    pub fn new(db: Db, cfg: AuthConfig) -> Result<Self, HashError> {
        let hasher = Hasher::new(cfg.argon2_memory_kib, cfg.argon2_iterations)?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            db,
            hasher,
            sealer: Sealer::new(&cfg.secret),
            cfg,
            cpu: Arc::new(Semaphore::new(cores)),
        })
    }

    /// Computes the dummy hash used for unknown accounts now, so the first
    /// such login does not take twice as long as a real one.
    pub async fn warm_up(&self) -> Result<(), ServiceError> {
        let hasher = self.hasher.clone();
        self.cpu(move || hasher.dummy_verify("warm-up")).await
    }

    /// Answers a request, recording `auth_requests_total{op,result}` and
    /// `auth_request_seconds{op}`. Internal errors are logged (never with a
    /// password: the request's `Debug` is redacted) and answered `Internal`.
    pub async fn handle(&self, req: &AuthRequest) -> AuthReplyBody {
        let op = req.body.op();
        let started = Instant::now();
        let body = match self.dispatch(req).await {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(request = ?req, %error, "auth request failed");
                failure(AuthError::Internal)
            }
        };
        let result = result_label(&body);
        tracing::debug!(id = %req.id, sid = %req.sid, op, result, "auth request answered");
        metrics::counter!("auth_requests_total", "op" => op, "result" => result).increment(1);
        if let AuthReplyBody::Failure { .. } = &body {
            // Failures on their own, for an alert on guessing or outages.
            metrics::counter!("auth_failures_total", "op" => op, "reason" => result).increment(1);
        }
        metrics::histogram!("auth_request_seconds", "op" => op)
            .record(started.elapsed().as_secs_f64());
        body
    }

    async fn dispatch(&self, req: &AuthRequest) -> Outcome {
        match &req.body {
            AuthRequestBody::Register {
                account,
                password,
                email,
            } => {
                self.register(&req.id, account, password, email.as_deref())
                    .await
            }
            AuthRequestBody::Plain {
                authzid,
                account,
                password,
            } => {
                self.plain(&req.client_addr, authzid.as_deref(), account, password)
                    .await
            }
            AuthRequestBody::ScramStart {
                mechanism,
                client_first,
            } => {
                self.scram_start(&req.client_addr, *mechanism, client_first)
                    .await
            }
            AuthRequestBody::ScramFinish {
                state,
                client_final,
            } => {
                self.scram_finish(&req.client_addr, state, client_final)
                    .await
            }
            AuthRequestBody::Token { token } => self.token(token).await,
            AuthRequestBody::External {
                fingerprint,
                authzid,
            } => self.external(fingerprint, authzid.as_deref()).await,
            AuthRequestBody::CertAdd {
                account,
                fingerprint,
            } => {
                let (Some(name), Some(fp)) =
                    (self.existing(account).await?, fingerprint_of(fingerprint))
                else {
                    return Ok(failure(AuthError::NotFound));
                };
                Ok(match self.db.add_cert(&name, &fp).await? {
                    CertAdded::Added | CertAdded::Already => AuthReplyBody::Stored,
                    CertAdded::Taken => failure(AuthError::Taken),
                })
            }
            AuthRequestBody::CertDel {
                account,
                fingerprint,
            } => {
                let fp = fingerprint_of(fingerprint).unwrap_or_default();
                if self.db.remove_cert(&fold(account), &fp).await? {
                    Ok(AuthReplyBody::Stored)
                } else {
                    Ok(failure(AuthError::NotFound))
                }
            }
            AuthRequestBody::CertList { account } => Ok(AuthReplyBody::Certs {
                fingerprints: self.db.certs(&fold(account)).await?,
            }),
            AuthRequestBody::Info { account } => self.info(account).await,
            AuthRequestBody::RosterGet { account } => self.roster(account).await,
            AuthRequestBody::RosterSet {
                account,
                contact,
                name,
                groups,
            } => {
                let change = Change::Set {
                    name: name.clone(),
                    groups: groups.clone(),
                };
                self.change_roster(account, contact, change).await
            }
            AuthRequestBody::RosterRemove { account, contact } => {
                self.change_roster(account, contact, Change::Remove).await
            }
            AuthRequestBody::Subscription {
                account,
                contact,
                action,
            } => {
                self.change_roster(account, contact, Change::Presence(*action))
                    .await
            }
            AuthRequestBody::VcardGet { account } => {
                let name = fold(account);
                if !valid_account(&name) || self.db.account(&name).await?.is_none() {
                    return Ok(failure(AuthError::NotFound));
                }
                Ok(AuthReplyBody::Vcard {
                    vcard: self.db.vcard(&name).await?,
                })
            }
            AuthRequestBody::VcardSet { account, vcard } => {
                if vcard.len() > MAX_VCARD_BYTES {
                    return Ok(failure(AuthError::Malformed));
                }
                self.db.set_vcard(&fold(account), vcard).await?;
                Ok(AuthReplyBody::Stored)
            }
            AuthRequestBody::TopicsGet { account } => Ok(AuthReplyBody::Topics {
                items: self.db.topics(&fold(account)).await?,
            }),
            AuthRequestBody::TopicJoin { account, topic } => {
                let Some(name) = self.topic_owner(account, topic).await? else {
                    return Ok(failure(AuthError::NotFound));
                };
                self.db.join_topic(&name, topic).await?;
                Ok(AuthReplyBody::Stored)
            }
            AuthRequestBody::TopicLeave { account, topic } => {
                self.db.leave_topic(&fold(account), topic).await?;
                Ok(AuthReplyBody::Stored)
            }
            AuthRequestBody::TopicMark {
                account,
                topic,
                read,
                recv,
            } => {
                let Some(name) = self.topic_owner(account, topic).await? else {
                    return Ok(failure(AuthError::NotFound));
                };
                let (read, recv) = self.db.mark_topic(&name, topic, *read, *recv).await?;
                Ok(AuthReplyBody::Marked { read, recv })
            }
            AuthRequestBody::TopicHide {
                account,
                topic,
                ranges,
            } => {
                let Some(name) = self.topic_owner(account, topic).await? else {
                    return Ok(failure(AuthError::NotFound));
                };
                let ranges: Vec<(u64, u64)> = ranges
                    .iter()
                    .copied()
                    .filter(|(low, hi)| *low > 0 && hi > low)
                    .take(MAX_HIDE_RANGES)
                    .collect();
                if ranges.is_empty() {
                    return Ok(failure(AuthError::Malformed));
                }
                self.db.hide_in_topic(&name, topic, &ranges).await?;
                Ok(AuthReplyBody::Stored)
            }
            AuthRequestBody::Search { terms, limit } => self.search(terms, *limit).await,
        }
    }

    /// The folded account that may keep state for `topic`, if both are
    /// acceptable and the account exists.
    async fn topic_owner(
        &self,
        account: &str,
        topic: &str,
    ) -> Result<Option<String>, ServiceError> {
        let name = fold(account);
        let well_formed = topic.len() <= MAX_TOPIC_KEY
            && (topic.starts_with("room:") || topic.starts_with("peer:"));
        if !well_formed || !valid_account(&name) || self.db.account(&name).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(name))
    }

    /// Tinode `fnd`: terms are names, `basic:<name>` or `email:<address>`;
    /// anything else (other tag namespaces) matches nothing.
    async fn search(&self, terms: &[String], limit: u32) -> Outcome {
        let mut keyed: Vec<(String, String)> = Vec::new();
        for term in terms.iter().take(MAX_SEARCH_TERMS) {
            let t = term.trim();
            let key = match t.split_once(':') {
                Some((ns, v)) if ns.eq_ignore_ascii_case("basic") => fold(v),
                Some((ns, v)) if ns.eq_ignore_ascii_case("email") => v.to_ascii_lowercase(),
                Some(_) => continue,
                None if t.contains('@') => t.to_ascii_lowercase(),
                None => fold(t),
            };
            if !key.is_empty() {
                keyed.push((term.clone(), key));
            }
        }
        let (emails, names): (Vec<_>, Vec<_>) = keyed.iter().partition(|(_, k)| k.contains('@'));
        let names: Vec<String> = names.into_iter().map(|(_, k)| k.clone()).collect();
        let emails: Vec<String> = emails.into_iter().map(|(_, k)| k.clone()).collect();
        let limit = limit.clamp(1, MAX_SEARCH_RESULTS);
        let rows = if keyed.is_empty() {
            Vec::new()
        } else {
            self.db.search_accounts(&names, &emails, limit).await?
        };
        Ok(AuthReplyBody::Found {
            accounts: crate::db::found(rows, &keyed),
        })
    }

    async fn roster(&self, account: &str) -> Outcome {
        let r = self.db.roster(&fold(account)).await?;
        Ok(AuthReplyBody::Roster {
            ver: r.ver,
            items: r.items,
            pending_in: r.pending_in,
        })
    }

    /// A roster set, remove or subscription presence: both sides of the
    /// pair change in one transaction. A contact that is no account (or the
    /// account itself) is `NotFound`; over-long names and groups are
    /// `Malformed`.
    async fn change_roster(&self, account: &str, contact: &str, change: Change) -> Outcome {
        let (account, contact) = (fold(account), fold(contact));
        if !valid_account(&contact) || contact == account {
            return Ok(failure(AuthError::NotFound));
        }
        if let Change::Set { name, groups } = &change {
            let too_long = |s: &str| s.chars().count() > MAX_ROSTER_TEXT;
            if name.as_deref().is_some_and(too_long)
                || groups.len() > MAX_ROSTER_GROUPS
                || groups.iter().any(|g| too_long(g))
            {
                return Ok(failure(AuthError::Malformed));
            }
        }
        Ok(
            match self.db.change_roster(&account, &contact, change).await? {
                Some(changed) => AuthReplyBody::RosterChanged {
                    pushes: changed.pushes,
                    notices: changed.notices,
                },
                None => failure(AuthError::NotFound),
            },
        )
    }

    /// Runs CPU-heavy work on the blocking pool, at most one job per core.
    async fn cpu<T, F>(&self, job: F) -> Result<T, ServiceError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self.cpu.clone().acquire_owned().await?;
        Ok(tokio::task::spawn_blocking(job).await?)
    }

    async fn register(
        &self,
        request_id: &str,
        account: &str,
        password: &str,
        email: Option<&str>,
    ) -> Outcome {
        let name = fold(account);
        if !valid_account(&name) {
            return Ok(failure(AuthError::BadAccountName));
        }
        if !valid_password(password) {
            return Ok(failure(AuthError::WeakPassword));
        }
        let creds = self.derive(password).await??;
        let inserted = self
            .db
            .insert_account(&NewAccount {
                name: &name,
                email,
                credentials: &creds,
                request_id: Some(request_id),
            })
            .await?;
        Ok(match inserted {
            Inserted::Created => {
                tracing::info!(account = %name, "account registered");
                AuthReplyBody::Registered { account: name }
            }
            // A redelivery of the request that created it: same answer.
            Inserted::Exists { created_by } if created_by.as_deref() == Some(request_id) => {
                AuthReplyBody::Registered { account: name }
            }
            Inserted::Exists { .. } => failure(AuthError::AccountExists),
        })
    }

    /// Derives every stored credential on the blocking pool.
    async fn derive(
        &self,
        password: &str,
    ) -> Result<Result<StoredCredentials, HashError>, ServiceError> {
        let hasher = self.hasher.clone();
        let password = password.to_string();
        let iterations = self.cfg.scram_iterations;
        self.cpu(move || credentials::derive_all(&hasher, &password, iterations))
            .await
    }

    /// The rate-limit keys of an attempt: the account (if the name could be
    /// one) and the client address (if known).
    fn limit_keys(name: &str, client_addr: &str) -> Vec<(String, bool)> {
        let mut keys = Vec::with_capacity(2);
        if valid_account(name) {
            keys.push((format!("acct:{name}"), true));
        }
        if !client_addr.is_empty() {
            keys.push((format!("addr:{client_addr}"), false));
        }
        keys
    }

    /// `Some(RateLimited)` while any key is locked.
    async fn rate_limited(
        &self,
        keys: &[(String, bool)],
    ) -> Result<Option<AuthReplyBody>, DbError> {
        let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        Ok(self
            .db
            .locked_for(&names)
            .await?
            .map(|secs| AuthReplyBody::Failure {
                code: AuthError::RateLimited,
                retry_after_secs: Some(secs),
            }))
    }

    async fn record_failure(&self, keys: &[(String, bool)]) -> Result<(), DbError> {
        for (key, is_account) in keys {
            let limits = Limits {
                max_failures: if *is_account {
                    self.cfg.max_failures
                } else {
                    self.cfg.max_failures_per_addr
                },
                window_secs: self.cfg.failure_window_secs,
                lockout_secs: self.cfg.lockout_secs,
            };
            self.db.record_failure(key, limits).await?;
        }
        Ok(())
    }

    /// A successful login: the account's counter restarts, a token is issued.
    async fn succeed(&self, account: &Account, server_final: Option<String>) -> Outcome {
        self.db
            .clear_failures(&format!("acct:{}", account.name))
            .await?;
        let (token, token_expires) = Token::issue(
            &self.sealer,
            &account.name,
            bus::now_ms(),
            self.cfg.token_ttl_secs,
        );
        Ok(AuthReplyBody::Success {
            account: account.name.clone(),
            server_final,
            token,
            token_expires,
        })
    }

    async fn plain(
        &self,
        client_addr: &str,
        authzid: Option<&str>,
        account: &str,
        password: &str,
    ) -> Outcome {
        let name = fold(account);
        if authzid.is_some_and(|a| !a.is_empty() && fold(a) != name) {
            return Ok(failure(AuthError::InvalidCredentials));
        }
        let keys = Self::limit_keys(&name, client_addr);
        if let Some(limited) = self.rate_limited(&keys).await? {
            return Ok(limited);
        }
        let found = if valid_account(&name) {
            self.db.account(&name).await?
        } else {
            None
        };
        let hasher = self.hasher.clone();
        let password = password.to_string();
        let phc = found.as_ref().map(|a| a.argon2.clone());
        let matches = self
            .cpu(move || match phc {
                Some(phc) => hasher.verify(&password, &phc),
                None => {
                    // Same work as a real check: timing must not tell
                    // whether the account exists.
                    hasher.dummy_verify(&password);
                    false
                }
            })
            .await?;
        tracing::debug!(account = %name, known = found.is_some(), matches, "PLAIN checked");
        match found {
            Some(account) if matches => {
                if account.disabled {
                    return Ok(failure(AuthError::Disabled));
                }
                self.succeed(&account, None).await
            }
            _ => {
                self.record_failure(&keys).await?;
                Ok(failure(AuthError::InvalidCredentials))
            }
        }
    }

    async fn scram_start(
        &self,
        client_addr: &str,
        mech: ScramMechanism,
        client_first: &str,
    ) -> Outcome {
        let first = match scram::parse_client_first(client_first) {
            Ok(first) => first,
            Err(error) => {
                tracing::debug!(%error, "refused a SCRAM client-first message");
                return Ok(failure(AuthError::Malformed));
            }
        };
        let name = fold(&first.user);
        let keys = Self::limit_keys(&name, client_addr);
        if let Some(limited) = self.rate_limited(&keys).await? {
            return Ok(limited);
        }
        let found = if valid_account(&name) {
            self.db.account(&name).await?
        } else {
            None
        };
        // An unknown account gets a stable fake salt and the usual
        // iterations, so the answer looks the same; it fails at the finish.
        let (salt, iterations) = match &found {
            Some(a) => (a.scram(mech).salt.clone(), a.scram(mech).iterations),
            None => (
                fake_salt(&self.sealer, mech, &name),
                self.cfg.scram_iterations,
            ),
        };
        let server_first = scram::server_first(
            &first.client_nonce,
            &scram::new_server_nonce(),
            &salt,
            iterations,
        );
        let ttl_ms =
            i64::try_from(self.cfg.scram_state_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let state = ScramState {
            mech,
            account: name,
            client_first_bare: first.bare,
            server_first: server_first.clone(),
            gs2_header: first.gs2_header,
            expires: bus::now_ms().saturating_add(ttl_ms),
        };
        Ok(AuthReplyBody::ScramContinue {
            server_first,
            state: state.seal(&self.sealer),
        })
    }

    async fn scram_finish(&self, client_addr: &str, state: &str, client_final: &str) -> Outcome {
        let state = match ScramState::open(state, &self.sealer, bus::now_ms()) {
            Ok(state) => state,
            Err(error) => {
                tracing::debug!(%error, "refused a SCRAM state");
                return Ok(failure(AuthError::Malformed));
            }
        };
        let keys = Self::limit_keys(&state.account, client_addr);
        if let Some(limited) = self.rate_limited(&keys).await? {
            return Ok(limited);
        }
        let Some(account) = self.db.account(&state.account).await? else {
            self.record_failure(&keys).await?;
            return Ok(failure(AuthError::InvalidCredentials));
        };
        let verified = scram::verify_final(
            state.mech,
            account.scram(state.mech),
            &state.client_first_bare,
            &state.server_first,
            &state.gs2_header,
            client_final,
        );
        match verified {
            Ok(server_final) => {
                if account.disabled {
                    return Ok(failure(AuthError::Disabled));
                }
                self.succeed(&account, Some(server_final)).await
            }
            Err(ScramError::Proof) => {
                self.record_failure(&keys).await?;
                Ok(failure(AuthError::InvalidCredentials))
            }
            Err(error) => {
                tracing::debug!(%error, "refused a SCRAM client-final message");
                Ok(failure(AuthError::Malformed))
            }
        }
    }

    /// The folded account, if it exists.
    async fn existing(&self, account: &str) -> Result<Option<String>, ServiceError> {
        let name = fold(account);
        if !valid_account(&name) || self.db.account(&name).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(name))
    }

    /// SASL EXTERNAL: the fingerprint was added to an enabled account.
    async fn external(&self, fingerprint: &str, authzid: Option<&str>) -> Outcome {
        let Some(fp) = fingerprint_of(fingerprint) else {
            return Ok(failure(AuthError::InvalidCredentials));
        };
        let Some(name) = self.db.cert_account(&fp).await? else {
            return Ok(failure(AuthError::InvalidCredentials));
        };
        if authzid.is_some_and(|a| !a.is_empty() && fold(a) != name) {
            return Ok(failure(AuthError::InvalidCredentials));
        }
        let Some(account) = self.db.account(&name).await? else {
            return Ok(failure(AuthError::InvalidCredentials));
        };
        if account.disabled {
            return Ok(failure(AuthError::Disabled));
        }
        self.succeed(&account, None).await
    }

    async fn token(&self, token: &str) -> Outcome {
        let Some(checked) = Token::check(&self.sealer, token, bus::now_ms()) else {
            return Ok(failure(AuthError::BadToken));
        };
        let Some(account) = self.db.account(&checked.account).await? else {
            return Ok(failure(AuthError::BadToken));
        };
        let changed_ms = account.credentials_changed_at.timestamp_millis();
        if account.disabled || checked.issued_ms < changed_ms {
            return Ok(failure(AuthError::BadToken));
        }
        Ok(AuthReplyBody::Success {
            account: account.name,
            server_final: None,
            token: token.to_string(),
            token_expires: checked.expires_ms,
        })
    }

    async fn info(&self, account: &str) -> Outcome {
        let name = fold(account);
        let found = if valid_account(&name) {
            self.db.account(&name).await?
        } else {
            None
        };
        Ok(match found {
            Some(a) => AuthReplyBody::Info {
                account: a.name,
                registered_at: a.created_at.timestamp_millis(),
                disabled: a.disabled,
            },
            None => failure(AuthError::NotFound),
        })
    }
}

/// The metrics label of an answer.
fn result_label(body: &AuthReplyBody) -> &'static str {
    match body {
        AuthReplyBody::Success { .. } => "success",
        AuthReplyBody::ScramContinue { .. } => "scram_continue",
        AuthReplyBody::Registered { .. } => "registered",
        AuthReplyBody::Info { .. } => "info",
        AuthReplyBody::Roster { .. } => "roster",
        AuthReplyBody::RosterChanged { .. } => "roster_changed",
        AuthReplyBody::Vcard { .. } => "vcard",
        AuthReplyBody::Stored => "stored",
        AuthReplyBody::Topics { .. } => "topics",
        AuthReplyBody::Marked { .. } => "marked",
        AuthReplyBody::Found { .. } => "found",
        AuthReplyBody::Certs { .. } => "certs",
        AuthReplyBody::Failure { code, .. } => match code {
            AuthError::InvalidCredentials => "invalid_credentials",
            AuthError::RateLimited => "rate_limited",
            AuthError::AccountExists => "account_exists",
            AuthError::BadAccountName => "bad_account_name",
            AuthError::WeakPassword => "weak_password",
            AuthError::Disabled => "disabled",
            AuthError::NotFound => "not_found",
            AuthError::Malformed => "malformed",
            AuthError::BadToken => "bad_token",
            AuthError::Taken => "taken",
            AuthError::Internal => "internal",
        },
    }
}

/// A SHA-256 fingerprint as stored: 64 hex digits, lowercase; colons (as
/// some tools print it) are dropped.
fn fingerprint_of(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|ch| *ch != ':')
        .map(|ch| ch.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

#[cfg(test)]
mod fingerprint_tests {
    use super::fingerprint_of;

    #[test]
    fn fingerprints_are_normalised_hex() {
        let fp = "AB".repeat(32);
        assert_eq!(fingerprint_of(&fp), Some("ab".repeat(32)));
        let colons: Vec<String> = (0..32).map(|_| "0f".to_string()).collect();
        assert_eq!(fingerprint_of(&colons.join(":")), Some("0f".repeat(32)));
        assert_eq!(fingerprint_of("abc"), None);
        assert_eq!(fingerprint_of(&"zz".repeat(32)), None);
    }
}
