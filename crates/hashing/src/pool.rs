//! The bounded worker pool that runs Argon2.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::thread;

use argon2::{Algorithm, Argon2, Block, Version};
use rand::rngs::OsRng;
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;
use tokio::sync::oneshot;
use zeroize::{Zeroize as _, Zeroizing};

use crate::params::OUTPUT_LEN;
use crate::phc::{self, ParsedHash};
use crate::{HashError, Params, PoolConfig};

/// Length of the random salt of every new hash, in bytes.
const SALT_LEN: usize = 16;

/// Fixed salt of the dummy hash. Not secret: the dummy only burns time.
const DUMMY_SALT: [u8; SALT_LEN] = *b"regain-dummy-slt";

/// What a worker should do with a password.
pub(crate) enum JobKind {
    Hash { reply: oneshot::Sender<Result<String, HashError>> },
    Verify { parsed: ParsedHash, reply: oneshot::Sender<Result<bool, HashError>> },
}

/// One queued job. The password copy is wiped when the job is dropped,
/// whether it ran, was refused by a full queue, or was abandoned.
pub(crate) struct Job {
    password: Zeroizing<Vec<u8>>,
    kind: JobKind,
}

/// Shared state behind every handle; dropping the last one drops the sender,
/// which makes the workers' `recv` fail so they exit.
struct Inner {
    sender: SyncSender<Job>,
    params: Params,
    workers: usize,
    /// A PHC string with the pool's params, salt [`DUMMY_SALT`] and an
    /// all-zero hash, verified by [`HashingPool::verify_dummy`].
    dummy_phc: String,
    /// Lets tests observe that the workers have exited.
    #[cfg(test)]
    receiver: std::sync::Weak<Mutex<Receiver<Job>>>,
}

/// A cheap-to-clone handle to a fixed set of Argon2 worker threads.
///
/// Hashing runs on these threads, never on the async runtime, and each
/// thread reuses one memory buffer, so memory is bounded by
/// `workers × m_kib` and a full queue fails fast with
/// [`HashError::Overloaded`].
#[derive(Clone)]
pub struct HashingPool {
    inner: Arc<Inner>,
}

impl fmt::Debug for HashingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashingPool")
            .field("workers", &self.inner.workers)
            .field("params", &self.inner.params)
            .finish_non_exhaustive()
    }
}

