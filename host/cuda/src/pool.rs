//! A lane's cache of device allocations ([`Pool`]) and the buffers it
//! hands out ([`Buf`]).
//!
//! A small proof allocates and frees about 900 device buffers, and each
//! `cuMemAllocAsync` and `cuMemFreeAsync` is a driver call that every
//! stream of the GPU queues on: 1.3 µs alone, up to 10 µs with four lanes
//! proving (CUPTI traces in `host/benches/RESULTS.md`). Proofs of one shape
//! ask for the same sizes every time, so a freed buffer is kept here by its
//! size and handed to the next request of that size without a driver call.
//!
//! Reuse is safe because of stream order: every buffer of a lane is used
//! on the lane's stream (side-stream reads finish before they return), so
//! work queued after a buffer is handed out again runs after all the work
//! queued while it was in use, as with `cuMemFreeAsync` itself.
//!
//! What a lane keeps is capped; past the cap the buffers freed longest ago
//! go back to the driver first ([`Free`]), so a node whose jobs change
//! shape keeps the sizes it uses now rather than those it used first.

use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{
    CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DeviceRepr, DeviceSlice, LaunchArgs, PushKernelArg, SyncOnDrop,
    ValidAsZeroBits,
};

use crate::Result;

/// Freed buffers of one lane, by size in bytes, up to `cap` bytes in all.
pub struct Pool {
    stream: Arc<CudaStream>,
    cap: usize,
    free: Mutex<Free>,
}

/// Sizes whose lists [`Free`] holds, emptied or not, before it first drops
/// the emptied ones.
const SIZES_KEPT: usize = 256;

/// The buffers a pool keeps, by size, and in the order they were freed.
#[derive(Debug, Default)]
struct Free {
    /// Size in bytes -> (when freed, address), oldest first. A size's list
    /// stays when it empties (a proof frees and takes the same sizes over
    /// and over); the emptied ones go when the map reaches `prune_at`.
    by_bytes: FxHashMap<usize, std::collections::VecDeque<(u64, CUdeviceptr)>>,
    /// Twice the lists the last pruning left: the map is pruned again at this
    /// many lists or [`SIZES_KEPT`], whichever is more, so a pruning costs at
    /// most a step for each list added since the last.
    prune_at: usize,
    /// When freed -> size, for eviction oldest first.
    by_age: BTreeMap<u64, usize>,
    bytes: usize,
    clock: u64,
}

impl Free {
    /// The most recently freed buffer of `bytes` bytes, if one is kept.
    fn take(&mut self, bytes: usize) -> Option<CUdeviceptr> {
        let (when, p) = self.by_bytes.get_mut(&bytes)?.pop_back()?;
        self.by_age.remove(&when);
        self.bytes -= bytes;
        Some(p)
    }

    /// Keeps `p` (`bytes` bytes) under `cap` bytes in all, letting go of
    /// the buffers freed longest ago to make room. Returns what the caller
    /// must free: the evicted buffers, or `p` itself if it alone is over
    /// the cap.
    fn keep(&mut self, bytes: usize, p: CUdeviceptr, cap: usize) -> Vec<CUdeviceptr> {
        if bytes > cap {
            return vec![p];
        }
        let mut out = Vec::new();
        while self.bytes + bytes > cap {
            let Some((_, size)) = self.by_age.pop_first() else { break };
            let list = self.by_bytes.get_mut(&size);
            if let Some((_, old)) = list.and_then(|l| l.pop_front()) {
                out.push(old);
                self.bytes -= size;
            }
        }
        if self.by_bytes.len() >= self.prune_at.max(SIZES_KEPT) && !self.by_bytes.contains_key(&bytes) {
            self.by_bytes.retain(|_, l| !l.is_empty());
            self.prune_at = 2 * self.by_bytes.len();
        }
        self.clock += 1;
        self.by_age.insert(self.clock, bytes);
        self.by_bytes.entry(bytes).or_default().push_back((self.clock, p));
        self.bytes += bytes;
        out
    }

