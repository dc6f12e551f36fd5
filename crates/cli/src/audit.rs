//! `mymonit audit …`: the audit trail, straight on the database.

use anyhow::bail;
use clap::Subcommand;
use mymonit_store::Store;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the trail's hash chain: exits 0 when it is intact, otherwise names the first
    /// record that was altered, removed or reordered and exits 1.
    Verify,
}

/// Runs an `AuditCommand` on the database.
pub async fn execute(command: &AuditCommand, store: &dyn Store) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify => {
            let verification = mymonit_server::audit::verify(store).await?;
            match verification.first_bad {
                None => {
                    println!(
                        "audit trail intact: {} records, head {}",
                        verification.records, verification.head
                    );
                    Ok(())
                }
                Some(bad) => bail!(
                    "audit trail broken at record {}: {} ({} records before it are intact)",
                    bad.seq,
                    bad.reason,
                    verification.records
                ),
            }
        }
    }
}
