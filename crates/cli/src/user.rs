//! `mymonit user …`: account management straight on the database, with or without a running
//! server (SQLite in WAL mode lets both work at once).

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use clap::Subcommand;
use mymonit_model::{Redacted, Role, User, password::POLICY};
use mymonit_server::accounts;
use mymonit_store::Store;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account.
    #[command(after_help = format!("Password policy: {POLICY}."))]
    Add {
        /// Staff id, for example S003.
        #[arg(long = "id", value_name = "USER_ID")]
        user_id: String,
        /// Display name, for example "Allan Alcorn".
        #[arg(long)]
        name: String,
        /// Login name (or the external identity provider's uid).
        #[arg(long)]
        username: String,
        /// Email address.
        #[arg(long)]
        email: String,
        /// ADMIN, SCIENTIST or AUDITOR.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from standard input (first line). Without it, the account can
        /// sign in only through an external identity provider.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set an account's password (read from standard input); its existing tokens stop working.
    #[command(after_help = format!("Password policy: {POLICY}."))]
    Passwd {
        /// Staff id of the account.
        user_id: String,
        /// Read the password from standard input (first line). Required: passwords are never
        /// taken from the command line, where other users could see them.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Erase an account (GDPR): name, username, email, password and associations are removed;
    /// the id is kept as a pseudonym.
    Erase {
        /// Staff id of the account.
        user_id: String,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|err: mymonit_model::permissions::UnknownRole| err.to_string())
}

fn read_password() -> anyhow::Result<Redacted<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password: ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(Redacted::new(password))
}

/// Runs a `UserCommand` on the database.
pub async fn execute(command: &UserCommand, store: &dyn Store) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            user_id,
            name,
            username,
            email,
            role,
            password_stdin,
        } => {
            let password = if *password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let user = User {
                user_id: user_id.clone(),
                name: name.clone().into(),
                username: username.clone().into(),
                email: email.clone().into(),
                role: *role,
            };
            let has_password = password.is_some();
            accounts::create(store, &user, password)
                .await
                .with_context(|| format!("cannot create user {user_id}"))?;
            println!("created {} user {user_id} ({username})", role.as_str());
            if !has_password {
                eprintln!(
                    "note: no password set; {username} can sign in only through an external identity provider \
                     (set one with: mymonit user passwd {user_id} --password-stdin)"
                );
            }
        }
        UserCommand::List { json } => {
            let users = store.list_users().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                println!(
                    "{:<10} {:<10} {:<30} {:<30} name",
                    "user_id", "role", "username", "email"
                );
                for user in users {
                    println!(
                        "{:<10} {:<10} {:<30} {:<30} {}",
                        user.user_id,
                        user.role.as_str(),
                        user.username.expose(),
                        user.email.expose(),
                        user.name.expose()
                    );
                }
            }
        }
        UserCommand::Passwd {
            user_id,
            password_stdin,
        } => {
            if !password_stdin {
                bail!("pass --password-stdin and give the password on standard input");
            }
            let user = store
                .get_user(user_id)
                .await?
                .with_context(|| format!("no user {user_id}"))?;
            let password = read_password()?;
            accounts::set_password(store, &user, password)
                .await
                .with_context(|| format!("cannot set the password of {user_id}"))?;
            println!("password of {user_id} changed; their earlier tokens no longer work");
        }
        UserCommand::Erase { user_id } => {
            store
                .erase_user(user_id)
                .await
                .with_context(|| format!("cannot erase user {user_id}"))?;
            println!("erased user {user_id}: personal data and credentials removed, id kept");
        }
    }
    Ok(())
}
