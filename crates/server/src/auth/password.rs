//! Argon2id password hashing on a few threads of its own (hashing is deliberately slow and
//! takes about 19 MiB each time): at most [`slots`] hashes run at once, at most
//! [`MAX_QUEUED`] more wait, and password checks beyond that are refused at once. A flood of
//! sign-ins so costs neither unbounded memory nor everyone's CPU; and because the same few
//! threads always hash, the allocator keeps at most a few hashes' memory for reuse, where
//! hashes spread over the runtime's many blocking threads each left their 19 MiB behind.

use std::sync::{
    LazyLock, Mutex,
    atomic::{AtomicUsize, Ordering},
    mpsc,
};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHasher, Version, password_hash::phc::PasswordHash,
};
use mymonit_model::Redacted;

/// Password checks that may wait for a free thread; more are refused.
pub const MAX_QUEUED: usize = 32;

/// Threads that hash: the machine's cores, from 1 to 8.
pub fn slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8))
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads' queue, and how many jobs are in it or running.
struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
    admitted: AtomicUsize,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| {
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = std::sync::Arc::new(Mutex::new(receiver));
    for index in 0..slots() {
        let receiver = receiver.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("mymonit-argon2-{index}"))
            .spawn(move || {
                loop {
                    let job = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        if let Err(err) = spawned {
            tracing::error!(error = %err, "cannot start a password hashing thread");
        }
    }
    Pool {
        jobs: Mutex::new(sender),
        admitted: AtomicUsize::new(0),
    }
});

/// The server is checking as many passwords as it takes: try again in a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks in progress: try again in a second")]
pub struct Busy;

/// A job's place in the pool; freed when the job is done or dropped unrun.
struct Admission(&'static Pool);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `work` on a hashing thread; with `refuse_when_full`, `Err(Busy)` when the queue is
/// full instead of waiting in it.
async fn on_pool<T: Send + 'static>(
    refuse_when_full: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Busy> {
    let pool: &'static Pool = &POOL;
    let before = pool.admitted.fetch_add(1, Ordering::SeqCst);
    let admission = Admission(pool);
    if refuse_when_full && before >= slots() + MAX_QUEUED {
        return Err(Busy);
    }
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // Held until the work is done, even if the caller has gone.
        let _admission = admission;
        let _ = answer.send(work());
    });
    pool.jobs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(job)
        .map_err(|_| Busy)?;
    answered.await.map_err(|_| Busy)
}

/// Hashes a password into a PHC string (Argon2id, random salt, default cost), waiting in the
/// queue however long it is (only signed-in admins and the command line set passwords).
pub async fn hash(password: Redacted<String>) -> anyhow::Result<String> {
    on_pool(false, move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| anyhow::anyhow!("cannot hash password: {err}"))
    })
    .await
    .map_err(|_| anyhow::anyhow!("the password hashing threads are gone"))?
}

/// Checks a password against a PHC string. With no hash (unknown user, or an account that
/// signs in elsewhere) it checks against `decoy` and answers `false`, so both cases take the
/// same time as a wrong password. `Err(Busy)` when the gate's queue is full.
pub async fn verify(
    password: Redacted<String>,
    hash: Option<String>,
    decoy: &str,
) -> Result<bool, Busy> {
    let has_hash = hash.is_some();
    let hash = hash.unwrap_or_else(|| decoy.to_string());
    let matches = on_pool(true, move || matches(password.expose().as_bytes(), &hash)).await?;
    Ok(has_hash && matches)
}

thread_local! {
    /// Each hashing thread's Argon2 memory, kept between checks: a check allocates nothing
    /// large, so the process holds at most one hash's memory per thread.
    static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether `password` hashes to the PHC string `phc` (with the parameters it names), in
/// constant time over the hashes.
fn matches(password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let hashed = MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, &mut out, &mut memory[..blocks])
    });
    hashed.is_ok()
        && aws_lc_rs::constant_time::verify_slices_are_equal(&out, expected.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_decoys_never_match() {
        let hashed = hash("correct horse battery".into()).await.unwrap();
        assert!(hashed.starts_with("$argon2id$"));
        assert_eq!(
            verify(
                "correct horse battery".into(),
                Some(hashed.clone()),
                &hashed
            )
            .await,
            Ok(true)
        );
        assert_eq!(
            verify("wrong".into(), Some(hashed.clone()), &hashed).await,
            Ok(false)
        );
        // Even the decoy's own password does not sign in when there is no account hash.
        assert_eq!(
            verify("correct horse battery".into(), None, &hashed).await,
            Ok(false)
        );
    }
}