    /// Every kept buffer, and nothing kept.
    fn drain(&mut self) -> Vec<CUdeviceptr> {
        self.by_age.clear();
        self.bytes = 0;
        self.by_bytes.drain().flat_map(|(_, l)| l.into_iter().map(|(_, p)| p)).collect()
    }
}

/// A device buffer from a [`Pool`]: a [`CudaSlice`] that goes back to the
/// pool when dropped instead of to the driver.
pub struct Buf<T: DeviceRepr = u32> {
    slice: ManuallyDrop<CudaSlice<T>>,
    pool: Arc<Pool>,
}

impl Pool {
    /// A pool for buffers used on `stream`, keeping at most `cap` bytes.
    pub fn new(stream: Arc<CudaStream>, cap: usize) -> Arc<Pool> {
        Arc::new(Pool { stream, cap, free: Mutex::default() })
    }

    /// The cap for a lane of a device with `total` bytes of memory:
    /// `BITSAGE_CUDA_CACHE_BYTES` if set (0 turns the cache off), else a
    /// sixteenth of the device.
    pub fn default_cap(total: usize) -> usize {
        std::env::var("BITSAGE_CUDA_CACHE_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(total / 16)
    }

    /// Bytes held for reuse now.
    pub fn cached_bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Free> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `len` values of `T`, contents unspecified: a kept buffer of that size
    /// if there is one, else a new allocation (after giving every kept
    /// buffer back to the driver, if the device is out of memory).
    ///
    /// # Safety
    /// The caller writes the buffer before reading it.
    pub unsafe fn alloc<T: DeviceRepr>(self: &Arc<Self>, len: usize) -> Result<Buf<T>> {
        let bytes = len * std::mem::size_of::<T>();
        let kept = self.lock().take(bytes);
        let slice = match kept {
            // SAFETY: a live allocation of `bytes` bytes on this pool's stream, owned by nobody else.
            Some(p) => unsafe { self.stream.upgrade_device_ptr::<T>(p, len) },
            // SAFETY: the caller writes before reading.
            None => match unsafe { self.stream.alloc::<T>(len) } {
                Ok(s) => s,
                Err(e) if e.0 == cudarc::driver::sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY => {
                    self.release();
                    // SAFETY: as above.
                    unsafe { self.stream.alloc::<T>(len) }?
                }
                Err(e) => return Err(e.into()),
            },
        };
        Ok(Buf { slice: ManuallyDrop::new(slice), pool: self.clone() })
    }

    /// `len` zeros of `T`.
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(self: &Arc<Self>, len: usize) -> Result<Buf<T>> {
        // SAFETY: zeroed before anyone reads it.
        let mut b = unsafe { self.alloc::<T>(len) }?;
        self.stream.memset_zeros(&mut *b)?;
        Ok(b)
    }

    /// A device copy of `values`.
    pub fn htod<T: DeviceRepr>(self: &Arc<Self>, values: &[T]) -> Result<Buf<T>> {
        // SAFETY: every value is written by the copy.
        let mut b = unsafe { self.alloc::<T>(values.len()) }?;
        self.stream.memcpy_htod(values, &mut *b)?;
        Ok(b)
    }

    /// A device copy of `src`.
    pub fn dtod<T: DeviceRepr, S: DevicePtr<T>>(self: &Arc<Self>, src: &S) -> Result<Buf<T>> {
        // SAFETY: every value is written by the copy.
        let mut b = unsafe { self.alloc::<T>(src.len()) }?;
        self.stream.memcpy_dtod(src, &mut *b)?;
        Ok(b)
    }

    /// Gives every kept buffer back to the driver, in stream order.
    pub fn release(&self) {
        let drained = self.lock().drain();
        self.free_all(drained);
    }

    /// Frees buffers the pool owned alone, in stream order.
    fn free_all(&self, ptrs: Vec<CUdeviceptr>) {
        for p in ptrs {
            // SAFETY: a live allocation owned by the pool alone; dropping the slice frees it on the stream.
            drop(unsafe { self.stream.upgrade_device_ptr::<u8>(p, 0) });
        }
    }

    /// Takes `slice` back for reuse (letting go of the buffers freed
    /// longest ago if the pool would pass its cap), or frees it when it
    /// belongs to another stream.
    fn put<T: DeviceRepr>(&self, slice: CudaSlice<T>) {
        let bytes = slice.len() * std::mem::size_of::<T>();
        if bytes == 0 || !Arc::ptr_eq(slice.stream(), &self.stream) {
            return drop(slice);
        }
        let p = slice.leak();
        let evicted = self.lock().keep(bytes, p, self.cap);
        self.free_all(evicted);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.release();
    }
}

impl<T: DeviceRepr> Buf<T> {
    /// The buffer as a plain slice, no longer returned to the pool.
    pub fn into_slice(mut self) -> CudaSlice<T> {
        // SAFETY: `slice` is taken once, and `self` is forgotten so `Drop` does not see it.
        let s = unsafe { ManuallyDrop::take(&mut self.slice) };
        // The pool's reference goes with the forgotten value's fields.
        // SAFETY: `pool` is read once and `self` is never used again.
        drop(unsafe { std::ptr::read(&self.pool) });
        std::mem::forget(self);
        s
    }
}

impl<T: DeviceRepr> Drop for Buf<T> {
    fn drop(&mut self) {
        // SAFETY: taken once, here; the field is not used again.
        let s = unsafe { ManuallyDrop::take(&mut self.slice) };
        self.pool.put(s);
    }
}

impl<T: DeviceRepr> Deref for Buf<T> {
    type Target = CudaSlice<T>;
    fn deref(&self) -> &CudaSlice<T> {
        &self.slice
    }
}

impl<T: DeviceRepr> DerefMut for Buf<T> {
    fn deref_mut(&mut self) -> &mut CudaSlice<T> {
        &mut self.slice
    }
}

impl<T: DeviceRepr> DeviceSlice<T> for Buf<T> {
    fn len(&self) -> usize {
        self.slice.len()
    }
    fn stream(&self) -> &Arc<CudaStream> {
        self.slice.stream()
    }
}

impl<T: DeviceRepr> DevicePtr<T> for Buf<T> {
    fn device_ptr<'a>(&'a self, stream: &'a CudaStream) -> (CUdeviceptr, SyncOnDrop<'a>) {
        self.slice.device_ptr(stream)
    }
}

