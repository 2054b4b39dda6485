//! `chatctl`: account administration, straight against PostgreSQL through
//! the service's own `db` module (same SQL, same migrations, same hashing).
//!
//! Passwords are read from standard input (one line), never from the
//! command line where `ps` would show them.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use auth_service::config::Config;
use auth_service::credentials::derive_all;
use auth_service::db::{Db, Inserted, NewAccount};
use auth_service::passwords::Hasher;
use auth_service::validate::{fold, valid_account, valid_password};
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
    let cfg: Config =
        bus::config::load(args.config.as_deref()).context("loading the configuration")?;
    let Command::Account(command) = args.command;
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
