//! Answers before writes. lightningd serves the descriptors that are ready
//! one after another, in an order of its own: a datastore write that
//! reaches it beside the waiters' answers (paystate's stdout) may be
//! served first, and its commit, milliseconds long, then holds the answers
//! back. After waking waiters, a notification's handler lets lightningd
//! take what paystate has written to it before making its own calls.

use std::time::Duration;
use tokio::time::Instant;

/// How long the woken handlers are given to write their answers; tokio's
/// timers count whole milliseconds.
const WRITE_TIME: Duration = Duration::from_millis(1);
/// The longest paystate holds its write back for a busy lightningd.
const MAX_WAIT: Duration = Duration::from_millis(20);

/// Bytes written to lightningd and not yet read by it, where that can be
/// known (`None`: not a pipe, or no way to ask).
pub type Unread = fn() -> Option<usize>;

/// Waits until the answers just handed out have been read by lightningd,
/// or `MAX_WAIT` has passed.
pub async fn after_answers(unread: Unread) {
    tokio::time::sleep(WRITE_TIME).await;
    let deadline = Instant::now() + MAX_WAIT;
    while unread().is_some_and(|n| n > 0) && Instant::now() < deadline {
        tokio::time::sleep(WRITE_TIME).await;
    }
}

/// What lightningd has not yet read from paystate's stdout (a pipe).
pub fn stdout_unread() -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points
    // at a live c_int; on a descriptor that does not support it the call
    // fails and writes nothing.
    let rc = unsafe { libc::ioctl(1, libc::FIONREAD, &mut n as *mut libc::c_int) };
    (rc == 0).then_some(n.max(0) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // Paused time: the timers advance only as far as the code waits.

    #[tokio::test(start_paused = true)]
    async fn waits_while_lightningd_has_not_read() {
        static CHECKS: AtomicUsize = AtomicUsize::new(0);
        // Unread at the first two checks, then drained.
        fn draining() -> Option<usize> {
            let n = CHECKS.fetch_add(1, Ordering::SeqCst);
            Some(if n < 2 { 100 } else { 0 })
        }
        let t = Instant::now();
        after_answers(draining).await;
        assert_eq!(CHECKS.load(Ordering::SeqCst), 3);
        assert_eq!(t.elapsed(), 3 * WRITE_TIME);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_on_a_lightningd_that_never_reads() {
        let t = Instant::now();
        after_answers(|| Some(1)).await;
        assert_eq!(t.elapsed(), WRITE_TIME + MAX_WAIT);
        // Nothing to ask (not a pipe): only the write time.
        let t = Instant::now();
        after_answers(|| None).await;
        assert_eq!(t.elapsed(), WRITE_TIME);
    }
}
