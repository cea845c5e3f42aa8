//! Tests for the hashing pool. Each uses the real (floor) parameters unless
//! it says otherwise.

// Tests may unwrap: a panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, PasswordHash, Version};
use rand::rngs::OsRng;
use tokio::task::JoinSet;

use crate::{HashError, HashingPool, Params, PoolConfig};

fn pool(workers: usize, queue_max: usize) -> HashingPool {
    HashingPool::start(PoolConfig { workers, queue_max, params: Params::default() }).unwrap()
}

fn decimal(hash: &PasswordHash<'_>, name: &str) -> u32 {
    hash.params.get_decimal(name).unwrap()
}

fn is_standard_b64_no_pad(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[tokio::test]
async fn hash_is_argon2id_phc_with_policy_params_and_unique_salt() {
    let pool = pool(2, 8);
    let first = pool.hash("correct horse battery staple").await.unwrap();
    let second = pool.hash("correct horse battery staple").await.unwrap();

    for phc in [&first, &second] {
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let parts: Vec<&str> = phc.split('$').collect();
        assert_eq!(parts.len(), 6, "{phc}");
        assert_eq!(parts[4].len(), 22, "16-byte salt is 22 unpadded chars");
        assert_eq!(parts[5].len(), 43, "32-byte hash is 43 unpadded chars");
        assert!(is_standard_b64_no_pad(parts[4]) && is_standard_b64_no_pad(parts[5]));

        let parsed = PasswordHash::new(phc).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(parsed.version, Some(19));
        assert_eq!(decimal(&parsed, "m"), 19_456);
        assert_eq!(decimal(&parsed, "t"), 2);
        assert_eq!(decimal(&parsed, "p"), 1);
        let mut buf = [0u8; 64];
        assert_eq!(parsed.salt.unwrap().decode_b64(&mut buf).unwrap().len(), 16);
        assert_eq!(parsed.hash.unwrap().len(), 32);
    }

    assert_ne!(first, second, "same password must get a fresh salt");
    let salt = |phc: &str| phc.split('$').nth(4).unwrap().to_owned();
    assert_ne!(salt(&first), salt(&second));
}

#[tokio::test]
async fn pool_and_argon2_crate_verify_each_other() {
    let pool = pool(2, 8);

    let ours = pool.hash("tr0ub4dor&3").await.unwrap();
    let parsed = PasswordHash::new(&ours).unwrap();
    assert!(Argon2::default().verify_password(b"tr0ub4dor&3", &parsed).is_ok());
    assert!(Argon2::default().verify_password(b"tr0ub4dor&4", &parsed).is_err());
    assert!(pool.verify("tr0ub4dor&3", &ours).await.unwrap());
    assert!(!pool.verify("tr0ub4dor&4", &ours).await.unwrap());

    let salt = SaltString::generate(&mut OsRng);
    let theirs = Argon2::default().hash_password(b"battery staple", &salt).unwrap().to_string();
    assert!(pool.verify("battery staple", &theirs).await.unwrap());
    assert!(!pool.verify("battery stapler", &theirs).await.unwrap());
    assert!(!pool.verify("", &theirs).await.unwrap());
}

#[tokio::test]
async fn malformed_phc_is_invalid_hash() {
    let pool = pool(1, 4);
    let good = pool.hash("pw").await.unwrap();
    assert!(pool.verify("pw", &good).await.unwrap(), "control case");

    let hash = good.split('$').nth(5).unwrap().to_owned();
    let cases = [
        String::new(),
        "plaintext-password".to_owned(),
        "$argon2id$v=19$m=19456,t=2,p=1$".to_owned(),
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA".to_owned(),
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".to_owned(),
        "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E".to_owned(),
        format!("$argon2id$v=99$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA${hash}"),
        format!("$argon2id$v=19$m=19456,t=2,p=1,x=3$c29tZXNhbHRzb21lc2FsdA${hash}"),
        format!("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA==${hash}"),
        format!("$argon2id$v=19$m=19456,t=2,p=1$YWJjZA${hash}"),
        format!("$argon2id$v=19$m=5000000,t=2,p=1$c29tZXNhbHRzb21lc2FsdA${hash}"),
        format!("$argon2id$v=19$m=19456,t=101,p=1$c29tZXNhbHRzb21lc2FsdA${hash}"),
        format!("$argon2id$v=19$m=19456,t=2,p=17$c29tZXNhbHRzb21lc2FsdA${hash}"),
        good.replace("$argon2id$", "$argon2x$"),
        good[..good.len() - 1].to_owned() + "!",
    ];
    for case in &cases {
        let result = pool.verify("pw", case).await;
        assert!(matches!(result, Err(HashError::InvalidHash)), "{case:?} gave {result:?}");
    }
}

#[tokio::test]
async fn params_outside_floor_or_ceiling_are_invalid() {
    let floor = Params::default();
    assert_eq!(floor.validate().unwrap(), floor);
    let strong = Params { m_kib: 65_536, t: 3, p: 4 };
    assert_eq!(strong.validate().unwrap(), strong);

    let bad = [
        Params { m_kib: 19_455, ..floor },
        Params { t: 1, ..floor },
        Params { p: 0, ..floor },
        Params { m_kib: 4 * 1024 * 1024 + 1, ..floor },
        Params { t: 101, ..floor },
        Params { p: 17, ..floor },
    ];
    for params in bad {
        assert!(matches!(params.validate(), Err(HashError::InvalidParams(_))), "{params:?}");
        let started = HashingPool::start(PoolConfig { workers: 1, queue_max: 1, params });
        assert!(matches!(started, Err(HashError::InvalidParams(_))), "{params:?}");
    }

    for (workers, queue_max) in [(0, 1), (1, 0)] {
        let started = HashingPool::start(PoolConfig { workers, queue_max, params: floor });
        assert!(matches!(started, Err(HashError::InvalidParams(_))));
    }
}

#[test]
fn default_pool_config_follows_core_count() {
    let config = PoolConfig::default();
    assert!(config.workers >= 1);
    assert_eq!(config.queue_max, 64 * config.workers);
    assert_eq!(config.params, Params::default());
    assert_eq!(Params::default(), Params { m_kib: 19_456, t: 2, p: 1 });
}

#[tokio::test]
async fn full_queue_is_overloaded_and_accepted_jobs_succeed() {
    let pool = pool(1, 1);
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let pool = pool.clone();
        tasks.spawn(async move { pool.hash(&format!("password-{i}")).await });
    }
    let (mut accepted, mut overloaded) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            Ok(phc) => {
                assert!(PasswordHash::new(&phc).is_ok());
                accepted += 1;
            }
            Err(HashError::Overloaded) => overloaded += 1,
            Err(other) => unreachable!("unexpected error {other:?}"),
        }
    }
    assert!(overloaded >= 1, "a 1-slot queue must refuse some of 20 jobs");
    assert!(accepted >= 1, "the first job must be accepted");
    assert_eq!(accepted + overloaded, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_verifies_get_right_answers() {
    let pool = pool(2, 16);
    let alpha = pool.hash("alpha").await.unwrap();
    let beta = pool.hash("beta").await.unwrap();

    let mut tasks = JoinSet::new();
    for i in 0..8usize {
        let pool = pool.clone();
        let (phc, password, expected) = match i % 4 {
            0 => (alpha.clone(), "alpha", true),
            1 => (alpha.clone(), "beta", false),
            2 => (beta.clone(), "beta", true),
            _ => (beta.clone(), "alpha", false),
        };
        tasks.spawn(async move { (i, expected, pool.verify(password, &phc).await) });
    }
    let mut seen = 0;
    while let Some(joined) = tasks.join_next().await {
        let (i, expected, result) = joined.unwrap();
        assert_eq!(result.unwrap(), expected, "verify #{i}");
        seen += 1;
    }
    assert_eq!(seen, 8);
}

#[test]
fn raw_primitive_matches_argon2_crate_and_reuses_memory() {
    let params = Params::default();
    let salt = *b"0123456789abcdef";
    let mut memory = Vec::new();
    let mut out = [0u8; 32];
    HashingPool::hash_blocking_raw(params, b"hunter2", &salt, &mut out, &mut memory).unwrap();
    assert_eq!(memory.len(), 19_456, "memory grows to m blocks");

    let mut expected = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2::Params::new(19_456, 2, 1, Some(32)).unwrap())
        .hash_password_into(b"hunter2", &salt, &mut expected)
        .unwrap();
    assert_eq!(out, expected);

    let mut again = [0u8; 32];
    HashingPool::hash_blocking_raw(params, b"hunter2", &salt, &mut again, &mut memory).unwrap();
    assert_eq!(again, expected, "a reused buffer gives the same result");
    assert_eq!(memory.len(), 19_456);
}

