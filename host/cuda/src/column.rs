//! Device columns: uploads (pageable, pinned-staged, row-packed), downloads,
//! gathers at query positions, and element-wise column operations.

use super::*;

use cudarc::driver::DevicePtr;

/// Words read at most through page-locked memory; a larger read (a whole
/// column) goes the pageable way rather than pin that much.
const PINNED_READ_WORDS: usize = 1 << 22;
/// Words a page-locked read buffer has at least (64 KiB).
const MIN_READ_WORDS: usize = 1 << 14;

/// Page-locked, cached host memory that device reads land in. A copy into
/// pageable memory goes through the driver's bounce buffers, which every
/// stream of the context shares, so the reads of several lanes wait on one
/// another; a copy into page-locked memory is a DMA of its own.
pub(crate) struct HostBuf {
    ptr: std::ptr::NonNull<u32>,
    len: usize,
    ctx: Arc<CudaContext>,
}

// SAFETY: the memory belongs to this value alone; it is plain host memory.
unsafe impl Send for HostBuf {}

impl HostBuf {
    fn new(ctx: &Arc<CudaContext>, len: usize) -> Result<HostBuf> {
        ctx.bind_to_thread()?;
        // SAFETY: a fresh allocation; flags 0 is page-locked and cached (not
        // write-combined, which the host reads slowly).
        let p = unsafe { cudarc::driver::result::malloc_host(len * 4, 0) }?;
        let ptr = std::ptr::NonNull::new(p.cast::<u32>())
            .ok_or_else(|| CudaError::Unsupported("cuMemHostAlloc returned no memory".into()))?;
        Ok(HostBuf { ptr, len, ctx: ctx.clone() })
    }

    fn words(&mut self, n: usize) -> &mut [u32] {
        // SAFETY: `len` words were allocated, and `&mut self` is the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), n.min(self.len)) }
    }
}

impl Drop for HostBuf {
    fn drop(&mut self) {
        // No copy into it is in flight: each reader synchronises its stream
        // before it lets go of the buffer.
        let _ = self.ctx.bind_to_thread();
        // SAFETY: allocated by cuMemHostAlloc in `new`, freed once, here.
        let _ = unsafe { cudarc::driver::result::free_host(self.ptr.as_ptr().cast()) };
    }
}

/// One input of [`Gpu::side_call`]: words, or device addresses.
pub(crate) enum Words<'a> {
    U32(&'a [u32]),
    U64(&'a [u64]),
}

impl Words<'_> {
    /// Its length in 32-bit words.
    fn len(&self) -> usize {
        match self {
            Words::U32(w) => w.len(),
            Words::U64(w) => 2 * w.len(),
        }
    }

    fn write(&self, out: &mut [u32]) {
        match self {
            Words::U32(w) => out.copy_from_slice(w),
            Words::U64(w) => {
                for (o, v) in out.chunks_exact_mut(2).zip(w.iter()) {
                    o[0] = *v as u32;
                    o[1] = (*v >> 32) as u32;
                }
            }
        }
    }
}

/// A launch's argument arrays in one device buffer ([`Gpu::arg_block`]).
pub(crate) struct ArgBlock {
    /// Each array's device address, in the order given.
    pub(crate) at: Vec<u64>,
    _words: Buf,
}

/// A host thread's side stream on one lane, and the page-locked buffer its
/// reads land in.
pub(crate) struct Side {
    pub(crate) stream: Arc<CudaStream>,
    reads: std::sync::Mutex<Option<HostBuf>>,
    /// The device words of [`Gpu::side_call`], grown in powers of two;
    /// locked after `reads`.
    dev: std::sync::Mutex<Option<CudaSlice<u32>>>,
}

