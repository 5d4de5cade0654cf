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

use std::collections::HashMap;
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

#[derive(Default)]
struct Free {
    by_bytes: HashMap<usize, Vec<CUdeviceptr>>,
    bytes: usize,
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
        let kept = {
            let mut free = self.lock();
            let p = free.by_bytes.get_mut(&bytes).and_then(Vec::pop);
            if p.is_some() {
                free.bytes -= bytes;
            }
            p
        };
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
        let drained: Vec<(usize, Vec<_>)> = {
            let mut free = self.lock();
            free.bytes = 0;
            free.by_bytes.drain().collect()
        };
        for (_, ptrs) in drained {
            for p in ptrs {
                // SAFETY: a live allocation owned by the pool alone; dropping the slice frees it on the stream.
                drop(unsafe { self.stream.upgrade_device_ptr::<u8>(p, 0) });
            }
        }
    }

    /// Takes `slice` back for reuse, or frees it when it belongs to another
    /// stream or would take the pool past its cap.
    fn put<T: DeviceRepr>(&self, slice: CudaSlice<T>) {
        let bytes = slice.len() * std::mem::size_of::<T>();
        if bytes == 0 || !Arc::ptr_eq(slice.stream(), &self.stream) {
            return drop(slice);
        }
        let mut free = self.lock();
        if free.bytes + bytes > self.cap {
            drop(free);
            return drop(slice);
        }
        free.bytes += bytes;
        free.by_bytes.entry(bytes).or_default().push(slice.leak());
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
