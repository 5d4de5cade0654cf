//! The lifted Blake2s Merkle commitment: leaves, layers and the root; and
//! what both lifted trees (Blake2s and [`crate::poseidon252`]) share.

use super::*;

/// Layers [`Gpu::merkle_top`] builds at most (`MERKLE_TOP_LAYERS` in
/// `kernels/blake2s.cu`).
const MERKLE_TOP_LAYERS: usize = 16;

/// The largest layer, as log2 of its nodes, whose layers above
/// [`Gpu::merkle_top`] builds in one block.
pub const MERKLE_TOP_LOG: u32 = 11;

/// The output layers' device addresses (`merkle_outs`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct MerkleOuts([u64; MERKLE_TOP_LAYERS]);

// SAFETY: sixteen 64-bit addresses, laid out as the kernel's `merkle_outs`.
unsafe impl cudarc::driver::DeviceRepr for MerkleOuts {}

impl Gpu {
    /// The kernel arguments for the leaves of a lifted tree of
    /// `2^log_leaves` leaves over `columns` (device column and log size),
    /// which must be sorted ascending by size, each at least 2 values.
    pub(crate) fn lifted_columns(
        &self,
        columns: &[(&CudaSlice<u32>, u32)],
        log_leaves: u32,
    ) -> Result<(column::ArgBlock, u32)> {
        if columns.iter().any(|c| c.1 == 0 || c.1 > log_leaves || c.0.len() < 1 << c.1)
            || columns.windows(2).any(|w| w[0].1 > w[1].1)
        {
            return Err(CudaError::Unsupported("columns must be sorted by size, 2 <= size <= leaves".into()));
        }
        let logs: Vec<u32> = columns.iter().map(|c| c.1).collect();
        let ptrs = self.addrs(columns.iter().map(|c| c.0));
        Ok((self.arg_block(&[column::Words::U64(&ptrs), column::Words::U32(&logs)])?, columns.len() as u32))
    }

    /// A lifted tree's leaf layer and its root's 8 words, from its leaf and
    /// layer functions.
    pub(crate) fn lifted_root(
        &self,
        columns: &[(&CudaSlice<u32>, u32)],
        leaves: impl Fn(&[(&CudaSlice<u32>, u32)], u32) -> Result<Buf>,
        next_layer: impl Fn(&CudaSlice<u32>) -> Result<Buf>,
    ) -> Result<(Buf, [u32; 8])> {
        let log_leaves = columns.iter().map(|c| c.1).max().unwrap_or(0);
        let leaves = leaves(columns, log_leaves)?;
        let mut layer: Option<Buf> = None;
        for _ in 0..log_leaves {
            layer = Some(next_layer(layer.as_ref().unwrap_or(&leaves))?);
        }
        let root = self.download(layer.as_ref().unwrap_or(&leaves))?;
        let root: [u32; 8] = root.try_into().map_err(|_| CudaError::Unsupported("root is not 8 words".into()))?;
        Ok((leaves, root))
    }

    /// Leaf hashes (8 words each) of the lifted Blake2s Merkle tree over
    /// `columns` (device column and log size, sorted ascending by size, each
    /// at least 2 values), lifted to `2^log_leaves` leaves.
    pub fn merkle_leaves(&self, columns: &[(&CudaSlice<u32>, u32)], log_leaves: u32) -> Result<Buf> {
        let (a, n_cols) = self.lifted_columns(columns, log_leaves)?;
        // SAFETY: `merkle_leaves` writes all 8 words of every leaf.
        let mut leaves = unsafe { self.alloc::<u32>(8usize << log_leaves) }?;
        let mut b = self.stream.launch_builder(self.k(Kernel::MerkleLeaves));
        b.arg(&a.at[0]).arg(&a.at[1]).arg(&n_cols).arg(&log_leaves).arg(&mut leaves);
        // SAFETY: each thread reads in-bounds lifted indices of the columns and writes its own leaf.
        unsafe { b.launch(launch_1d(1u64 << log_leaves)) }?;
        Ok(leaves)
    }

    /// The next Merkle layer: `out[i] = H(prev[2i] || prev[2i+1])`.
    pub fn merkle_next_layer(&self, prev: &CudaSlice<u32>) -> Result<Buf> {
        let n = (prev.len() / 16) as u64;
        // SAFETY: `merkle_layer` writes all 8 words of every node.
        let mut next = unsafe { self.alloc::<u32>((8 * n.max(1)) as usize) }?;
        let mut b = self.stream.launch_builder(self.k(Kernel::MerkleLayer));
        b.arg(prev).arg(&mut next).arg(&n);
        // SAFETY: node i reads children 2i and 2i+1 of the previous layer.
        unsafe { b.launch(launch_1d(n)) }?;
        Ok(next)
    }

