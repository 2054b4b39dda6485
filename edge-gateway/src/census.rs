//! Cluster-wide user and room counts for LUSERS, refreshed in the
//! background so that no client ever waits for a count.
//!
//! Counting walks a bucket. `kv::Store::keys` is exact but can stall while
//! the bucket is being written (it waits for an entry with nothing pending,
//! which a busy bucket may not produce for seconds), so it gets a short
//! deadline; past it the stream's per-subject listing is used, which also
//! counts keys deleted recently (their delete markers) and so may be a
//! little high.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::Store;
use bus::kv::Buckets;
use futures::StreamExt;

/// Counts older than this are refreshed (in the background) when asked for.
const MAX_AGE: Duration = Duration::from_secs(5);
/// How long an exact count may take before the approximate one is used.
const EXACT_DEADLINE: Duration = Duration::from_secs(2);

/// Users and rooms in the whole cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub users: usize,
    pub rooms: usize,
}

struct Inner {
    sessions: Store,
    rooms: Store,
    snapshot: Mutex<(Option<Instant>, Counts)>,
    refreshing: AtomicBool,
}

#[derive(Clone)]
pub struct Census {
    inner: Arc<Inner>,
}

impl Census {
    pub fn new(buckets: &Buckets) -> Self {
        Self {
            inner: Arc::new(Inner {
                sessions: buckets.sessions.clone(),
                rooms: buckets.rooms.clone(),
                snapshot: Mutex::new((None, Counts::default())),
                refreshing: AtomicBool::new(false),
            }),
        }
    }

    /// The latest counts, at once; starts a refresh if they are old.
    pub fn counts(&self) -> Counts {
        let (at, counts) = *self
            .inner
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let stale = at.is_none_or(|at| at.elapsed() >= MAX_AGE);
        if stale && !self.inner.refreshing.swap(true, Ordering::SeqCst) {
            let inner = self.inner.clone();
            tokio::spawn(async move { refresh(&inner).await });
        }
        counts
    }

    /// Counts now (start-up), so the first clients see real numbers.
    pub async fn refresh_now(&self) {
        self.inner.refreshing.store(true, Ordering::SeqCst);
        refresh(&self.inner).await;
    }
}

async fn refresh(inner: &Inner) {
    let users = count(&inner.sessions).await;
    let rooms = count(&inner.rooms).await;
    {
        let mut snap = inner.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        let last = snap.1;
        *snap = (
            Some(Instant::now()),
            Counts {
                users: users.unwrap_or(last.users),
                rooms: rooms.unwrap_or(last.rooms),
            },
        );
    }
    inner.refreshing.store(false, Ordering::SeqCst);
}

/// Exact if it can be had quickly, else approximate; `None` if NATS fails.
async fn count(store: &Store) -> Option<usize> {
    let exact = async {
        let keys = store.keys().await.ok()?;
        keys.fold(Some(0usize), |n, k| async move {
            Some(n? + usize::from(k.is_ok()))
        })
        .await
    };
    if let Ok(Some(n)) = tokio::time::timeout(EXACT_DEADLINE, exact).await {
        return Some(n);
    }
    crate::registry::subject_keys(store)
        .await
        .ok()
        .map(|k| k.len())
}
