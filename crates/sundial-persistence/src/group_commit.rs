//! Group commit for the server databases, one driver for every dialect.
//!
//! A few writer tasks each take every batch that is waiting (up to `MAX_GROUP`) and apply them
//! in one transaction, so one log flush covers many acknowledged writes. A group is applied
//! without savepoints; when one batch fails for a reason of its own (fencing, a version
//! conflict), the transaction is rolled back and the group applied again with a savepoint per
//! batch, so only the failing batches fail. A deadlock or serialization failure rolls the whole
//! transaction back and the group is tried again; any other database error fails every batch
//! of the group.

use std::sync::Arc;

use async_trait::async_trait;
use sundial_common::{Error, Result};
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};
use tracing::warn;

use crate::records::WriteBatch;

/// Batches committed in one transaction at most. Kept well under 64: a PostgreSQL backend
/// caches the ids of at most 64 subtransactions (savepoints), and overflowing that cache slows
/// every snapshot of every session.
pub(crate) const MAX_GROUP: usize = 48;

/// How often a group that hit a deadlock is tried again before its batches fail.
const DEADLOCK_RETRIES: usize = 3;

/// Why applying a batch (or a statement of the group) failed.
pub(crate) enum BatchError {
    /// A reason of the batch's own (fencing, a version conflict): only it fails.
    Own(Error),
    /// The transaction was chosen as a deadlock victim or could not be serialized: the whole
    /// group may be tried again.
    Retry(Error),
    /// The database failed: every batch of the group fails.
    Database(Error),
}

/// One connection of a dialect, as the driver needs it.
#[async_trait]
pub(crate) trait GroupConnection: Send {
    /// Runs a statement without parameters (`BEGIN`, `SAVEPOINT b`, ...).
    async fn simple(&mut self, sql: &'static str) -> std::result::Result<(), BatchError>;
    /// Applies one batch inside the open transaction.
    async fn apply(&mut self, batch: &WriteBatch) -> std::result::Result<(), BatchError>;
    /// Opens a transaction, applies batches in order and commits; the first failure is the
    /// outcome, and then nothing is committed (the transaction may be left open, to be rolled
    /// back). A dialect whose driver pipelines sends it all at once.
    async fn apply_and_commit(
        &mut self,
        batches: &[&WriteBatch],
    ) -> std::result::Result<(), BatchError> {
        self.simple("BEGIN").await?;
        for batch in batches {
            self.apply(batch).await?;
        }
        self.simple("COMMIT").await
    }
    /// The connection is no longer usable (a rollback failed): keep it out of the pool.
    fn discard(self);
}

/// Where writer tasks get their connections.
#[async_trait]
pub(crate) trait ConnectionSource: Send + Sync + 'static {
    type Connection: GroupConnection;
    async fn connection(&self) -> Result<Self::Connection>;
}

struct WriteRequest {
    batch: WriteBatch,
    reply: oneshot::Sender<Result<()>>,
}

/// The queue in front of the writer tasks.
pub(crate) struct GroupWriter {
    sender: parking_lot::Mutex<Option<mpsc::UnboundedSender<WriteRequest>>>,
}

impl GroupWriter {
    /// Starts `writers` writer tasks over `source`.
    pub(crate) fn start<S: ConnectionSource>(source: S, writers: usize) -> GroupWriter {
        let (sender, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(AsyncMutex::new(receiver));
        let source = Arc::new(source);
        for _ in 0..writers.max(1) {
            tokio::spawn(writer_loop(source.clone(), receiver.clone()));
        }
        GroupWriter {
            sender: parking_lot::Mutex::new(Some(sender)),
        }
    }

    /// Queues a batch and waits until its group is committed (or failed).
    pub(crate) async fn write(&self, batch: WriteBatch) -> Result<()> {
        let (reply, receiver) = oneshot::channel();
        {
            let sender = self.sender.lock();
            let Some(sender) = sender.as_ref() else {
                return Err(Error::Unavailable("store is closed".into()));
            };
            sender
                .send(WriteRequest { batch, reply })
                .map_err(|_| Error::Unavailable("store writer stopped".into()))?;
        }
        receiver
            .await
            .map_err(|_| Error::Unavailable("store writer stopped".into()))?
    }

    /// Lets the queued writes finish and refuses later ones.
    pub(crate) fn close(&self) {
        self.sender.lock().take();
    }
}

async fn writer_loop<S: ConnectionSource>(
    source: Arc<S>,
    receiver: Arc<AsyncMutex<mpsc::UnboundedReceiver<WriteRequest>>>,
) {
    loop {
        let group = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match receiver.try_recv() {
                    Ok(request) => group.push(request),
                    Err(_) => break,
                }
            }
            group
        };
        let batches: Vec<&WriteBatch> = group.iter().map(|request| &request.batch).collect();
        let results = commit_with_retries(source.as_ref(), &batches).await;
        for (request, result) in group.into_iter().zip(results) {
            let _ = request.reply.send(result);
        }
    }
}

async fn commit_with_retries<S: ConnectionSource>(
    source: &S,
    batches: &[&WriteBatch],
) -> Vec<Result<()>> {
    let fail_all = |error: Error| batches.iter().map(|_| Err(error.clone())).collect();
    let mut attempt = 0;
    loop {
        let mut connection = match source.connection().await {
            Ok(connection) => connection,
            Err(error) => {
                warn!(%error, "database unavailable for a write");
                return fail_all(error);
            }
        };
        match commit_group(&mut connection, batches).await {
            Ok(results) => return results,
            Err(failure) => {
                // The transaction failed part-way: end it before the connection is reused.
                let rolled_back = connection.simple("ROLLBACK").await.is_ok();
                if !rolled_back {
                    connection.discard();
                }
                match failure {
                    BatchError::Retry(error) if attempt < DEADLOCK_RETRIES => {
                        attempt += 1;
                        warn!(%error, attempt, "write group rolled back; trying it again");
                    }
                    BatchError::Retry(error)
                    | BatchError::Database(error)
                    | BatchError::Own(error) => {
                        warn!(%error, "write group failed");
                        return fail_all(error);
                    }
                }
            }
        }
    }
}

/// Applies a group in one transaction. `Err` means the transaction is left unfinished and every
/// batch failed (or the group may be tried again).
async fn commit_group<C: GroupConnection>(
    connection: &mut C,
    batches: &[&WriteBatch],
) -> std::result::Result<Vec<Result<()>>, BatchError> {
    match connection.apply_and_commit(batches).await {
        Ok(()) => return Ok(batches.iter().map(|_| Ok(())).collect()),
        Err(BatchError::Own(_)) => {}
        Err(other) => return Err(other),
    }
    // (When the transaction has ended already, this is a no-op with a warning.)
    connection.simple("ROLLBACK").await?;
    connection.simple("BEGIN").await?;
    let mut results = Vec::with_capacity(batches.len());
    for batch in batches {
        connection.simple("SAVEPOINT batch").await?;
        match connection.apply(batch).await {
            Ok(()) => {
                connection.simple("RELEASE SAVEPOINT batch").await?;
                results.push(Ok(()));
            }
            Err(BatchError::Own(error)) => {
                connection.simple("ROLLBACK TO SAVEPOINT batch").await?;
                connection.simple("RELEASE SAVEPOINT batch").await?;
                results.push(Err(error));
            }
            Err(other) => return Err(other),
        }
    }
    connection.simple("COMMIT").await?;
    Ok(results)
}
