//! The measures' writer: one blocking SQLite connection on which every write of the measures
//! (ingest, AMQP deliveries, source pulls, compaction, retention) runs whole, in one call.
//!
//! sqlx runs each connection on a worker thread and hands every statement across a channel:
//! an ingest batch took four hand-offs and a compaction pass one per chunk it wrote, and those
//! thread wake-ups were about a tenth of the server's CPU in the ingest benchmark. One
//! connection for all of them also keeps its page cache warm: in WAL mode a connection drops
//! its cache when another connection wrote since its last transaction.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::{Result, StoreError};

/// The connection's page cache, in KiB: the hot pages of the measure tables.
const CACHE_KIB: i64 = 16_384;

/// The writer of one database file (created and migrated by the store before).
#[derive(Debug)]
pub(crate) struct Writer {
    path: PathBuf,
    /// This process's writers wait here for their turn without holding a thread.
    queue: tokio::sync::Mutex<()>,
    /// Opened at the first write; `None` again after a write left it inside a transaction,
    /// or once the store closed.
    connection: Mutex<Option<Connection>>,
    closed: std::sync::atomic::AtomicBool,
}

impl Writer {
    /// The writer of the database at `path`.
    pub(crate) fn new(path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            path,
            queue: tokio::sync::Mutex::new(()),
            connection: Mutex::new(None),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn open(&self) -> Result<Connection> {
        let connection = super::blocking_connection(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        // As the store's other connections: durable in WAL mode but for the last transactions
        // on power loss; a process crash loses nothing.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", true)?;
        connection.pragma_update(None, "cache_size", -CACHE_KIB)?;
        connection.set_prepared_statement_cache_capacity(64);
        Ok(connection)
    }

    /// Runs `write` in one transaction that holds the database's write lock from its start
    /// (`BEGIN IMMEDIATE`), behind this process's other writes, on a blocking thread; commits
    /// when it returns `Ok`, rolls back otherwise.
    pub(crate) async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        write: impl FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _turn = self.queue.lock().await;
        let writer = Arc::clone(self);
        // The connection's mutex, taken on the blocking thread, keeps the write exclusive even
        // if this future is dropped while the write runs.
        super::on_blocking_thread("write", move || writer.run(write)).await
    }

    fn run<T>(&self, write: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Io(std::io::Error::other("the store is closed")));
        }
        let connection = match slot.as_mut() {
            Some(connection) => connection,
            None => slot.insert(self.open()?),
        };
        let result = (|| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = write(&transaction)?;
            transaction.commit()?;
            Ok(out)
        })();
        // A connection left inside a transaction (a rollback that failed) is not used again.
        if !connection.is_autocommit() {
            *slot = None;
        }
        result
    }

    /// Closes the connection; later writes fail.
    pub(crate) fn close(&self) {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        *slot = None;
    }
}
