//! Fork-join of one image's layers over the cores: batch-of-one latency. A forward pass at batch 1
//! splits each of its ~55 layers into bands, one parallel region per layer, tens of microseconds
//! each. On rayon an idle worker soon sleeps, and each region then starts with a futex wake-up of a
//! few to tens of microseconds (on a shared 2-core VM, measured: 14% of a batch-1 profile in the
//! scheduler). Here the helper threads spin between regions and park only after [`SPIN`] without
//! work, as ONNX Runtime's pool does.
//!
//! Bands are claimed one at a time from a shared counter by the caller and the helpers alike, so a
//! helper that has not started when the caller runs out of bands does no band of the region (a helper
//! the OS deschedules in the middle of a band is waited for); what each band computes does not depend
//! on who runs it, so results are the same bits for any thread count. One caller at a time uses the
//! team; another (a concurrent test, a nested region) runs its bands on rayon instead. The team is
//! sized by the first caller's `threads`: a later caller gets at most that many threads, and helpers
//! beyond its `threads − 1` sit the region out.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock, TryLockError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long a helper spins for the next region before it parks.
const SPIN: Duration = Duration::from_millis(2);

/// A region's work: band `i` for each `i` in `0..bands`.
type Band<'a> = &'a (dyn Fn(usize) + Sync);

/// Runs `band(0..bands)` on up to `threads` threads (the caller and the team's helpers), returning
/// when every band has run. With one thread or one band it is a plain loop.
///
/// # Panics
/// When a band panics (the panic is resumed on the caller once no band is running).
pub fn fork_join(bands: usize, threads: usize, band: Band<'_>) {
    if bands <= 1 || threads <= 1 {
        (0..bands).for_each(band);
        return;
    }
    assert!((bands as u64) < CLOSED, "fork_join: {bands} bands (at most 2³² − 2)");
    let team = TEAM.get_or_init(|| Team::new(threads - 1));
    // A band that panicked poisons the lock, but leaves the team in order (see `Team::run`).
    let _one_caller = match team.lock.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => {
            use rayon::prelude::*;
            (0..bands).into_par_iter().for_each(band);
            return;
        }
    };
    team.run(bands, threads, band);
}

static TEAM: OnceLock<Team> = OnceLock::new();

/// The helpers and the state they share with the caller.
struct Team {
    shared: Arc<Shared>,
    /// The helpers that started, each with its index (its slot in [`Shared::parked`]).
    helpers: Vec<(usize, Thread)>,
    lock: Mutex<()>,
}

/// Everything a helper reads is atomic: a helper may look at a region the caller is replacing.
struct Shared {
    /// The region's number (high 32 bits) and its next unclaimed band (low 32 bits). A band is
    /// claimed by a compare-exchange of this word, so a claim is valid only for the region it read.
    word: AtomicU64,
    /// The region's work: a pointer to the caller's `Band` (which lives until the region ends).
    job: AtomicPtr<Band<'static>>,
    bands: AtomicUsize,
    /// Helpers `0..helpers` take part in the region (the caller's `threads − 1`).
    helpers: AtomicUsize,
    /// Helpers between announcing a claim and finishing its band.
    inflight: AtomicUsize,
    panicked: AtomicBool,
    parked: Vec<AtomicBool>,
}

/// Low 32 bits of [`Shared::word`] once a region is closed: no band can be claimed.
const CLOSED: u64 = u32::MAX as u64;

impl Team {
    fn new(helpers: usize) -> Self {
        let shared = Arc::new(Shared {
            word: AtomicU64::new(CLOSED),
            job: AtomicPtr::new(std::ptr::null_mut()),
            bands: AtomicUsize::new(0),
            helpers: AtomicUsize::new(0),
            inflight: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            parked: (0..helpers).map(|_| AtomicBool::new(false)).collect(),
        });
        // A helper the OS refuses to start leaves its share to the others (at worst, to the caller).
        let helpers = (0..helpers)
            .filter_map(|me| {
                let s = Arc::clone(&shared);
                thread::Builder::new().name(format!("infoloss-fj-{me}")).spawn(move || helper(&s, me)).ok().map(|h| (me, h.thread().clone()))
            })
            .collect();
        Team { shared, helpers, lock: Mutex::new(()) }
    }

    /// One region on the caller and `threads − 1` helpers, the caller holding `lock`.
    fn run(&self, bands: usize, threads: usize, band: Band<'_>) {
        let s = &*self.shared;
        let epoch = (s.word.load(SeqCst) >> 32).wrapping_add(1) & 0xffff_ffff;
        // SAFETY (of the erased lifetime): `band` outlives the region; the region is closed and no
        // helper runs a band of it when this function returns or unwinds (below).
        let job: *mut Band<'static> = &band as *const Band<'_> as *mut Band<'static>;
        s.job.store(job, SeqCst);
        s.bands.store(bands, SeqCst);
        s.helpers.store(threads - 1, SeqCst);
        s.word.store(epoch << 32, SeqCst);
        for (me, h) in self.helpers.iter().filter(|(me, _)| *me < threads - 1) {
            if s.parked[*me].load(SeqCst) {
                h.unpark();
            }
        }
        let mine = catch_unwind(AssertUnwindSafe(|| {
            while let Some(i) = s.claim(epoch) {
                band(i);
            }
        }));
        s.word.store(epoch << 32 | CLOSED, SeqCst);
        // A helper in a band finishes it; one the OS has descheduled there gets the core back sooner
        // if the caller yields after a while.
        let mut spins = 0u32;
        while s.inflight.load(SeqCst) != 0 {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(4096) {
                thread::yield_now();
            }
            std::hint::spin_loop();
        }
        // Cleared whichever panic is resumed, so it cannot surface in a later region.
        let helper_panicked = s.panicked.swap(false, SeqCst);
        if let Err(p) = mine {
            resume_unwind(p);
        }
        if helper_panicked {
            panic!("fork_join: a band panicked on a helper thread");
        }
    }
}

