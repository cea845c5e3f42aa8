//! The retry schedule.

use std::time::Duration;

use regain_delivery::{backoff, backoff_ceiling, ATTEMPTS_MAX, BACKOFF_CAP};

#[test]
fn ceilings_double_from_five_seconds_up_to_an_hour() {
    let table: &[(u32, u64)] = &[
        (0, 5),
        (1, 5),
        (2, 10),
        (3, 20),
        (4, 40),
        (5, 80),
        (6, 160),
        (7, 320),
        (8, 640),
        (9, 1280),
        (10, 2560),
        (11, 3600),
        (12, 3600),
        (64, 3600),
        (u32::MAX, 3600),
    ];
    for &(attempt, seconds) in table {
        assert_eq!(backoff_ceiling(attempt), Duration::from_secs(seconds), "attempt {attempt}");
    }
    assert_eq!(ATTEMPTS_MAX, 10);
}

#[test]
fn full_jitter_spans_zero_to_the_ceiling() {
    for attempt in 1..=40 {
        let ceiling = backoff_ceiling(attempt);
        assert_eq!(backoff(attempt, 0.0), Duration::ZERO, "attempt {attempt}");
        let high = backoff(attempt, 0.999);
        assert!(high <= ceiling, "attempt {attempt}: {high:?} > {ceiling:?}");
        assert!(high >= ceiling.mul_f64(0.998), "attempt {attempt}: {high:?} too far below {ceiling:?}");
        let half = backoff(attempt, 0.5);
        assert_eq!(half, ceiling / 2, "attempt {attempt}");
    }
}

#[test]
fn delays_never_shrink_with_more_attempts_and_never_pass_the_cap() {
    for jitter in [0.0, 0.1, 0.5, 0.999] {
        let mut previous = Duration::ZERO;
        for attempt in 1..=200 {
            let delay = backoff(attempt, jitter);
            assert!(delay >= previous, "jitter {jitter}, attempt {attempt}");
            assert!(delay <= BACKOFF_CAP, "jitter {jitter}, attempt {attempt}");
            previous = delay;
        }
    }
}

#[test]
fn jitter_out_of_range_is_clamped_not_a_panic() {
    assert_eq!(backoff(3, -1.0), Duration::ZERO);
    assert_eq!(backoff(3, f64::NAN), Duration::ZERO);
    assert_eq!(backoff(3, f64::NEG_INFINITY), Duration::ZERO);
    assert_eq!(backoff(3, f64::INFINITY), Duration::ZERO);
    assert_eq!(backoff(3, 7.0), backoff_ceiling(3));
}
