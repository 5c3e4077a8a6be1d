//! A small pool of spinning worker threads for the fused steps.
//!
//! A quantized ViT runs about five parallel steps per block, each a fraction of a millisecond.
//! Waking sleeping threads for each (what a general pool does once its workers go idle) costs
//! tens of microseconds per step, which ate most of the second thread's gain. These workers
//! spin briefly between steps (the next step follows within microseconds) and then sleep. A
//! step hands out its tasks through one atomic counter and the calling thread takes tasks too,
//! so a worker the OS has descheduled only delays the task it is running, never the others: a
//! worker joins a step only while the step is open, and the caller closes it once every task
//! has been taken, then waits for the workers that joined.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

thread_local! {
    /// This thread's index in its pool: 0 for the calling thread, 1.. for workers.
    static INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The calling thread's index among the threads running a step (0 outside a pool's workers),
/// so each thread uses its own scratch.
pub(crate) fn thread_index() -> usize {
    INDEX.with(|i| i.get())
}

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(500);

/// How long the caller spins for joined workers before it yields its core to them.
const WAIT_SPIN: Duration = Duration::from_micros(20);

/// The task function of the running step: `f(task)`. Stored type-erased while a step is open;
/// the caller waits for every worker that joined before its borrow ends.
type TaskFn<'a> = dyn Fn(usize) + Sync + 'a;

struct Shared {
    /// Bumped for every step (and to stop); workers wait for a change.
    epoch: AtomicU64,
    /// The open step's task function, as a raw fat pointer (see [`TaskFn`]); `None` once the
    /// step is closed.
    job: Mutex<Option<*const TaskFn<'static>>>,
    next: AtomicUsize,
    tasks: AtomicUsize,
    /// Workers inside the current step.
    busy: AtomicUsize,
    stop: AtomicBool,
    sleepers: AtomicUsize,
    wake: Condvar,
    lock: Mutex<()>,
}

// SAFETY: the raw task pointer is only dereferenced by workers that joined the step while it
// was open, and `SpinPool::run` waits for all of them before the closure's borrow ends; the
// closure is `Sync`.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

/// `threads − 1` spinning workers; the calling thread is the last one.
pub(crate) struct SpinPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SpinPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SpinPool({} threads)", self.workers.len() + 1)
    }
}

impl SpinPool {
    /// A pool that runs steps on `threads` threads (the caller plus `threads − 1` workers).
    /// `None` if a worker thread cannot be started.
    pub fn new(threads: usize) -> Option<SpinPool> {
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: Mutex::new(None),
            next: AtomicUsize::new(0),
            tasks: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            wake: Condvar::new(),
            lock: Mutex::new(()),
        });
        let mut workers = Vec::new();
        // Every worker has started before the pool is returned: a thread's start-up allocates
        // (its name, its thread-locals), and on a loaded machine a late start landed inside
        // the caller's allocation-free steady state.
        let started = Arc::new(std::sync::Barrier::new(threads.max(1)));
        for i in 1..threads.max(1) {
            let s = Arc::clone(&shared);
            let started = Arc::clone(&started);
            let w = std::thread::Builder::new()
                .name(format!("qvit-worker-{i}"))
                .spawn(move || {
                    INDEX.with(|x| x.set(i));
                    started.wait();
                    worker(&s)
                })
                .ok()?;
            workers.push(w);
        }
        started.wait();
        Some(SpinPool { shared, workers })
    }

    /// Runs `f(0..tasks)`, each task exactly once, on every thread; returns when all are done.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() || tasks <= 1 {
            (0..tasks).for_each(f);
            return;
        }
        let s = &*self.shared;
        // SAFETY: only workers that join while the step is open use the pointer, and the
        // `Close` guard below waits for them before this function returns (or unwinds).
        let erased: *const TaskFn<'static> =
            unsafe { std::mem::transmute::<*const TaskFn<'_>, *const TaskFn<'static>>(f) };
        {
            let mut job = lock(&s.job);
            s.next.store(0, Ordering::Relaxed);
            s.tasks.store(tasks, Ordering::Relaxed);
            *job = Some(erased);
        }
        s.epoch.fetch_add(1, Ordering::Release);
        if s.sleepers.load(Ordering::Acquire) > 0 {
            let _g = lock(&s.lock);
            s.wake.notify_all();
        }
        let _close = Close(s);
        take_tasks(s, f);
    }
}

/// Closes the step (no worker may join any more) and waits for the workers inside it; runs on
/// unwinding too, so a panicking task cannot leave workers with a dangling closure.
struct Close<'a>(&'a Shared);

impl Drop for Close<'_> {
    fn drop(&mut self) {
        *lock(&self.0.job) = None;
        let started = Instant::now();
        while self.0.busy.load(Ordering::Acquire) > 0 {
            if started.elapsed() < WAIT_SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

impl Drop for SpinPool {
    fn drop(&mut self) {
        let s = &*self.shared;
        s.stop.store(true, Ordering::Release);
        s.epoch.fetch_add(1, Ordering::Release);
        {
            let _g = lock(&s.lock);
            s.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A poisoned lock only means another thread panicked while holding it; the data (a pointer or
/// nothing) is still valid.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn take_tasks(s: &Shared, f: &(dyn Fn(usize) + Sync)) {
    let tasks = s.tasks.load(Ordering::Relaxed);
    loop {
        let i = s.next.fetch_add(1, Ordering::Relaxed);
        if i >= tasks {
            break;
        }
        f(i);
    }
}

fn worker(s: &Shared) {
    let mut seen = 0u64;
    loop {
        // Wait for the next step: spin a while, then sleep until woken.
        let started = Instant::now();
        let mut epoch = s.epoch.load(Ordering::Acquire);
        while epoch == seen {
            if started.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                let g = lock(&s.lock);
                s.sleepers.fetch_add(1, Ordering::AcqRel);
                // Re-check under the lock: `run` notifies while holding it.
                let g = if s.epoch.load(Ordering::Acquire) == seen {
                    s.wake.wait(g).unwrap_or_else(|e| e.into_inner())
                } else {
                    g
                };
                s.sleepers.fetch_sub(1, Ordering::AcqRel);
                drop(g);
            }
            epoch = s.epoch.load(Ordering::Acquire);
        }
        seen = epoch;
        if s.stop.load(Ordering::Acquire) {
            return;
        }
        // Join the step if it is still open.
        let job = {
            let job = lock(&s.job);
            if job.is_some() {
                s.busy.fetch_add(1, Ordering::AcqRel);
            }
            *job
        };
        if let Some(f) = job {
            // SAFETY: the step was open when this worker joined, and `Close` waits for `busy`
            // to reach zero, after this worker's last use below.
            let f = unsafe { &*f };
            let run = || take_tasks(s, f);
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
            s.busy.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