impl<T: DeviceRepr> DevicePtrMut<T> for Buf<T> {
    fn device_ptr_mut<'a>(&'a mut self, stream: &'a CudaStream) -> (CUdeviceptr, SyncOnDrop<'a>) {
        self.slice.device_ptr_mut(stream)
    }
}

// SAFETY: both push what cudarc's impls for the slice push: the address of
// the slice's device pointer, which lives as long as the borrow of the `Buf`.
unsafe impl<'a, 'b: 'a, T: DeviceRepr> PushKernelArg<&'b Buf<T>> for LaunchArgs<'a> {
    #[inline(always)]
    fn arg(&mut self, arg: &'b Buf<T>) -> &mut Self {
        self.arg(&*arg.slice)
    }
}

// SAFETY: as above.
unsafe impl<'a, 'b: 'a, T: DeviceRepr> PushKernelArg<&'b mut Buf<T>> for LaunchArgs<'a> {
    #[inline(always)]
    fn arg(&mut self, arg: &'b mut Buf<T>) -> &mut Self {
        self.arg(&mut *arg.slice)
    }
}

impl<T: DeviceRepr> std::fmt::Debug for Buf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buf<{}>[{}]", std::any::type_name::<T>(), self.slice.len())
    }
}

#[cfg(test)]
mod tests {
    use super::{Free, SIZES_KEPT};

