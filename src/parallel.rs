//! Running parallel work from a thread of the rayon pool. A parallel loop started from outside the
//! pool (the CLI's main thread, a Python caller) hands its work to the pool and puts the caller to
//! sleep until it is done: one wake-up and one sleep per loop, which at tens of loops per training
//! step or per image at batch 1 cost a tenth of the time. Started from a worker, the same loops are
//! joins between spinning workers.

/// Runs `f` on a thread of the current rayon pool (directly when already on one) and returns its
/// result.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}
