//! The lifted Blake2s Merkle commitment: leaves, layers and the root; and
//! what both lifted trees (Blake2s and [`crate::poseidon252`]) share.

use super::*;

impl Gpu {
    /// The kernel arguments for the leaves of a lifted tree of
    /// `2^log_leaves` leaves over `columns` (device column and log size),
    /// which must be sorted ascending by size, each at least 2 values.
    pub(crate) fn lifted_columns(
        &self,
        columns: &[(&CudaSlice<u32>, u32)],
        log_leaves: u32,
    ) -> Result<(CudaSlice<u64>, CudaSlice<u32>, u32)> {
        if columns.iter().any(|c| c.1 == 0 || c.1 > log_leaves || c.0.len() < 1 << c.1)
            || columns.windows(2).any(|w| w[0].1 > w[1].1)
        {
            return Err(CudaError::Unsupported("columns must be sorted by size, 2 <= size <= leaves".into()));
        }
        let logs: Vec<u32> = columns.iter().map(|c| c.1).collect();
        Ok((self.device_ptrs(columns.iter().map(|c| c.0))?, self.args(&logs)?, columns.len() as u32))
    }

    /// A lifted tree's leaf layer and its root's 8 words, from its leaf and
    /// layer functions.
    pub(crate) fn lifted_root(
        &self,
        columns: &[(&CudaSlice<u32>, u32)],
        leaves: impl Fn(&[(&CudaSlice<u32>, u32)], u32) -> Result<CudaSlice<u32>>,
        next_layer: impl Fn(&CudaSlice<u32>) -> Result<CudaSlice<u32>>,
    ) -> Result<(CudaSlice<u32>, [u32; 8])> {
        let log_leaves = columns.iter().map(|c| c.1).max().unwrap_or(0);
        let leaves = leaves(columns, log_leaves)?;
        let mut layer = leaves.clone();
        for _ in 0..log_leaves {
            layer = next_layer(&layer)?;
        }
        let root = self.download(&layer)?;
        let root: [u32; 8] = root.try_into().map_err(|_| CudaError::Unsupported("root is not 8 words".into()))?;
        Ok((leaves, root))
    }

    /// Leaf hashes (8 words each) of the lifted Blake2s Merkle tree over
    /// `columns` (device column and log size, sorted ascending by size, each
    /// at least 2 values), lifted to `2^log_leaves` leaves.
    pub fn merkle_leaves(&self, columns: &[(&CudaSlice<u32>, u32)], log_leaves: u32) -> Result<CudaSlice<u32>> {
        let (d_ptrs, d_logs, n_cols) = self.lifted_columns(columns, log_leaves)?;
        // SAFETY: `merkle_leaves` writes all 8 words of every leaf.
        let mut leaves = unsafe { self.stream.alloc::<u32>(8usize << log_leaves) }?;
        let mut b = self.stream.launch_builder(self.k(Kernel::MerkleLeaves));
        b.arg(&d_ptrs).arg(&d_logs).arg(&n_cols).arg(&log_leaves).arg(&mut leaves);
        // SAFETY: each thread reads in-bounds lifted indices of the columns and writes its own leaf.
        unsafe { b.launch(launch_1d(1u64 << log_leaves)) }?;
        Ok(leaves)
    }

    /// The next Merkle layer: `out[i] = H(prev[2i] || prev[2i+1])`.
    pub fn merkle_next_layer(&self, prev: &CudaSlice<u32>) -> Result<CudaSlice<u32>> {
        let n = (prev.len() / 16) as u64;
        // SAFETY: `merkle_layer` writes all 8 words of every node.
        let mut next = unsafe { self.stream.alloc::<u32>((8 * n.max(1)) as usize) }?;
        let mut b = self.stream.launch_builder(self.k(Kernel::MerkleLayer));
        b.arg(prev).arg(&mut next).arg(&n);
        // SAFETY: node i reads children 2i and 2i+1 of the previous layer.
        unsafe { b.launch(launch_1d(n)) }?;
        Ok(next)
    }

    /// Stwo's leaf packing for FRI layers folded `fold_step > 1` at a time,
    /// on the device: output column `coord + 4 * offset` holds
    /// `columns[coord][4 * row + offset]` at `row`, for four columns of the
    /// same length, a multiple of 4.
    pub fn pack_leaves(&self, columns: [&CudaSlice<u32>; 4], len: usize) -> Result<[CudaSlice<u32>; 16]> {
        if len == 0 || !len.is_multiple_of(4) || columns.iter().any(|c| c.len() < len) {
            return Err(CudaError::Unsupported(format!("pack_leaves of {len} values")));
        }
        let rows = len / 4;
        let mut out = Vec::with_capacity(16);
        for _ in 0..16 {
            // SAFETY: `pack_leaves` writes every value of every output column.
            out.push(unsafe { self.stream.alloc::<u32>(rows) }?);
        }
        let d_in = self.device_ptrs(columns)?;
        let d_out = self.device_ptrs(&out)?;
        let rows64 = rows as u64;
        let mut b = self.stream.launch_builder(self.k(Kernel::PackLeaves));
        b.arg(&d_in).arg(&d_out).arg(&rows64);
        // SAFETY: thread `row` reads values 4 row .. 4 row + 3 (< len) of each input and writes `row` of each output.
        unsafe { b.launch(launch_1d(rows64)) }?;
        out.try_into().map_err(|_| CudaError::Unsupported("pack_leaves: 16 outputs".into()))
    }

    /// The lifted Blake2s Merkle tree of `columns` (sorted ascending by
    /// size): returns the leaf layer and the root.
    pub fn merkle_root(&self, columns: &[(&CudaSlice<u32>, u32)]) -> Result<(CudaSlice<u32>, [u32; 8])> {
        self.lifted_root(columns, |c, l| self.merkle_leaves(c, l), |p| self.merkle_next_layer(p))
    }
}