impl Shared {
    /// Claims the next band of region `epoch`, if it is still open and has one left.
    fn claim(&self, epoch: u64) -> Option<usize> {
        let mut w = self.word.load(SeqCst);
        loop {
            let next = w & CLOSED;
            if w >> 32 != epoch || next == CLOSED || next as usize >= self.bands.load(SeqCst) {
                return None;
            }
            match self.word.compare_exchange_weak(w, w + 1, SeqCst, SeqCst) {
                Ok(_) => return Some(next as usize),
                Err(now) => w = now,
            }
        }
    }
}

/// A helper: waits for a new region (spinning, then parked), claims and runs its bands, repeats.
fn helper(s: &Shared, me: usize) {
    let mut seen = s.word.load(SeqCst) >> 32;
    loop {
        let mut idle_since = Instant::now();
        let mut spins = 0u32;
        let epoch = loop {
            let w = s.word.load(SeqCst);
            if w >> 32 != seen && w & CLOSED != CLOSED {
                if me < s.helpers.load(SeqCst) {
                    break w >> 32;
                }
                // A region this helper sits out: still idle, so it parks in time.
                seen = w >> 32;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) && idle_since.elapsed() > SPIN {
                s.parked[me].store(true, SeqCst);
                let w = s.word.load(SeqCst);
                if !(w >> 32 != seen && w & CLOSED != CLOSED) {
                    thread::park();
                }
                s.parked[me].store(false, SeqCst);
                idle_since = Instant::now();
            }
            std::hint::spin_loop();
        };
        seen = epoch;
        loop {
            // Announce before claiming: the caller waits for `inflight` only after closing the
            // region, so a band claimed here is one the caller waits for.
            s.inflight.fetch_add(1, SeqCst);
            let Some(i) = s.claim(epoch) else {
                s.inflight.fetch_sub(1, SeqCst);
                break;
            };
            // SAFETY: the claim succeeded for region `epoch`, whose job pointer was stored before its
            // word; the caller keeps the job alive until `inflight` is zero.
            let job = unsafe { &*s.job.load(SeqCst) };
            if catch_unwind(AssertUnwindSafe(|| job(i))).is_err() {
                s.panicked.store(true, SeqCst);
            }
            s.inflight.fetch_sub(1, SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every band runs exactly once, for many regions in a row and a range of band counts: on a team
    /// of this test's own (two helpers, all taking part or one sitting out) and through `fork_join`.
    #[test]
    fn every_band_runs_exactly_once() {
        let team = Team::new(2);
        for threads in [1, 2, 3] {
            for bands in [0, 1, 2, 3, 7, 64] {
                for _ in 0..200 {
                    let hits: Vec<AtomicUsize> = (0..bands).map(|_| AtomicUsize::new(0)).collect();
                    let count = |i: usize| {
                        hits[i].fetch_add(1, SeqCst);
                    };
                    if threads == 1 {
                        fork_join(bands, 2, &count);
                    } else {
                        team.run(bands, threads, &count);
                    }
                    assert!(hits.iter().all(|h| h.load(SeqCst) == 1), "{bands} bands on {threads} threads");
                }
            }
        }
    }

    /// A band that panics on the caller or on a helper reaches the caller, the panic flag does not
    /// leak into the next region, and the team keeps working.
    #[test]
    fn a_panicking_band_reaches_the_caller_once() {
        let team = Team::new(1);
        for fail in [5usize, usize::MAX] {
            for _ in 0..20 {
                // `fail = MAX`: every band panics, on the caller and the helper alike.
                let r = catch_unwind(AssertUnwindSafe(|| team.run(8, 2, &|i| assert!(fail != usize::MAX && i != fail, "band {i} fails"))));
                assert!(r.is_err());
                let hits = AtomicUsize::new(0);
                team.run(8, 2, &|_| {
                    hits.fetch_add(1, SeqCst);
                });
                assert_eq!(hits.load(SeqCst), 8);
            }
        }
    }

    /// A helper beyond the caller's `threads − 1` parks after its spin time although regions keep
    /// coming (it sits them out), and still takes part once a caller asks for it.
    #[test]
    fn a_helper_that_sits_out_parks() {
        let team = Team::new(2);
        let start = Instant::now();
        while !team.shared.parked[1].load(SeqCst) {
            assert!(start.elapsed() < Duration::from_secs(5), "the sitting-out helper never parked");
            team.run(4, 2, &|_| {});
        }
        let hits = AtomicUsize::new(0);
        team.run(64, 3, &|_| {
            hits.fetch_add(1, SeqCst);
        });
        assert_eq!(hits.load(SeqCst), 64);
    }
}
