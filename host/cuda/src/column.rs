//! Device columns: uploads (pageable, pinned-staged, row-packed), downloads,
//! gathers at query positions, and element-wise column operations.

use super::*;

impl Gpu {
    pub fn upload(&self, values: &[u32]) -> Result<CudaSlice<u32>> {
        Ok(self.stream.clone_htod(values)?)
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
    pub fn upload_many(&self, cols: &[&[u32]]) -> Result<Vec<CudaSlice<u32>>> {
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
                let mut dst = unsafe { self.stream.alloc::<u32>(c.len().max(1)) }?;
                self.stream.memcpy_htod(&host[at..at + c.len()], &mut dst)?;
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
    /// else on the host. Returns once the last transfer is queued.
    pub fn upload_rows(
        &self,
        n_rows: usize,
        row_words: usize,
        fill: impl Fn(usize, &mut [u32]) + Sync,
    ) -> Result<CudaSlice<u32>> {
        use rayon::prelude::*;
        const ROWS_PER_TASK: usize = 1 << 12;
        if row_words == 0 || row_words > STAGING_WORDS {
            return Err(CudaError::Unsupported(format!("upload_rows: rows of {row_words} words")));
        }
        // SAFETY: every word is written by the copies below.
        let mut dst = unsafe { self.stream.alloc::<u32>((n_rows * row_words).max(1)) }?;
        let mut guard = self.staging(n_rows * row_words)?;
        let Some(staging) = guard.as_mut() else { return Err(CudaError::Unsupported("no staging buffer".into())) };
        let group = (staging.len() / row_words).max(1);
        let mut first = 0;
        while first < n_rows {
            let rows = group.min(n_rows - first);
            let words = rows * row_words;
            // The previous group's transfer reads the buffer until it finishes.
            self.stream.synchronize()?;
            let host = staging.as_mut_slice()?;
            host[..words]
                .par_chunks_mut(ROWS_PER_TASK * row_words)
                .enumerate()
                .for_each(|(t, out)| fill(first + t * ROWS_PER_TASK, out));
            let mut view = dst.slice_mut(first * row_words..first * row_words + words);
            self.stream.memcpy_htod(&staging.as_slice()?[..words], &mut view)?;
            first += rows;
        }
        // The next user of the staging buffer synchronises before writing it.
        Ok(dst)
    }

    pub fn download(&self, values: &CudaSlice<u32>) -> Result<Vec<u32>> {
        Ok(self.stream.clone_dtoh(values)?)
    }

    /// The values at `positions` of a column of `words`-word values, in
    /// order (one kernel, one small copy).
    pub fn gather(&self, col: &CudaSlice<u32>, words: u32, positions: &[u32]) -> Result<Vec<u32>> {
        let n = positions.len() as u32;
        if n == 0 {
            return Ok(Vec::new());
        }
        let pos = self.upload(positions)?;
        let mut out = self.stream.alloc_zeros::<u32>((n * words) as usize)?;
        let mut l = self.stream.launch_builder(self.k(Kernel::GatherWords));
        l.arg(col).arg(&pos).arg(&n).arg(&words).arg(&mut out);
        // SAFETY: the caller's positions are below the column's length; one thread per output word.
        unsafe { l.launch(launch_1d((n * words) as u64)) }?;
        self.download(&out)
    }

    /// [`Gpu::gather`] of every column in `cols` (device addresses of
    /// columns of `words`-word values) at the same positions: one launch and
    /// one read-back. Returns each column's words, in position order.
    pub fn gather_many(&self, cols: &[u64], words: u32, positions: &[u32]) -> Result<Vec<Vec<u32>>> {
        let (n, n_cols) = (positions.len() as u32, cols.len() as u32);
        if n == 0 || n_cols == 0 {
            return Ok(vec![Vec::new(); cols.len()]);
        }
        let side = self.side_stream()?;
        let d_cols = side.clone_htod(cols)?;
        let d_pos = side.clone_htod(positions)?;
        let total = n as u64 * words as u64 * n_cols as u64;
        // SAFETY: every word is written below.
        let mut out = unsafe { side.alloc::<u32>(total as usize) }?;
        let mut b = side.launch_builder(self.k(Kernel::GatherMany));
        b.arg(&d_cols).arg(&n_cols).arg(&d_pos).arg(&n).arg(&words).arg(&mut out);
        // SAFETY: positions are below every column's length (the caller's plan); one thread per word.
        unsafe { b.launch(launch_1d(total)) }?;
        let w = side.clone_dtoh(&out)?;
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
        let side = self.side_stream()?;
        let d_cols = side.clone_htod(&ptrs)?;
        let d_offs = side.clone_htod(&offs)?;
        let d_pos = side.clone_htod(&pos)?;
        let total = pos.len() as u64 * words as u64;
        // SAFETY: every word is written below.
        let mut out = unsafe { side.alloc::<u32>(total as usize) }?;
        let n_cols = cols.len() as u32;
        let mut b = side.launch_builder(self.k(Kernel::GatherLists));
        b.arg(&d_cols).arg(&d_offs).arg(&n_cols).arg(&d_pos).arg(&words).arg(&mut out);
        // SAFETY: each column's positions are below its length (the caller's plan); one thread per word.
        unsafe { b.launch(launch_1d(total)) }?;
        let w = side.clone_dtoh(&out)?;
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