impl Gpu {
    /// Copies `src` to the host on `stream` through the page-locked buffer
    /// `buf` (grown in powers of two) and waits for it.
    fn read_through(
        &self,
        stream: &Arc<CudaStream>,
        buf: &std::sync::Mutex<Option<HostBuf>>,
        src: &impl DevicePtr<u32>,
    ) -> Result<Vec<u32>> {
        let n = src.len();
        if n == 0 || n > PINNED_READ_WORDS {
            return Ok(stream.clone_dtoh(src)?);
        }
        let mut guard = buf.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_none_or(|b| b.len < n) {
            *guard = None;
            *guard = Some(HostBuf::new(&self.ctx, n.next_power_of_two().max(MIN_READ_WORDS))?);
        }
        let Some(host) = guard.as_mut() else { return Err(CudaError::Unsupported("no read buffer".into())) };
        self.ctx.bind_to_thread()?;
        let dst = host.words(n);
        let (ptr, _sync) = src.device_ptr(stream);
        // SAFETY: `dst` is n page-locked words that only this lock's holder
        // uses, and `src` has n words; the stream is synchronised before the
        // words are read and before the lock is let go.
        unsafe { cudarc::driver::result::memcpy_dtoh_async(&mut *dst, ptr, stream.cu_stream()) }?;
        stream.synchronize()?;
        Ok(dst.to_vec())
    }

    /// This thread's side stream on this lane (made on first use), made to
    /// wait for the work queued on the main stream so far.
    pub(crate) fn side_stream(&self) -> Result<Arc<Side>> {
        let id = std::thread::current().id();
        let mut map = self.side.lock().unwrap_or_else(|p| p.into_inner());
        let s = match map.get(&id) {
            Some(s) => s.clone(),
            None => {
                let s =
                    Arc::new(Side { stream: self.stream.fork()?, reads: Default::default(), dev: Default::default() });
                map.insert(id, s.clone());
                s
            }
        };
        drop(map);
        s.stream.join(&self.stream)?;
        Ok(s)
    }

