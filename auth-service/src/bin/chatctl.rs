//! `chatctl`: account administration, straight against PostgreSQL through
//! the service's own `db` module (same SQL, same migrations, same hashing).
//!
//! Passwords are read from standard input (one line), never from the
//! command line where `ps` would show them.
//!
//! `chatctl alert` is the one command that talks to RabbitMQ instead
//! (`[amqp] url`, `CHAT__AMQP__URL`): it posts to the alerts exchange like
//! any internal system would, and exits non-zero unless the broker
//! confirmed the alert.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use auth_service::config::Config;
use auth_service::credentials::derive_all;
use auth_service::db::{Db, Inserted, NewAccount};
use auth_service::passwords::Hasher;
use auth_service::validate::{fold, valid_account, valid_password};
use bus::alerts::AlertBody;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "chatctl", version, about = "Chat platform administration")]
struct Args {
    /// TOML configuration file (else `CHAT_CONFIG`, else built-in defaults;
    /// `CHAT__POSTGRES__URL` overrides the database).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Certificates for the gateway's TLS listener.
    #[command(subcommand)]
    Tls(TlsCommand),
    /// IRC operators.
    #[command(subcommand)]
    Oper(OperCommand),
    /// Post an alert into a room through the alerts exchange (as any
    /// internal system would): shown from the bot named after the source.
    Alert {
        /// The room: `ops` (or `#ops`) for IRC `#ops`.
        room: String,
        /// The message.
        text: String,
        /// A word shown in brackets first: info, warning, critical…
        #[arg(long)]
        severity: Option<String>,
        /// Who speaks: the bot's nick is made from it.
        #[arg(long, default_value = bus::alerts::DEFAULT_SOURCE)]
        source: String,
        /// An http(s) link shown after the text.
        #[arg(long)]
        link: Option<String>,
    },
}

/// How long `chatctl alert` waits for the broker (connecting, then the
/// confirm).
const ALERT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `chatctl alert`: checks the alert with the router's own parser, then
/// declares the exchange and queue (idempotent: an alert sent while no
/// router runs waits for one) and publishes it, mandatory and confirmed.
async fn alert(cfg: &Config, room: &str, body: AlertBody) -> anyhow::Result<()> {
    // IRC writes the room with its `#`; the routing key is the name.
    let room = room.strip_prefix('#').unwrap_or(room);
    let json = serde_json::to_vec(&body).context("encoding the alert")?;
    let checked = bus::alerts::parse(&bus::alerts::Envelope {
        routing_key: room,
        content_type: Some("application/json"),
        body: &json,
        ..Default::default()
    })?;
    let send = async {
        let conn = bus::topology::connect(&cfg.amqp.url, "chatctl alert")
            .await
            .context("connecting to RabbitMQ")?;
        let ch = bus::topology::confirm_channel(&conn).await?;
        bus::alerts::declare(&ch)
            .await
            .context("declaring the alerts exchange")?;
        bus::alerts::publish(&ch, room, &body, "chatctl")
            .await
            .context("publishing the alert")?;
        let _ = conn.close(200, "OK".into()).await;
        anyhow::Ok(())
    };
    tokio::time::timeout(ALERT_TIMEOUT, send)
        .await
        .map_err(|_| anyhow::anyhow!("RabbitMQ did not answer within {ALERT_TIMEOUT:?}"))??;
    println!("alert sent to {room} from {}", checked.source);
    Ok(())
}

#[derive(Debug, Subcommand)]
enum OperCommand {
    /// Print the argon2 hash of a password read from standard input, for
    /// `[irc.opers] <name> = "<hash>"` (or `CHAT__IRC__OPERS__<NAME>`).
    Hash,
}

#[derive(Debug, Subcommand)]
enum TlsCommand {
    /// Write a self-signed certificate and its key (PEM) for local use:
    /// point `[irc] tls_cert` / `tls_key` at them. Clients must be told
    /// to accept it (e.g. irssi `-tls_verify` off, WeeChat
    /// `tls_verify off`).
    SelfSigned {
        /// Where the certificate goes.
        #[arg(long, default_value = "tls/cert.pem")]
        cert: PathBuf,
        /// Where the private key goes (written readable by its owner only).
        #[arg(long, default_value = "tls/key.pem")]
        key: PathBuf,
        /// Names the certificate is for (DNS names or IP addresses).
        #[arg(long = "name", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        names: Vec<String>,
        /// Replace files that exist.
        #[arg(long)]
        force: bool,
    },
}

