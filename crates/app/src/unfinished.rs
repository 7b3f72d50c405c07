//! Work that must finish even when whoever started it goes away: the caller's future dropped (a job
//! whose lease was lost, an HTTP client that hung up) or the instance stopping. What it does exists
//! nowhere else until it is stored (a token pair Zoom rotated to, a webhook seen but not acted on),
//! so it runs on a task of its own, and a stop waits for it ([`crate::App::finish_unfinished`]).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tracing::Instrument;

#[derive(Default)]
pub struct Unfinished {
    running: Mutex<usize>,
    done: tokio::sync::Notify,
}

/// Counts a task out when it ends, however it ends (a panic, or the runtime dropping it).
struct Running(Arc<Unfinished>);

impl Drop for Running {
    fn drop(&mut self) {
        let mut n = self.0.running.lock().unwrap_or_else(PoisonError::into_inner);
        *n -= 1;
        if *n == 0 {
            self.0.done.notify_waiters();
        }
    }
}

impl Unfinished {
    /// Runs `work` on a task of its own, in the caller's span; the caller may wait for it or not.
    pub fn spawn<F>(self: &Arc<Self>, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        let running = Running(self.clone());
        tokio::spawn(
            async move {
                let _running = running;
                work.await
            }
            .in_current_span(),
        )
    }

    /// Runs `work` as [`Unfinished::spawn`] does and waits for it: its output, or `None` when the
    /// runtime stopped it. A panic in it is the caller's.
    pub async fn run<F>(self: &Arc<Self>, work: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.spawn(work).await {
            Ok(out) => Some(out),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }

    pub fn running(&self) -> usize {
        *self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits up to `most` for every task to end: whether they did.
    pub async fn wait(&self, most: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + most;
        loop {
            let done = self.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.running() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, done).await.is_err() {
                return self.running() == 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_waits_for_work_whose_caller_went_away() {
        let u = Arc::new(Unfinished::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = u.spawn(async move {
            let _ = rx.await;
        });
        drop(handle); // the caller goes away; the work goes on
        assert_eq!(u.running(), 1);
        assert!(!u.wait(Duration::from_millis(50)).await, "still running");
        let waiting = tokio::spawn({
            let u = u.clone();
            async move { u.wait(Duration::from_secs(10)).await }
        });
        tx.send(()).unwrap();
        assert!(waiting.await.unwrap(), "done once the work ended");
        assert_eq!(u.running(), 0);
        assert!(u.wait(Duration::ZERO).await);
    }

    #[tokio::test]
    async fn a_panicking_task_is_counted_out() {
        let u = Arc::new(Unfinished::default());
        let r = u.spawn(async { panic!("boom") }).await;
        assert!(r.is_err());
        assert_eq!(u.running(), 0);
    }
}