#[tokio::test]
async fn verify_accepts_other_variants_and_params() {
    let pool = pool(2, 8);
    let cases = [
        // Older, weaker params (below today's floor) must still verify.
        (Algorithm::Argon2i, 8_192, 1, 1),
        (Algorithm::Argon2d, 19_456, 2, 2),
        // Larger than the worker buffer: runs in a temporary buffer.
        (Algorithm::Argon2id, 32_768, 1, 1),
    ];
    for (algorithm, m, t, p) in cases {
        let argon2 = Argon2::new(algorithm, Version::V0x13, argon2::Params::new(m, t, p, None).unwrap());
        let salt = SaltString::generate(&mut OsRng);
        let phc = argon2.hash_password(b"s3cret", &salt).unwrap().to_string();
        assert!(pool.verify("s3cret", &phc).await.unwrap(), "{phc}");
        assert!(!pool.verify("s3cret!", &phc).await.unwrap(), "{phc}");
    }
}

#[tokio::test]
async fn dummy_verify_uses_the_pools_params() {
    let params = Params { m_kib: 20_480, t: 3, p: 1 };
    let pool = HashingPool::start(PoolConfig { workers: 1, queue_max: 4, params }).unwrap();
    assert_eq!(pool.params(), params);
    assert_eq!(pool.workers(), 1);

    let dummy = PasswordHash::new(pool.dummy_phc()).unwrap();
    assert_eq!(dummy.algorithm.as_str(), "argon2id");
    assert_eq!(decimal(&dummy, "m"), 20_480);
    assert_eq!(decimal(&dummy, "t"), 3);
    assert_eq!(decimal(&dummy, "p"), 1);
    assert_eq!(dummy.hash.unwrap().len(), 32);
    assert!(!pool.verify("anything", pool.dummy_phc()).await.unwrap());
    pool.verify_dummy("anything").await.unwrap();

    let real = pool.hash("pw").await.unwrap();
    assert!(real.starts_with("$argon2id$v=19$m=20480,t=3,p=1$"), "{real}");
}

#[tokio::test]
async fn workers_exit_when_last_handle_is_dropped() {
    let pool = pool(2, 4);
    let clone = pool.clone();
    let probe = pool.receiver_probe();
    drop(pool);
    assert!(clone.verify_dummy("pw").await.is_ok(), "a clone keeps it alive");
    assert!(probe.upgrade().is_some());

    drop(clone);
    let deadline = Instant::now() + Duration::from_secs(10);
    while probe.upgrade().is_some() {
        assert!(Instant::now() < deadline, "workers did not exit");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