    /// Every layer above `prev` (a layer of 2 to 2^[`MERKLE_TOP_LOG`]
    /// nodes) up to the root, in one launch of one block: layer by layer,
    /// from the one built from `prev` to the root.
    pub fn merkle_top(&self, prev: &CudaSlice<u32>) -> Result<Vec<Buf>> {
        let nodes = prev.len() / 8;
        if !nodes.is_power_of_two() || !(2..=1 << MERKLE_TOP_LOG).contains(&nodes) || prev.len() != 8 * nodes {
            return Err(CudaError::Unsupported(format!("merkle_top above a layer of {} words", prev.len())));
        }
        let n_layers = nodes.ilog2();
        let layers = (1..=n_layers)
            // SAFETY: `merkle_top` writes all 8 words of every node of every layer.
            .map(|l| unsafe { self.alloc::<u32>(8 * (nodes >> l)) })
            .collect::<Result<Vec<_>>>()?;
        let mut outs = MerkleOuts([0; MERKLE_TOP_LAYERS]);
        for (o, l) in outs.0.iter_mut().zip(&layers) {
            *o = addr(l, &self.stream);
        }
        let mut b = self.stream.launch_builder(self.k(Kernel::MerkleTop));
        b.arg(prev).arg(&n_layers).arg(&outs);
        // At most 256 threads: a block of 1024 would need the compression in 64 registers a thread.
        let threads = (nodes as u32 / 2).clamp(32, 256);
        let cfg = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: one block; layer l reads the layer below it (written before the block's barrier) and
        // writes its own buffer, each sized above; `layers` outlives the queued launch.
        unsafe { b.launch(cfg) }?;
        Ok(layers)
    }

    /// Stwo's leaf packing for FRI layers folded `fold_step > 1` at a time,
    /// on the device: output column `coord + 4 * offset` holds
    /// `columns[coord][4 * row + offset]` at `row`, for four columns of the
    /// same length, a multiple of 4.
    pub fn pack_leaves(&self, columns: [&CudaSlice<u32>; 4], len: usize) -> Result<[Buf; 16]> {
        if len == 0 || !len.is_multiple_of(4) || columns.iter().any(|c| c.len() < len) {
            return Err(CudaError::Unsupported(format!("pack_leaves of {len} values")));
        }
        let rows = len / 4;
        let mut out = Vec::with_capacity(16);
        for _ in 0..16 {
            // SAFETY: `pack_leaves` writes every value of every output column.
            out.push(unsafe { self.alloc::<u32>(rows) }?);
        }
        let (ins, outs) = (self.addrs(columns), self.addrs(&out));
        let a = self.arg_block(&[column::Words::U64(&ins), column::Words::U64(&outs)])?;
        let rows64 = rows as u64;
        let mut b = self.stream.launch_builder(self.k(Kernel::PackLeaves));
        b.arg(&a.at[0]).arg(&a.at[1]).arg(&rows64);
        // SAFETY: thread `row` reads values 4 row .. 4 row + 3 (< len) of each input and writes `row` of each output.
        unsafe { b.launch(launch_1d(rows64)) }?;
        out.try_into().map_err(|_| CudaError::Unsupported("pack_leaves: 16 outputs".into()))
    }

    /// The lifted Blake2s Merkle tree of `columns` (sorted ascending by
    /// size): returns the leaf layer and the root.
    pub fn merkle_root(&self, columns: &[(&CudaSlice<u32>, u32)]) -> Result<(Buf, [u32; 8])> {
        self.lifted_root(columns, |c, l| self.merkle_leaves(c, l), |p| self.merkle_next_layer(p))
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use stwo::core::fields::m31::{BaseField, M31};
    use stwo::core::vcs::blake2_hash::Blake2sHasher;
    use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleHasher;
    use stwo::prover::backend::CpuBackend;
    use stwo::prover::vcs_lifted::ops::MerkleOpsLifted;

    /// `merkle_leaves`, `merkle_layer` and `merkle_top` (kernels/blake2s.cu),
    /// compiled for the host by `c++` and run one "thread" at a time, against
    /// Stwo's lifted Blake2s tree (`CpuBackend`): columns of mixed sizes,
    /// lifted, in counts on both sides of a block's sixteen words, and none;
    /// every layer up to the root.
    #[test]
    fn merkle_leaves_and_layers_equal_stwo_s_on_the_host() {
        let mut state = 0x2545_f491u32;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state % ((1 << 31) - 1)
        };
        let cases: Vec<Vec<u32>> = [0usize, 1, 15, 16, 17, 32, 41]
            .iter()
            .map(|&n| {
                let mut logs: Vec<u32> = (0..n).map(|i| 1 + (i as u32 * 7 % 5)).collect();
                logs.sort_unstable();
                logs
            })
            .collect();
        let log_leaves = 5u32;
        let mut src = format!("{}{}\n{}\n", crate::codegen::HOST_SHIM, crate::M31_H, crate::FIXED_SOURCES[1].1);
        src.insert_str(
            0,
            "static inline int __ffs(unsigned x) { return x ? __builtin_ctz(x) + 1 : 0; }\n\
             static inline unsigned atomicMin(unsigned* a, unsigned v) { unsigned o = *a; if (v < o) *a = v; return o; }\n",
        );
        src.push_str("#include <cstdio>\nint main() {\n  blockIdx.x = 0; blockDim.x = 1;\n");
        let mut columns: Vec<Vec<Vec<M31>>> = Vec::new();
        for (k, logs) in cases.iter().enumerate() {
            let cols: Vec<Vec<M31>> = logs.iter().map(|&l| (0..1u32 << l).map(|_| M31(rnd())).collect()).collect();
            let _ =
                writeln!(src, "  {{ static u64 ptrs[{}]; static u32 logs[{}] = {{0", cols.len() + 1, cols.len() + 1);
            for l in logs {
                let _ = write!(src, ",{l}");
            }
            src.push_str("};\n");
            for (c, col) in cols.iter().enumerate() {
                let words: Vec<String> = col.iter().map(|v| v.0.to_string()).collect();
                let _ = writeln!(src, "    static u32 c{c}[] = {{{}}}; ptrs[{c}] = (u64)c{c};", words.join(","));
            }
            let n = 1u32 << log_leaves;
            let _ = writeln!(
                src,
                "    static u32 leaves[{}], next[{}];\n    for (u32 i = 0; i < {n}; i++) {{ threadIdx.x = i; \
                 merkle_leaves(ptrs, logs + 1, {}, {log_leaves}, leaves); }}\n    for (u32 i = 0; i < {}; i++) \
                 {{ threadIdx.x = i; merkle_layer(leaves, next, {}); }}\n    printf(\"case {k}\");\n    for (u32 i = 0; \
                 i < {}; i++) printf(\" %08x\", leaves[i]);\n    for (u32 i = 0; i < {}; i++) printf(\" %08x\", next[i]);\n    \
                 static u32 top[{log_leaves}][{}]; merkle_outs o; for (u32 l = 0; l < {log_leaves}; l++) o.p[l] = top[l];\n    \
                 threadIdx.x = 0; merkle_top(leaves, {log_leaves}, o);\n    for (u32 l = 0; l < {log_leaves}; l++) \
                 for (u32 i = 0; i < (8u << ({log_leaves} - l - 1)); i++) printf(\" %08x\", top[l][i]);\n    \
                 printf(\"\\n\"); }}",
                8 * n,
                4 * n,
                cols.len(),
                n / 2,
                n / 2,
                8 * n,
                4 * n,
                4 * n,
            );
            columns.push(cols);
        }
        src.push_str("  return 0;\n}\n");
        let program = crate::codegen::HostProgram::build("blake2s", &src, "-O1");
        let out = std::process::Command::new(&program.exe).output().expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), cases.len());
        let hex = |h: &[stwo::core::vcs::blake2_hash::Blake2sHash]| -> String {
            h.iter()
                .flat_map(|d| d.0.chunks(4).map(|w| format!(" {:08x}", u32::from_le_bytes([w[0], w[1], w[2], w[3]]))))
                .collect()
        };
        for (k, cols) in columns.iter().enumerate() {
            let refs: Vec<&Vec<BaseField>> = cols.iter().collect();
            // Stwo's tree of no columns is one leaf, the hash of no words; the kernel writes it at every leaf.
            let leaves = match refs.is_empty() {
                true => vec![Blake2sHasher::hash(&[]); 1 << log_leaves],
                false => <CpuBackend as MerkleOpsLifted<Blake2sMerkleHasher>>::build_leaves(&refs, log_leaves),
            };
            let next = <CpuBackend as MerkleOpsLifted<Blake2sMerkleHasher>>::build_next_layer(&leaves);
            let mut want = format!("case {k}{}{}", hex(&leaves), hex(&next));
            let mut layer = leaves.clone();
            for _ in 0..log_leaves {
                layer = <CpuBackend as MerkleOpsLifted<Blake2sMerkleHasher>>::build_next_layer(&layer);
                want.push_str(&hex(&layer));
            }
            assert_eq!(lines[k], want, "{} columns", cols.len());
        }
    }
}