impl HashingPool {
    /// Validates `config` and spawns `workers` threads named `argon2-N`, each
    /// owning a buffer sized for `params.m_kib`, so the memory cost is paid
    /// once per worker rather than once per request.
    pub fn start(config: PoolConfig) -> Result<Self, HashError> {
        let config = config.validate()?;
        let params = config.params;
        let block_count = params.to_argon2()?.block_count();
        let (sender, receiver) = mpsc::sync_channel::<Job>(config.queue_max);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..config.workers {
            let receiver = Arc::clone(&receiver);
            thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || worker_loop(&receiver, params, block_count))
                .map_err(|e| HashError::Internal(format!("spawning hashing worker: {e}")))?;
        }
        let dummy_phc = phc::encode(params, &DUMMY_SALT, &[0u8; OUTPUT_LEN]);
        Ok(Self {
            inner: Arc::new(Inner {
                sender,
                params,
                workers: config.workers,
                dummy_phc,
                #[cfg(test)]
                receiver: Arc::downgrade(&receiver),
            }),
        })
    }

    /// The parameters new hashes get, so callers can tell whether a stored
    /// hash is weaker and should be re-hashed on login.
    pub fn params(&self) -> Params {
        self.inner.params
    }

    /// The number of worker threads, for metrics and capacity planning.
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// Hashes `password` with a fresh 16-byte OS-random salt and returns the
    /// PHC string to store. Fails fast with [`HashError::Overloaded`] when
    /// the queue is full.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let (reply, answer) = oneshot::channel();
        self.submit(password, JobKind::Hash { reply })?;
        answer.await.map_err(|_| lost_job())?
    }

    /// Checks `password` against a stored PHC string (argon2id, argon2i or
    /// argon2d, with whatever parameters it was made with) and compares in
    /// constant time. A wrong password is `Ok(false)`; a malformed or
    /// unsupported string is [`HashError::InvalidHash`].
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, HashError> {
        let parsed = phc::parse(phc)?;
        let (reply, answer) = oneshot::channel();
        self.submit(password, JobKind::Verify { parsed, reply })?;
        answer.await.map_err(|_| lost_job())?
    }

    /// Does the same work as a real [`verify`](Self::verify) against a hash
    /// with the pool's params, and throws the answer away. Used for unknown
    /// usernames so they take as long as known ones and cannot be told apart
    /// by timing.
    pub async fn verify_dummy(&self, password: &str) -> Result<(), HashError> {
        self.verify(password, &self.inner.dummy_phc).await.map(|_| ())
    }

    /// The raw primitive: Argon2id v0x13 with `params` into a 32-byte `out`,
    /// using `memory` as working memory (grown if too small, never shrunk).
    /// Checks only argon2's own limits, not the policy floor, so benchmarks
    /// can use it as the baseline. Blocks the calling thread.
    pub fn hash_blocking_raw(
        params: Params,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8; 32],
        memory: &mut Vec<argon2::Block>,
    ) -> Result<(), HashError> {
        let argon2_params = params.to_argon2()?;
        let needed = argon2_params.block_count();
        if memory.len() < needed {
            memory.resize(needed, Block::default());
        }
        Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params)
            .hash_password_into_with_memory(password, salt, out, &mut memory[..needed])
            .map_err(|e| HashError::InvalidParams(e.to_string()))
    }

    /// Queues a job without waiting: a full queue is `Overloaded`, and a
    /// queue with no workers left is `Shutdown`.
    fn submit(&self, password: &str, kind: JobKind) -> Result<(), HashError> {
        let job = Job { password: Zeroizing::new(password.as_bytes().to_vec()), kind };
        match self.inner.sender.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(HashError::Overloaded),
            Err(TrySendError::Disconnected(_)) => Err(HashError::Shutdown),
        }
    }

    /// A weak reference to the job receiver, which is freed once every
    /// worker has exited.
    #[cfg(test)]
    pub(crate) fn receiver_probe(&self) -> std::sync::Weak<Mutex<Receiver<Job>>> {
        self.inner.receiver.clone()
    }

    /// The dummy PHC string, so tests can check it uses the pool's params.
    #[cfg(test)]
    pub(crate) fn dummy_phc(&self) -> &str {
        &self.inner.dummy_phc
    }
}

/// The error for a job whose worker dropped it without answering.
fn lost_job() -> HashError {
    HashError::Internal("hashing worker dropped the job".to_owned())
}

/// Body of each worker thread: take jobs until every sender is gone.
fn worker_loop(receiver: &Mutex<Receiver<Job>>, params: Params, block_count: usize) {
    let mut memory = vec![Block::default(); block_count];
    let mut used = false;
    while let Some(job) = next_job(receiver, &mut memory, &mut used) {
        // Keep the worker alive even if a job panics; the caller then sees
        // its reply channel close and gets `Internal`.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| run_job(job, params, &mut memory)));
    }
}

/// The worker's next job, or `None` once every sender is gone. `used` says whether `memory`
/// holds a finished job's blocks: they are wiped as soon as no job is waiting, so an idle
/// buffer never holds password-derived state, while a job already waiting overwrites them
/// instead, which spares a second pass over the buffer under load.
fn next_job(receiver: &Mutex<Receiver<Job>>, memory: &mut [Block], used: &mut bool) -> Option<Job> {
    // A lock held by another worker means it is waiting for a job: none is queued.
    let waiting = match receiver.try_lock() {
        Ok(guard) => guard.try_recv(),
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().try_recv(),
        Err(TryLockError::WouldBlock) => Err(TryRecvError::Empty),
    };
    let job = match waiting {
        Ok(job) => Some(job),
        Err(TryRecvError::Empty) => {
            if std::mem::take(used) {
                wipe(memory);
            }
            receiver.lock().unwrap_or_else(PoisonError::into_inner).recv().ok()
        }
        Err(TryRecvError::Disconnected) => None,
    };
    if job.is_none() && std::mem::take(used) {
        wipe(memory);
    }
    *used = job.is_some();
    job
}

/// Runs one job and answers it; skips jobs whose caller has gone away.
fn run_job(job: Job, params: Params, memory: &mut Vec<Block>) {
    match job.kind {
        JobKind::Hash { reply } => {
            if reply.is_closed() {
                return;
            }
            let result = hash_job(params, &job.password, memory);
            let _ = reply.send(result);
        }
        JobKind::Verify { parsed, reply } => {
            if reply.is_closed() {
                return;
            }
            let result = verify_job(&parsed, &job.password, memory);
            let _ = reply.send(result);
        }
    }
}

