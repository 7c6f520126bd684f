//! Handles: opaque pointers that are never dereferenced. Each value is a key
//! into a table of live objects; keys come from one process-wide counter and
//! are never reused, so a freed handle, a handle of another kind or NULL is
//! always recognised, without reading freed memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::status::{CallError, TesseraStatus};

/// The next key; shared by every table so keys of different kinds never meet.
static NEXT_KEY: AtomicUsize = AtomicUsize::new(1);

/// The live objects of one handle kind `T`, shared (`Arc`) so a call holds its
/// object even if another thread frees the handle meanwhile.
pub(crate) struct Table<T> {
    kind: &'static str,
    live: Mutex<Option<HashMap<usize, Arc<T>>>>,
}

impl<T> Table<T> {
    pub const fn new(kind: &'static str) -> Self {
        Self {
            kind,
            live: Mutex::new(None),
        }
    }

    /// Stores `value` and returns its new key (never 0, never reused).
    pub fn insert(&self, value: T) -> usize {
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .get_or_insert_with(HashMap::new)
            .insert(key, Arc::new(value));
        key
    }

    /// The object of the handle `handle` (whatever its C type: its value is
    /// the key).
    pub fn get<H>(&self, handle: *const H) -> Result<Arc<T>, CallError> {
        let key = handle.addr();
        if key == 0 {
            return Err(self.null());
        }
        self.lock()
            .as_ref()
            .and_then(|m| m.get(&key))
            .cloned()
            .ok_or_else(|| self.not_live(key))
    }

    /// Frees the handle `handle`: NULL does nothing, a handle that is not
    /// live is an error, and a live one's object is dropped when the last
    /// call using it ends.
    pub fn free<H>(&self, handle: *const H) -> Result<(), CallError> {
        if handle.is_null() {
            return Ok(());
        }
        let key = handle.addr();
        let removed = {
            let mut live = self.lock();
            let removed = live.as_mut().and_then(|m| m.remove(&key));
            // An empty table frees its storage, so a program that freed every
            // handle holds no Tessera memory at exit (leak checkers see none).
            if live.as_ref().is_some_and(HashMap::is_empty) {
                *live = None;
            }
            removed
        };
        // Dropped outside the lock: dropping may wait for worker threads.
        match removed {
            Some(object) => {
                drop(object);
                Ok(())
            }
            None => Err(self.not_live(key)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<HashMap<usize, Arc<T>>>> {
        // The table holds no invariant a panic could break half-way.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn null(&self) -> CallError {
        CallError::new(
            TesseraStatus::NullPointer,
            format!("the {} handle is NULL", self.kind),
        )
    }

    fn not_live(&self, key: usize) -> CallError {
        CallError::new(
            TesseraStatus::InvalidHandle,
            format!(
                "{key:#x} is not a live {} handle (already freed, of another kind, or never created)",
                self.kind
            ),
        )
    }
}
