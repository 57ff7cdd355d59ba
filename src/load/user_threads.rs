//! The threads the virtual users run on: one single-threaded tokio runtime per core,
//! each on a thread of its own, with the connections dealt out between them in turn.
//!
//! Why not the command's multi-threaded runtime: at one frame per connection per
//! second every frame is its own wake-up, and on a work-stealing runtime a wake-up
//! found by one worker's poll of the sockets is often run by another (an idle worker
//! is unparked to steal it), so a frame costs a futex wake and a cross-core hand-off
//! besides its own work. A user thread's tasks are woken and run by the thread that polled
//! their sockets, many per `epoll_wait`, with nothing to steal. The run's collector,
//! ramp and progress stay on the command's runtime; only the users move.

use std::future::Future;
use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The running user threads. Dropping them stops every one (their remaining tasks are
/// dropped with their runtimes) without waiting for the threads.
pub(crate) struct UserThreads {
    handles: Vec<Handle>,
    joins: Vec<JoinHandle<()>>,
    stop: CancellationToken,
}

impl UserThreads {
    /// Starts `count` user threads (at least one).
    pub(crate) fn start(count: usize) -> std::io::Result<UserThreads> {
        let stop = CancellationToken::new();
        let mut threads = UserThreads {
            handles: Vec::new(),
            joins: Vec::new(),
            stop: stop.clone(),
        };
        for n in 0..count.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            threads.handles.push(runtime.handle().clone());
            let stop = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("load-users-{n}"))
                .spawn(move || runtime.block_on(stop.cancelled()))?;
            threads.joins.push(thread);
        }
        Ok(threads)
    }

    /// [`UserThreads::start`], or, when the threads cannot be had, the runtime this is
    /// called on as the one thread (said in the log: the run goes on, less efficiently).
    pub(crate) fn start_or_current(count: usize) -> UserThreads {
        UserThreads::start(count).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "no threads for the users; they share the command's runtime");
            UserThreads {
                handles: vec![Handle::current()],
                joins: Vec::new(),
                stop: CancellationToken::new(),
            }
        })
    }

    /// How many user threads there are.
    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    /// A handle that spawns on user thread `index` (modulo the count).
    pub(crate) fn handle(&self, index: usize) -> UserThread {
        UserThread(self.handles[index % self.handles.len()].clone())
    }

    /// Stops every user thread and waits for their threads to end (their runtimes drop any
    /// task still there).
    pub(crate) async fn finish(mut self) {
        self.stop.cancel();
        let joins = std::mem::take(&mut self.joins);
        let _ = tokio::task::spawn_blocking(move || {
            for thread in joins {
                let _ = thread.join();
            }
        })
        .await;
    }
}

impl Drop for UserThreads {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Spawns onto one user thread.
#[derive(Clone)]
pub(crate) struct UserThread(Handle);

impl UserThread {
    /// Runs `task` on this thread, owned by `tracker`.
    pub(crate) fn spawn<F>(&self, tracker: &TaskTracker, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tracker.spawn_on(task, &self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn tasks_are_dealt_out_to_the_threads_in_turn() {
        let threads = UserThreads::start(2).unwrap();
        let tracker = TaskTracker::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..8 {
            let seen = seen.clone();
            threads.handle(i).spawn(&tracker, async move {
                let name = std::thread::current().name().map(str::to_owned);
                seen.lock().unwrap().push((i, name));
            });
        }
        tracker.close();
        tracker.wait().await;
        let seen = seen.lock().unwrap().clone();
        for (i, name) in &seen {
            assert_eq!(
                name.as_deref(),
                Some(format!("load-users-{}", i % 2).as_str())
            );
        }
        let names: HashSet<_> = seen.iter().map(|(_, n)| n.clone()).collect();
        assert_eq!(names.len(), 2);
        threads.finish().await;
    }

    #[tokio::test]
    async fn finishing_drops_what_is_still_running_and_ends_the_threads() {
        let threads = UserThreads::start(1).unwrap();
        let tracker = TaskTracker::new();
        let (_keep, never) = tokio::sync::oneshot::channel::<()>();
        threads.handle(0).spawn(&tracker, async move {
            let _ = never.await;
        });
        tracker.close();
        let deadline = std::time::Duration::from_secs(10);
        tokio::time::timeout(deadline, threads.finish())
            .await
            .expect("the threads end");
        // The stuck task was dropped with its runtime, so the tracker is done.
        tokio::time::timeout(deadline, tracker.wait())
            .await
            .expect("the task was dropped");
    }
}