    /// A small read on this thread's side stream in one round trip:
    /// `inputs` go up in one copy (through the side's page-locked buffer)
    /// into one device allocation that also holds `out_words` words of
    /// output; `launch` queues the kernel, given each input's device
    /// address and the output's; the output comes back in one copy. Five
    /// driver calls for what took up to nine (an allocation and a pageable
    /// copy per input), which every lane of the GPU would queue on.
    pub(crate) fn side_call(
        &self,
        inputs: &[Words<'_>],
        out_words: usize,
        launch: impl FnOnce(&Arc<CudaStream>, &[u64], u64) -> Result<()>,
    ) -> Result<Vec<u32>> {
        // Each input starts at an even word, so arrays of addresses are 8-byte aligned.
        let mut offsets = Vec::with_capacity(inputs.len());
        let mut at = 0usize;
        for i in inputs {
            offsets.push(at);
            at += i.len().next_multiple_of(2);
        }
        let (n_in, total) = (at, at + out_words.max(1));
        let side = self.side_stream()?;
        let stream = &side.stream;
        let mut guard = side.reads.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_none_or(|b| b.len < total) {
            *guard = None;
            *guard = Some(HostBuf::new(&self.ctx, total.next_power_of_two().max(MIN_READ_WORDS))?);
        }
        let Some(host) = guard.as_mut() else { return Err(CudaError::Unsupported("no read buffer".into())) };
        let words = host.words(total);
        for (i, &o) in inputs.iter().zip(&offsets) {
            i.write(&mut words[o..o + i.len()]);
        }
        let mut dev_guard = side.dev.lock().unwrap_or_else(|p| p.into_inner());
        if dev_guard.as_ref().is_none_or(|d| d.len() < total) {
            // The old words' last user was synchronised before its lock was let go.
            *dev_guard = None;
            // SAFETY: every word the kernel reads is copied in below, and it writes the output.
            *dev_guard = Some(unsafe { stream.alloc::<u32>(total.next_power_of_two().max(MIN_READ_WORDS)) }?);
        }
        let Some(dev) = dev_guard.as_ref() else { return Err(CudaError::Unsupported("no side buffer".into())) };
        let base = addr(dev, stream);
        self.ctx.bind_to_thread()?;
        if n_in > 0 {
            // SAFETY: page-locked source words that stay untouched until the stream is synchronised below.
            unsafe { cudarc::driver::result::memcpy_htod_async(base, &words[..n_in], stream.cu_stream()) }?;
        }
        let addrs: Vec<u64> = offsets.iter().map(|&o| base + 4 * o as u64).collect();
        let out = base + 4 * n_in as u64;
        launch(stream, &addrs, out)?;
        let back = &mut words[n_in..n_in + out_words];
        // SAFETY: `out` has `out_words` words in `dev`, alive until after the synchronisation.
        unsafe { cudarc::driver::result::memcpy_dtoh_async(&mut *back, out, stream.cu_stream()) }?;
        // The words stay for the next call, which cannot start before this
        // synchronisation: both locks are held until then.
        stream.synchronize()?;
        Ok(back.to_vec())
    }

    /// A launch's argument arrays (column addresses, parameters) uploaded in
    /// one copy instead of one each: a small upload is a driver call that
    /// every lane of the GPU queues on. Each array starts at an even word
    /// (so arrays of addresses are 8-byte aligned); an empty one still gets
    /// a word, so its kernel gets a valid pointer.
    pub(crate) fn arg_block(&self, parts: &[Words<'_>]) -> Result<ArgBlock> {
        let mut words = Vec::with_capacity(parts.iter().map(|p| p.len().max(1).next_multiple_of(2)).sum());
        let mut offsets = Vec::with_capacity(parts.len());
        for p in parts {
            offsets.push(words.len());
            let at = words.len();
            words.resize(at + p.len().max(1).next_multiple_of(2), 0);
            p.write(&mut words[at..at + p.len()]);
        }
        let buf = self.pool.htod(&words)?;
        let base = addr(&buf, &self.stream);
        Ok(ArgBlock { at: offsets.iter().map(|&o| base + 4 * o as u64).collect(), _words: buf })
    }

    /// The device addresses of `cols`, on the host.
    pub fn addrs<'a, C: DevicePtr<u32> + 'a>(&self, cols: impl IntoIterator<Item = &'a C>) -> Vec<u64> {
        cols.into_iter().map(|c| addr(c, &self.stream)).collect()
    }

    /// Reads `src` (a column or part of one) on the main stream, through
    /// the lane's page-locked read buffer.
    pub fn read(&self, src: &impl DevicePtr<u32>) -> Result<Vec<u32>> {
        self.read_through(&self.stream, &self.reads, src)
    }

    pub fn upload(&self, values: &[u32]) -> Result<Buf> {
        self.pool.htod(values)
    }

    /// The pinned staging buffer, locked, holding at least `want` words (up
    /// to [`STAGING_WORDS`]): allocated on first use and grown when a larger
    /// upload comes, in powers of two from [`MIN_STAGING_WORDS`]. Pinning
    /// costs time in proportion to the size (31 ms for the full 128 MiB on an
    /// H100), which a small job should not pay. Its users synchronise the
    /// stream before writing it, since the previous user's transfers may
    /// still be reading it.
    fn staging(&self, want: usize) -> Result<std::sync::MutexGuard<'_, Option<cudarc::driver::PinnedHostSlice<u32>>>> {
        let mut guard = self.staging.lock().unwrap_or_else(|p| p.into_inner());
        let want = want.next_power_of_two().clamp(MIN_STAGING_WORDS, STAGING_WORDS);
        if guard.as_ref().is_none_or(|b| b.len() < want) {
            // The old buffer may still feed queued transfers.
            self.stream.synchronize()?;
            *guard = None;
            let _s = tracing::debug_span!("cuda pinned staging alloc", words = want).entered();
            // SAFETY: the buffer is read only by copies its users issue after writing it.
            *guard = Some(unsafe { self.ctx.alloc_pinned::<u32>(want) }?);
        }
        Ok(guard)
    }

    /// Uploads many columns through a pinned staging buffer: a group of
    /// columns is copied into it on all host threads, then transferred by
    /// DMA at full PCIe speed (a pageable copy goes through the driver's
    /// bounce buffer at a fraction of it). Columns larger than the buffer go
    /// the ordinary way.
    pub fn upload_many(&self, cols: &[&[u32]]) -> Result<Vec<Buf>> {
        use rayon::prelude::*;
        let total: usize = cols.iter().map(|c| c.len()).filter(|&n| n <= STAGING_WORDS).sum();
        let mut guard = self.staging(total)?;
        let Some(staging) = guard.as_mut() else { return Err(CudaError::Unsupported("no staging buffer".into())) };
        let cap = staging.len();
        let mut out = Vec::with_capacity(cols.len());
        let mut i = 0;
        while i < cols.len() {
            if cols[i].len() > cap {
                out.push(self.upload(cols[i])?);
                i += 1;
                continue;
            }
            let (mut j, mut words) = (i, 0);
            while j < cols.len() && words + cols[j].len() <= cap {
                words += cols[j].len();
                j += 1;
            }
            // The previous group's transfers read the buffer until they finish.
            self.stream.synchronize()?;
            let host = staging.as_mut_slice()?;
            let mut parts = Vec::with_capacity(j - i);
            let mut rest = &mut host[..words];
            for c in &cols[i..j] {
                let (head, tail) = rest.split_at_mut(c.len());
                parts.push(head);
                rest = tail;
            }
            parts.par_iter_mut().zip(&cols[i..j]).for_each(|(dst, src)| dst.copy_from_slice(src));
            let host: &[u32] = &staging.as_slice()?[..words];
            let mut at = 0;
            for c in &cols[i..j] {
                // SAFETY: every word of the allocation is written by the copy below.
                let mut dst = unsafe { self.alloc::<u32>(c.len().max(1)) }?;
                self.stream.memcpy_htod(&host[at..at + c.len()], &mut *dst)?;
                at += c.len();
                out.push(dst);
            }
            i = j;
        }
        self.stream.synchronize()?;
        Ok(out)
    }

    /// Uploads `n_rows` rows of `row_words` words that `fill(first_row,
    /// out)` writes straight into the pinned staging buffer (on all host
    /// threads, a block of rows per call), so the rows never exist anywhere
    /// else on the host. The buffer's two halves take turns, a group of
    /// rows at a time: the host fills one while the other's transfer runs.
    /// Returns once the last transfer is queued.
    pub fn upload_rows(&self, n_rows: usize, row_words: usize, fill: impl Fn(usize, &mut [u32]) + Sync) -> Result<Buf> {
        use rayon::prelude::*;
        const ROWS_PER_TASK: usize = 1 << 12;
        // Words a group holds at most: small enough for the first transfer
        // to start early, large enough that a transfer is not all latency.
        const GROUP_WORDS: usize = 1 << 20;
        if row_words == 0 || 2 * row_words > STAGING_WORDS {
            return Err(CudaError::Unsupported(format!("upload_rows: rows of {row_words} words")));
        }
        // SAFETY: every word is written by the copies below.
        let mut dst = unsafe { self.alloc::<u32>((n_rows * row_words).max(1)) }?;
        let mut guard = self.staging(2 * (n_rows * row_words).min(GROUP_WORDS.max(row_words)))?;
        let Some(staging) = guard.as_mut() else { return Err(CudaError::Unsupported("no staging buffer".into())) };
        let half = staging.len() / 2;
        let group = (half.min(GROUP_WORDS) / row_words).max(1);
        // The previous user's transfers may still read the buffer.
        self.stream.synchronize()?;
        let host = staging.as_mut_slice()?;
        let (mut first, mut turn) = (0, 0usize);
        let mut pending: [Option<cudarc::driver::CudaEvent>; 2] = [None, None];
        while first < n_rows {
            let rows = group.min(n_rows - first);
            let words = rows * row_words;
            let slot = turn % 2;
            // This half's last transfer reads it until it finishes.
            if let Some(done) = pending[slot].take() {
                done.synchronize()?;
            }
            let part = &mut host[slot * half..slot * half + words];
            part.par_chunks_mut(ROWS_PER_TASK * row_words)
                .enumerate()
                .for_each(|(t, out)| fill(first + t * ROWS_PER_TASK, out));
            let mut view = dst.slice_mut(first * row_words..first * row_words + words);
            self.stream.memcpy_htod(&*part, &mut view)?;
            pending[slot] = Some(self.stream.record_event(None)?);
            first += rows;
            turn += 1;
        }
        // The next user of the staging buffer synchronises before writing it.
        Ok(dst)
    }

    pub fn download(&self, values: &impl DevicePtr<u32>) -> Result<Vec<u32>> {
        self.read(values)
    }

    /// The values at `positions` of a column of `words`-word values, in
    /// order (one kernel, one small copy).
    pub fn gather(&self, col: &CudaSlice<u32>, words: u32, positions: &[u32]) -> Result<Vec<u32>> {
        let n = positions.len() as u32;
        if n == 0 {
            return Ok(Vec::new());
        }
        let pos = self.upload(positions)?;
        // SAFETY: the kernel writes every output word.
        let mut out = unsafe { self.alloc::<u32>((n * words) as usize) }?;
        let mut l = self.stream.launch_builder(self.k(Kernel::GatherWords));
        l.arg(col).arg(&*pos).arg(&n).arg(&words).arg(&mut *out);
        // SAFETY: the caller's positions are below the column's length; one thread per output word.
        unsafe { l.launch(launch_1d((n * words) as u64)) }?;
        self.download(&*out)
    }

    /// [`Gpu::gather`] of every column in `cols` (device addresses of
    /// columns of `words`-word values) at the same positions: one launch and
    /// one read-back. Returns each column's words, in position order.
    pub fn gather_many(&self, cols: &[u64], words: u32, positions: &[u32]) -> Result<Vec<Vec<u32>>> {
        let (n, n_cols) = (positions.len() as u32, cols.len() as u32);
        if n == 0 || n_cols == 0 {
            return Ok(vec![Vec::new(); cols.len()]);
        }
        let total = n as u64 * words as u64 * n_cols as u64;
        let w = self.side_call(&[Words::U64(cols), Words::U32(positions)], total as usize, |stream, at, out| {
            let mut b = stream.launch_builder(self.k(Kernel::GatherMany));
            b.arg(&at[0]).arg(&n_cols).arg(&at[1]).arg(&n).arg(&words).arg(&out);
            // SAFETY: positions are below every column's length (the caller's plan); one thread per word.
            unsafe { b.launch(launch_1d(total)) }?;
            Ok(())
        })?;
        Ok(w.chunks((n * words) as usize).map(<[u32]>::to_vec).collect())
    }

    /// [`Gpu::gather`] of several columns (device addresses) of `words`-word
    /// values, each at its own positions: one launch and one read-back.
    /// Returns each column's words, in its positions' order.
    pub fn gather_lists(&self, cols: &[(u64, &[u32])], words: u32) -> Result<Vec<Vec<u32>>> {
        let ptrs: Vec<u64> = cols.iter().map(|c| c.0).collect();
        let mut offs = Vec::with_capacity(cols.len() + 1);
        offs.push(0u32);
        let mut pos = Vec::new();
        for (_, p) in cols {
            pos.extend_from_slice(p);
            offs.push(pos.len() as u32);
        }
        if pos.is_empty() {
            return Ok(vec![Vec::new(); cols.len()]);
        }
        let total = pos.len() as u64 * words as u64;
        let n_cols = cols.len() as u32;
        let inputs = [Words::U64(&ptrs), Words::U32(&offs), Words::U32(&pos)];
        let w = self.side_call(&inputs, total as usize, |stream, at, out| {
            let mut b = stream.launch_builder(self.k(Kernel::GatherLists));
            b.arg(&at[0]).arg(&at[1]).arg(&n_cols).arg(&at[2]).arg(&words).arg(&out);
            // SAFETY: each column's positions are below its length (the caller's plan); one thread per word.
            unsafe { b.launch(launch_1d(total)) }?;
            Ok(())
        })?;
        Ok(offs.windows(2).map(|o| w[(o[0] * words) as usize..(o[1] * words) as usize].to_vec()).collect())
    }

    /// `a[i] += b[i]` over M31 words.
    pub fn add_into(&self, a: &mut CudaSlice<u32>, b: &CudaSlice<u32>) -> Result<()> {
        let n = a.len().min(b.len()) as u64;
        let mut l = self.stream.launch_builder(self.k(Kernel::M31AddInto));
        l.arg(a).arg(b).arg(&n);
        // SAFETY: one thread per word below the shorter length.
        unsafe { l.launch(launch_1d(n)) }?;
        Ok(())
    }

    /// In-place bit-reversal permutation of a column of 2^log_n words.
    pub fn bit_reverse(&self, a: &mut CudaSlice<u32>, log_n: u32) -> Result<()> {
        let mut l = self.stream.launch_builder(self.k(Kernel::BitReverseM31));
        l.arg(a).arg(&log_n);
        // SAFETY: threads swap pairs (i, rev(i)) with i < rev(i), all below 2^log_n.
        unsafe { l.launch(launch_1d(1u64 << log_n)) }?;
        Ok(())
    }
}