    #[test]
    fn a_size_gets_back_its_most_recently_freed_buffer_and_no_other_size_does() {
        let mut f = Free::default();
        assert!(f.keep(64, 1, 1000).is_empty());
        assert!(f.keep(64, 2, 1000).is_empty());
        assert!(f.keep(32, 3, 1000).is_empty());
        assert_eq!(f.take(64), Some(2));
        assert_eq!(f.take(48), None);
        assert_eq!(f.take(64), Some(1));
        assert_eq!(f.take(64), None);
        assert_eq!(f.bytes, 32);
    }

    #[test]
    fn past_the_cap_the_buffers_freed_longest_ago_go_first() {
        let mut f = Free::default();
        assert!(f.keep(400, 1, 1000).is_empty());
        assert!(f.keep(300, 2, 1000).is_empty());
        assert!(f.keep(200, 3, 1000).is_empty());
        // 900 kept; 300 more: the oldest (400) goes, then there is room.
        assert_eq!(f.keep(300, 4, 1000), vec![1]);
        assert_eq!(f.bytes, 800);
        // Taking one makes it young again when it comes back.
        assert_eq!(f.take(300), Some(4));
        assert!(f.keep(300, 4, 1000).is_empty());
        // 600 more: 2 (300) and 3 (200) go, in that order; 4 stays.
        assert_eq!(f.keep(600, 5, 1000), vec![2, 3]);
        assert_eq!((f.take(300), f.take(600), f.bytes), (Some(4), Some(5), 0));
        assert!(f.by_age.is_empty() && f.by_bytes.values().all(|l| l.is_empty()));
    }

    /// Emptied lists stay for reuse, but a process that frees ever new
    /// sizes does not keep a list for each: past `SIZES_KEPT` sizes the
    /// empty ones go, and what is kept is still found.
    #[test]
    fn emptied_size_lists_are_bounded() {
        let mut f = Free::default();
        for size in 1..=4 * SIZES_KEPT {
            assert!(f.keep(size, size as u64, usize::MAX).is_empty());
            if size % 2 == 0 {
                assert_eq!(f.take(size), Some(size as u64));
            }
        }
        // Without pruning, half of the 4 * SIZES_KEPT lists would be empty.
        assert!(f.by_bytes.values().filter(|l| l.is_empty()).count() < 2 * SIZES_KEPT);
        assert_eq!(f.by_bytes.values().map(|l| l.len()).sum::<usize>(), 2 * SIZES_KEPT);
        for size in (1..=4 * SIZES_KEPT).step_by(2) {
            assert_eq!(f.take(size), Some(size as u64), "size {size}");
        }
        assert_eq!((f.bytes, f.by_age.len()), (0, 0));
    }

    /// Many sizes held at once (none emptied) are not scanned on every new
    /// size: after a pruning that dropped nothing, the next one waits until
    /// the map has doubled.
    #[test]
    fn pruning_waits_for_the_map_to_double() {
        let mut f = Free::default();
        for size in 1..=SIZES_KEPT + 1 {
            assert!(f.keep(size, size as u64, usize::MAX).is_empty());
        }
        assert_eq!(f.prune_at, 2 * SIZES_KEPT);
        for size in SIZES_KEPT + 2..=2 * SIZES_KEPT {
            assert!(f.keep(size, size as u64, usize::MAX).is_empty());
            assert_eq!(f.prune_at, 2 * SIZES_KEPT, "pruned again at {size} sizes");
        }
    }

    #[test]
    fn a_buffer_over_the_cap_is_not_kept_and_drain_gives_everything_back() {
        let mut f = Free::default();
        assert!(f.keep(100, 1, 150).is_empty());
        assert_eq!(f.keep(151, 2, 150), vec![2]);
        assert_eq!(f.bytes, 100);
        assert!(f.keep(100, 3, 150) == vec![1]);
        let mut all = f.drain();
        all.sort_unstable();
        assert_eq!(all, vec![3]);
        assert_eq!((f.bytes, f.take(100)), (0, None));
        // A cap of 0 keeps nothing.
        assert_eq!(f.keep(8, 4, 0), vec![4]);
    }
}
