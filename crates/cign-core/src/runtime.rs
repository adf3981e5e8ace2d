//! Process-wide settings that make libtorch's CPU work faster.
//!
//! libtorch's CPU allocator takes every tensor from the C library's `malloc`. With glibc's
//! defaults, blocks above the (dynamic) mmap threshold are mapped and unmapped on every
//! allocation and the heap top is trimmed whenever it is freed, so a training step that
//! allocates and frees hundreds of megabytes of activations pays a page fault for every page it
//! touches, again and again (system time was 40% of a small filter model's step here). Raising
//! the mmap and trim thresholds keeps freed memory in the heap for reuse. The cost is memory:
//! the process keeps its peak heap size instead of returning it to the system.

/// What [`tune_malloc`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MallocTuning {
    /// glibc accepted the new thresholds.
    Applied,
    /// glibc refused them, or the environment opted out with `CIGN_DEFAULT_MALLOC=1` (the
    /// process keeps the defaults either way).
    Refused,
    /// Not a glibc target: nothing to do.
    Unsupported,
}

/// The mmap and trim thresholds set by [`tune_malloc`]: 1 GiB.
pub const MALLOC_THRESHOLD_BYTES: i32 = 1 << 30;

/// Keeps freed tensor memory in the heap (glibc `mallopt` of `M_MMAP_THRESHOLD` and
/// `M_TRIM_THRESHOLD`). Call it once at the start of a program, before big allocations; the
/// binaries of this workspace do, unless the environment sets `CIGN_DEFAULT_MALLOC=1`.
pub fn tune_malloc() -> MallocTuning {
    if std::env::var_os("CIGN_DEFAULT_MALLOC").is_some_and(|v| v == "1") {
        return MallocTuning::Refused;
    }
    apply()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> MallocTuning {
    // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
    let ok = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MALLOC_THRESHOLD_BYTES) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, MALLOC_THRESHOLD_BYTES) == 1
    };
    if ok {
        MallocTuning::Applied
    } else {
        MallocTuning::Refused
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> MallocTuning {
    MallocTuning::Unsupported
}
