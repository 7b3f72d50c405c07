//! A reader-writer lock for a value read on every call by threads on every core and written rarely
//! (the routing snapshot): each reading thread takes a lock of its own stripe, on its own cache
//! line, so readers on different cores share no cache line; the one writer takes every stripe.
//! (A single `RwLock`'s reader count is one cache line every reader writes: with the redirect
//! server and the lookup API on several cores it bounces between them on every call.)

use std::cell::{Cell, UnsafeCell};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Stripes: more than the cores a routing instance is given, so threads seldom share one.
const STRIPES: usize = 64;

/// One stripe's lock, alone on its cache line (128 bytes: adjacent-line prefetch pairs lines).
#[repr(align(128))]
#[derive(Default)]
struct Stripe(RwLock<()>);

pub struct Striped<T> {
    stripes: Box<[Stripe]>,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is reached only through the guards below: shared (`&T`) while one stripe is held
// for reading, exclusive (`&mut T`) while every stripe is held for writing, and a stripe cannot be
// held for reading and writing at once. So this is as thread-safe as `RwLock<T>`, which is `Sync`
// for `T: Send + Sync`.
unsafe impl<T: Send + Sync> Sync for Striped<T> {}
// SAFETY: moving it moves the value, as for `RwLock<T>`.
unsafe impl<T: Send> Send for Striped<T> {}

impl<T: Default> Default for Striped<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

thread_local! {
    /// This thread's stripe, handed out round-robin on its first read.
    static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn my_stripe() -> usize {
    MINE.with(|m| {
        if m.get() == usize::MAX {
            m.set(NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES);
        }
        m.get()
    })
}

impl<T> Striped<T> {
    pub fn new(value: T) -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
            value: UnsafeCell::new(value),
        }
    }

    /// Shared access, holding this thread's stripe. A panic while a guard was held does not make
    /// the value unusable (as `RwLock`'s poisoning would): readers never change it, and the writer
    /// leaves it whole between its steps.
    pub fn read(&self) -> ReadGuard<'_, T> {
        let lock = self.stripes[my_stripe()].0.read().unwrap_or_else(|e| e.into_inner());
        // SAFETY: a stripe held for reading excludes the writer (see the `Sync` impl).
        ReadGuard { _lock: lock, value: unsafe { &*self.value.get() } }
    }

    /// Shared access if no writer holds the value now (and none is waiting for this stripe).
    pub fn try_read(&self) -> Option<ReadGuard<'_, T>> {
        let lock = match self.stripes[my_stripe()].0.try_read() {
            Ok(l) => l,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        // SAFETY: as in `read`.
        Some(ReadGuard { _lock: lock, value: unsafe { &*self.value.get() } })
    }

    /// Exclusive access, holding every stripe (always in the same order, so writers cannot
    /// deadlock each other).
    pub fn write(&self) -> WriteGuard<'_, T> {
        let locks: Vec<_> =
            self.stripes.iter().map(|s| s.0.write().unwrap_or_else(|e| e.into_inner())).collect();
        // SAFETY: every stripe held for writing excludes every reader and other writer.
        WriteGuard { _locks: locks, value: unsafe { &mut *self.value.get() } }
    }
}

pub struct ReadGuard<'a, T> {
    _lock: RwLockReadGuard<'a, ()>,
    value: &'a T,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

pub struct WriteGuard<'a, T> {
    _locks: Vec<RwLockWriteGuard<'a, ()>>,
    value: &'a mut T,
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Readers on many threads never see a half-made write: the writer keeps two fields equal,
    /// changing them one after the other while it holds the lock.
    #[test]
    fn readers_never_see_a_write_half_done() {
        let s = Arc::new(Striped::new((0u64, 0u64)));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let (s, stop) = (s.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut seen = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let g = s.read();
                        assert_eq!(g.0, g.1);
                        seen = seen.max(g.0);
                    }
                    seen
                })
            })
            .collect();
        for i in 1..=20_000u64 {
            let mut g = s.write();
            g.0 = i;
            std::hint::black_box(&mut *g);
            g.1 = i;
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() <= 20_000);
        }
        assert_eq!(*s.read(), (20_000, 20_000));
    }
}