/// `chatctl tls self-signed`.
fn self_signed(
    cert: &std::path::Path,
    key: &std::path::Path,
    names: Vec<String>,
    force: bool,
) -> anyhow::Result<()> {
    if !force && (cert.exists() || key.exists()) {
        bail!(
            "{} or {} exists (--force replaces them)",
            cert.display(),
            key.display()
        );
    }
    let made =
        rcgen::generate_simple_self_signed(names.clone()).context("generating the certificate")?;
    for path in [cert, key] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    std::fs::write(cert, made.cert.pem()).with_context(|| format!("writing {}", cert.display()))?;
    write_private(key, made.key_pair.serialize_pem().as_bytes())
        .with_context(|| format!("writing {}", key.display()))?;
    println!(
        "wrote {} and {} (self-signed for {})",
        cert.display(),
        key.display(),
        names.join(", ")
    );
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Create an account; the password is read from standard input.
    Create {
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input (the default; accepted
        /// for scripts that spell it out).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Refuse logins to an account.
    Disable { name: String },
    /// Allow logins to an account again.
    Enable { name: String },
    /// Delete an account.
    Delete { name: String },
    /// Set a new password (read from standard input); older tokens stop working.
    ResetPassword {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chatctl: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chatctl: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads one line from standard input as the password.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if !valid_password(&password) {
        bail!("the password must be 8 to 256 bytes");
    }
    Ok(password)
}

fn account_name(name: &str) -> anyhow::Result<String> {
    let folded = fold(name);
    if !valid_account(&folded) {
        bail!("{name:?} is not a valid account name (2-32 of a-z 0-9 _ -, starting with a letter)");
    }
    Ok(folded)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let command = match args.command {
        Command::Account(command) => Some(command),
        Command::Oper(OperCommand::Hash) => None,
        Command::Alert {
            room,
            text,
            severity,
            source,
            link,
        } => {
            let cfg: Config =
                bus::config::load(args.config.as_deref()).context("loading the configuration")?;
            let body = AlertBody {
                text: Some(text),
                severity,
                source: Some(source),
                link,
            };
            return alert(&cfg, &room, body).await;
        }
        Command::Tls(TlsCommand::SelfSigned {
            cert,
            key,
            names,
            force,
        }) => return self_signed(&cert, &key, names, force),
    };
    let cfg: Config =
        bus::config::load(args.config.as_deref()).context("loading the configuration")?;
    let command = match command {
        Some(command) => command,
        None => {
            // `oper hash`: no database needed.
            let password = read_password()?;
            let hasher = Hasher::new(cfg.auth.argon2_memory_kib, cfg.auth.argon2_iterations)
                .context("argon2 parameters")?;
            println!("{}", hasher.hash(&password).context("hashing")?);
            return Ok(());
        }
    };
    // Opened lazily: arguments and passwords are validated first.
    let db = || async {
        Db::open(&cfg.postgres)
            .await
            .context("opening the database")
    };
    let hasher = || Hasher::new(cfg.auth.argon2_memory_kib, cfg.auth.argon2_iterations);
    match command {
        AccountCommand::Create { name, email, .. } => {
            let name = account_name(&name)?;
            let password = read_password()?;
            let creds = derive_all(&hasher()?, &password, cfg.auth.scram_iterations)?;
            let inserted = db()
                .await?
                .insert_account(&NewAccount {
                    name: &name,
                    email: email.as_deref(),
                    credentials: &creds,
                    request_id: None,
                })
                .await?;
            if inserted != Inserted::Created {
                bail!("account {name} already exists");
            }
            println!("created {name}");
        }
        AccountCommand::List => {
            for a in db().await?.list_accounts().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    a.name,
                    a.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    if a.disabled { "disabled" } else { "enabled" },
                    a.email.as_deref().unwrap_or("-")
                );
            }
        }
        AccountCommand::Disable { name } => set_disabled(&db().await?, &name, true).await?,
        AccountCommand::Enable { name } => set_disabled(&db().await?, &name, false).await?,
        AccountCommand::Delete { name } => {
            let name = account_name(&name)?;
            if !db().await?.delete_account(&name).await? {
                bail!("no account {name}");
            }
            println!("deleted {name}");
        }
        AccountCommand::ResetPassword { name, .. } => {
            let name = account_name(&name)?;
            let password = read_password()?;
            let creds = derive_all(&hasher()?, &password, cfg.auth.scram_iterations)?;
            if !db().await?.set_credentials(&name, &creds).await? {
                bail!("no account {name}");
            }
            println!("password of {name} changed; older tokens are revoked");
        }
    }
    Ok(())
}

async fn set_disabled(db: &Db, name: &str, disabled: bool) -> anyhow::Result<()> {
    let name = account_name(name)?;
    if !db.set_disabled(&name, disabled).await? {
        bail!("no account {name}");
    }
    println!("{name} {}", if disabled { "disabled" } else { "enabled" });
    Ok(())
}