/// Hashes with a fresh salt in the worker's buffer (through the same
/// primitive benchmarks measure) and encodes the PHC string.
fn hash_job(params: Params, password: &[u8], memory: &mut Vec<Block>) -> Result<String, HashError> {
    let mut salt = [0u8; SALT_LEN];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| HashError::Internal(format!("OS random number generator failed: {e}")))?;
    let mut out = Zeroizing::new([0u8; OUTPUT_LEN]);
    HashingPool::hash_blocking_raw(params, password, &salt, &mut out, memory)?;
    Ok(phc::encode(params, &salt, &out[..]))
}

/// Recomputes a stored hash with its own algorithm, version and params, in
/// the worker's buffer or, if that is too small, a temporary one.
fn verify_job(parsed: &ParsedHash, password: &[u8], memory: &mut [Block]) -> Result<bool, HashError> {
    let needed = parsed.params.block_count();
    let argon2 = Argon2::new(parsed.algorithm, parsed.version, parsed.params.clone());
    let mut out = Zeroizing::new(vec![0u8; parsed.expected.len()]);
    let result = if needed <= memory.len() {
        argon2.hash_password_into_with_memory(password, &parsed.salt, &mut out, &mut memory[..needed])
    } else {
        let mut temporary = vec![Block::default(); needed];
        let result = argon2.hash_password_into_with_memory(password, &parsed.salt, &mut out, &mut temporary);
        wipe(&mut temporary);
        result
    };
    result.map_err(|_| HashError::InvalidHash)?;
    Ok(bool::from(out.as_slice().ct_eq(&parsed.expected)))
}

/// Clears password-derived Argon2 state so it does not linger in a
/// long-lived buffer (with t=1 the leftover memory would let a guess be
/// checked cheaply). Block-by-block through argon2's own optimised
/// `Zeroize`, which costs about 4% of a hash: the worker runs it when it
/// goes idle, not between two jobs back to back.
fn wipe(blocks: &mut [Block]) {
    for block in blocks {
        block.zeroize();
    }
}

#[cfg(test)]
mod wiping {
    use super::*;

    fn job() -> Job {
        let (reply, _) = oneshot::channel();
        Job { password: Zeroizing::new(b"secret".to_vec()), kind: JobKind::Hash { reply } }
    }

    fn dirty() -> Vec<Block> {
        let mut block = Block::default();
        block.as_mut()[0] = 0xdead_beef;
        vec![block; 4]
    }

    fn is_wiped(memory: &[Block]) -> bool {
        memory.iter().all(|b| b.as_ref().iter().all(|&word| word == 0))
    }

    #[test]
    fn a_waiting_job_overwrites_the_last_ones_blocks_instead_of_a_wipe() {
        let (sender, receiver) = mpsc::sync_channel(4);
        let receiver = Mutex::new(receiver);
        sender.send(job()).unwrap();
        let (mut memory, mut used) = (dirty(), true);
        assert!(next_job(&receiver, &mut memory, &mut used).is_some());
        assert!(!is_wiped(&memory), "busy: the next hash overwrites the buffer");
        assert!(used);
    }

    #[test]
    fn an_idle_worker_wipes_its_buffer_before_it_waits() {
        let (sender, receiver) = mpsc::sync_channel(4);
        let receiver = Mutex::new(receiver);
        let (mut memory, mut used) = (dirty(), true);
        let late = thread::spawn(move || {
            thread::sleep(std::time::Duration::from_millis(50));
            sender.send(job()).unwrap();
        });
        assert!(next_job(&receiver, &mut memory, &mut used).is_some());
        assert!(is_wiped(&memory), "the buffer was wiped while the worker waited");
        late.join().unwrap();
    }

    #[test]
    fn a_worker_that_stops_leaves_its_buffer_wiped() {
        let (sender, receiver) = mpsc::sync_channel::<Job>(4);
        let receiver = Mutex::new(receiver);
        drop(sender);
        let (mut memory, mut used) = (dirty(), true);
        assert!(next_job(&receiver, &mut memory, &mut used).is_none());
        assert!(is_wiped(&memory));
        assert!(!used);
    }
}
