//! Wall-clock deadlines for plugin calls.
//!
//! Every call into a plugin is driven as a future: the guest yields at each
//! epoch tick while it computes, and a host wait on its behalf (a sleep, a
//! clock or socket pollable, a blocking stream read) is itself a future. A
//! timer races the call; when it fires first the call's future is dropped,
//! which unwinds the guest wherever it is. Nothing the plugin does can keep
//! the caller waiting past the deadline.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

/// Drives timers and sockets for plugin calls; the calls themselves run on
/// the caller's thread.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("quire-io")
        .enable_all()
        .build()
        .expect("starting the I/O runtime")
});

/// Runs `call` to completion on this thread, or gives up after `timeout`
/// (`None`). Works from any thread, inside an async runtime or not.
pub(crate) fn within<F: Future>(timeout: Duration, call: F) -> Option<F::Output> {
    let _context = RUNTIME.enter();
    futures::executor::block_on(tokio::time::timeout(timeout, call)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_wait_is_cut_at_the_deadline() {
        let start = Instant::now();
        let out = within(Duration::from_millis(50), async {
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        assert!(out.is_none());
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_prompt_call_returns_its_value() {
        assert_eq!(within(Duration::from_secs(5), async { 7 }), Some(7));
    }

    #[test]
    fn works_inside_another_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out =
            rt.block_on(async { within(Duration::from_millis(20), std::future::pending::<()>()) });
        assert!(out.is_none());
    }
}
