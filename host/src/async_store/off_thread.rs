//! Running blocking work on a thread of its own and awaiting it from any
//! executor (the answer comes back through a oneshot channel, which every
//! executor can poll).

use futures::channel::oneshot;

/// Runs `work` on a new thread; the future resolves with its result. If the
/// future is dropped, the work still runs to its end.
pub fn off_thread<T, F>(work: F) -> impl Future<Output = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (done, answer) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("quire-blocking".into())
        .spawn(move || {
            let _ = done.send(work());
        });
    async move {
        if let Err(e) = spawned {
            panic!("quire could not start a thread for blocking work: {e}");
        }
        match answer.await {
            Ok(value) => value,
            // The work panicked: carry the panic to the awaiting task.
            Err(oneshot::Canceled) => panic!("quire's blocking work panicked"),
        }
    }
}
