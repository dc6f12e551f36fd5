//! `mymonit token …`: ingest tokens straight on the database.

use anyhow::bail;
use clap::Subcommand;
use mymonit_server::ingest::tokens;
use mymonit_store::Store;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an ingest token; the secret is printed once, on the last line of the output.
    Create {
        /// Experiment it may write to (repeat for several).
        #[arg(long = "experiment", value_name = "NAME", required = true)]
        experiments: Vec<String>,
        /// What it is for, for example "vibration sensor, lab 1".
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List ingest tokens (never their secrets).
    List,
    /// Revoke an ingest token: requests using it are refused from now on.
    Revoke {
        /// The token's id (from `token list`).
        token_id: String,
    },
}

/// Runs a `TokenCommand` on the database.
pub async fn execute(command: &TokenCommand, store: &dyn Store) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            experiments,
            description,
        } => {
            let (token, secret) = tokens::create(store, experiments, description, None)
                .await
                .map_err(|err| anyhow::anyhow!("cannot create the token: {err}"))?;
            eprintln!(
                "created ingest token {} for {}; keep the secret below, it is not shown again",
                token.token_id,
                experiments.join(", ")
            );
            println!("{}", secret.expose());
        }
        TokenCommand::List => {
            println!(
                "{:<14} {:<8} {:<20} description",
                "token_id", "revoked", "experiments"
            );
            for token in store.list_ingest_tokens().await? {
                let experiments: Vec<String> = token
                    .experiment_ids
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                println!(
                    "{:<14} {:<8} {:<20} {}",
                    token.token_id,
                    if token.revoked { "yes" } else { "no" },
                    experiments.join(","),
                    token.description
                );
            }
        }
        TokenCommand::Revoke { token_id } => {
            if !store.revoke_ingest_token(token_id).await? {
                bail!("no live ingest token {token_id}");
            }
            println!("revoked ingest token {token_id}");
        }
    }
    Ok(())
}
