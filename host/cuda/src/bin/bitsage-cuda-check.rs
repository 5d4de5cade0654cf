//! Checks every CUDA kernel against Stwo on random inputs, then times the
//! GPU against Stwo's SIMD backend (all cores) in the same process.
//!
//!     bitsage-cuda-check [--bench MIN_LOG MAX_LOG] [--cols N] [--skip-hash]
//!     bitsage-cuda-check --compile [THREADS]
//!
//! `--compile` only times NVRTC, caches bypassed: the four largest generated
//! sources under several NVRTC settings, side by side on THREADS threads
//! (default: one per core), then the sets of sources a GPU and a proof
//! without and with the hash component load, each at once. NVRTC's ptxas
//! step keeps what it compiled in the driver's compute cache
//! (`~/.nv/ComputeCache`): run it with `CUDA_CACHE_DISABLE=1`, or on a fresh
//! machine, to time compilation and not that cache.
//!
//! Exit status 0 only if every check matched. Needs a CUDA device.

use std::time::Instant;

use bitsage_air::relations::Relations;
use bitsage_cuda::backend::{CudaBackend, DevCol};
use bitsage_cuda::{codegen, Buf, Gpu, Result};
use rayon::prelude::*;
use stwo::core::channel::Poseidon252Channel;
use stwo::core::channel::{Blake2sChannel, Channel};
use stwo::core::circle::Coset;
use stwo::core::fields::m31::{BaseField, M31};
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::poly::line::LineDomain;
use stwo::core::proof_of_work::GrindOps;
use stwo::core::vcs::blake2_hash::{Blake2sHash, Blake2sHasher};
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleHasher;
use stwo::core::vcs_lifted::poseidon252_merkle::Poseidon252MerkleHasher;
use stwo::prover::backend::cpu::CpuBackend;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::Column;
use stwo::prover::fri::FriOps;
use stwo::prover::line::LineEvaluation;
use stwo::prover::poly::circle::{CircleCoefficients, CircleEvaluation, PolyOps, SecureEvaluation};
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::secure_column::SecureColumnByCoords;
use stwo::prover::vcs_lifted::ops::PackLeavesOps;
use stwo::prover::vcs_lifted::prover::MerkleProverLifted;
use stwo::prover::AccumulationOps;

/// xorshift64*: reproducible, fresh per check (seeded by the check's index).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn m31s(&mut self, n: usize) -> Vec<u32> {
        (0..n).map(|_| (self.next() % ((1 << 31) - 1)) as u32).collect()
    }
}

fn words(v: &[M31]) -> Vec<u32> {
    v.iter().map(|x| x.0).collect()
}

fn m31(v: &[u32]) -> Vec<M31> {
    v.iter().map(|&x| M31(x)).collect()
}

fn hash_words(h: &[u8; 32]) -> [u32; 8] {
    std::array::from_fn(|i| u32::from_le_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]]))
}

struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn check(&mut self, name: &str, ok: bool) {
        println!("{} {name}", if ok { "ok  " } else { "FAIL" });
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
    }
}

fn check_fft(gpu: &Gpu, t: &mut Tally, rng: &mut Rng) -> Result<()> {
    let max_log = 23;
    let dtw = gpu.twiddles(max_log)?;
    let tree = CpuBackend::precompute_twiddles(CanonicCoset::new(max_log).circle_domain().half_coset);
    for log in [3u32, 4, 5, 8, 11, 12, 13, 14, 16, 17, 20] {
        let n_cols = 3;
        let evals = rng.m31s(n_cols << log);
        let mut d = gpu.upload(&evals)?;
        gpu.interpolate(&mut d, log, &dtw.itw)?;
        let got = gpu.download(&d)?;
        let domain = CanonicCoset::new(log).circle_domain();
        let mut want = Vec::new();
        let mut polys = Vec::new();
        for c in 0..n_cols {
            let col = m31(&evals[c << log..(c + 1) << log]);
            let poly = CpuBackend::interpolate(
                CircleEvaluation::<CpuBackend, BaseField, BitReversedOrder>::new(domain, col),
                &tree,
            );
            want.extend(words(&poly.coeffs));
            polys.push(poly);
        }
        t.check(&format!("interpolate 2^{log} x {n_cols} columns"), got == want);
        for blowup in [1u32, 2] {
            let big = log + blowup;
            let lde = gpu.download(&gpu.evaluate(&d, log, big, &dtw.tw)?)?;
            let domain = CanonicCoset::new(big).circle_domain();
            let want: Vec<u32> =
                polys.iter().flat_map(|p| words(&CpuBackend::evaluate(p, domain, &tree).values)).collect();
            t.check(&format!("evaluate 2^{log} -> 2^{big} x {n_cols} columns"), lde == want);
        }
    }
    Ok(())
}

fn check_merkle(gpu: &Gpu, t: &mut Tally, rng: &mut Rng) -> Result<()> {
    for (top, logs) in
        [(5u32, vec![1u32, 2, 5]), (12, vec![3, 9, 11, 11, 12]), (16, [vec![10, 15], vec![16; 35]].concat())]
    {
        let host: Vec<Vec<u32>> = logs.iter().map(|&l| rng.m31s(1 << l)).collect();
        let dev = host.iter().map(|c| gpu.upload(c)).collect::<Result<Vec<_>>>()?;
        let cols: Vec<_> = dev.iter().zip(&logs).map(|(d, &l)| (&**d, l)).collect();
        let (_, root) = gpu.merkle_root(&cols)?;
        let cpu_cols: Vec<Vec<M31>> = host.iter().map(|c| m31(c)).collect();
        let want =
            MerkleProverLifted::<CpuBackend, Blake2sMerkleHasher>::commit(cpu_cols.iter().collect(), top, 0).root();
        t.check(
            &format!("merkle root over {} columns, log sizes {:?}..{top}", logs.len(), logs[0]),
            root == hash_words(&want.0),
        );
    }
    Ok(())
}

/// The backend's Merkle trees (`MerkleProverLifted` over `CudaBackend`: a
/// tree's layers of at most 2^11 nodes are built ahead in one launch and
/// handed to Stwo one at a time) against the CPU's, every layer: trees of
/// the same shape one after another (their buffers come back from the pool
/// at the addresses the layers built ahead are keyed by), two trees built
/// in turns, a tree dropped before it was finished.
fn check_merkle_backend(t: &mut Tally, rng: &mut Rng) -> Result<()> {
    use stwo::prover::vcs_lifted::ops::MerkleOpsLifted;
    type Cpu = MerkleProverLifted<CpuBackend, Blake2sMerkleHasher>;
    type Cuda = MerkleProverLifted<CudaBackend, Blake2sMerkleHasher>;
    let layers_equal = |cuda: &Cuda, cpu: &Cpu| {
        cuda.layers.len() == cpu.layers.len() && cuda.layers.iter().zip(&cpu.layers).all(|(d, c)| d.to_cpu() == *c)
    };
    for log in [3u32, 9, 12, 13, 16] {
        for round in 0..3 {
            let host: Vec<Vec<M31>> = (0..5).map(|i| m31(&rng.m31s(1 << (log - i % 3)))).collect();
            let dev: Vec<DevCol<M31>> = host.iter().map(|c| DevCol::from_m31(c)).collect();
            let cpu = Cpu::commit(host.iter().collect(), log, 0);
            let cuda = Cuda::commit(dev.iter().collect(), log, 0);
            t.check(
                &format!("backend Merkle tree 2^{log}, every layer, tree {round} of its shape"),
                layers_equal(&cuda, &cpu),
            );
        }
    }
    // Two trees in turns, layer by layer, and one left unfinished.
    let host: Vec<Vec<Vec<M31>>> = (0..3).map(|_| vec![m31(&rng.m31s(1 << 10)), m31(&rng.m31s(1 << 10))]).collect();
    let dev: Vec<Vec<DevCol<M31>>> = host.iter().map(|t| t.iter().map(|c| DevCol::from_m31(c)).collect()).collect();
    let leaves = |cols: &Vec<DevCol<M31>>| {
        <CudaBackend as MerkleOpsLifted<Blake2sMerkleHasher>>::build_leaves(&cols.iter().collect::<Vec<_>>(), 10)
    };
    let next = <CudaBackend as MerkleOpsLifted<Blake2sMerkleHasher>>::build_next_layer;
    let (mut a, mut b) = (vec![leaves(&dev[0])], vec![leaves(&dev[1])]);
    let unfinished = next(&next(&leaves(&dev[2])));
    drop(unfinished);
    for _ in 0..10 {
        let na = next(a.last().expect("a layer"));
        let nb = next(b.last().expect("a layer"));
        a.push(na);
        b.push(nb);
    }
    let same = |layers: &[DevCol<Blake2sHash>], cols: &Vec<Vec<M31>>| {
        let cpu = Cpu::commit(cols.iter().collect(), 10, 0);
        layers.iter().rev().zip(&cpu.layers).all(|(d, c)| d.to_cpu() == *c) && layers.len() == cpu.layers.len()
    };
    t.check(
        "backend Merkle trees built in turns, beside one left unfinished",
        same(&a, &host[0]) && same(&b, &host[1]),
    );
    Ok(())
}

/// The lane's buffer pool: a buffer given back is handed out again for the
/// same size and not for another, what it keeps stays under its cap (the
/// buffer freed longest ago going first), zeros from a reused buffer are
/// zeros, and `release` gives everything back.
fn check_pool(gpu: &Gpu, t: &mut Tally) -> Result<()> {
    use cudarc::driver::DevicePtr;
    let pool = bitsage_cuda::Pool::new(gpu.stream.clone(), 3 * 4096);
    let addr = |b: &Buf| {
        let (p, _sync) = b.device_ptr(&gpu.stream);
        p
    };
    let first = pool.htod(&[7u32; 1000])?;
    let at = addr(&first);
    drop(first);
    let again = pool.zeros(1000)?;
    t.check("pool: a freed buffer is handed out again for its size", addr(&again) == at);
    t.check("pool: zeros from a reused buffer are zeros", gpu.download(&again)?.iter().all(|&w| w == 0));
    let other = pool.htod(&[1u32; 999])?;
    t.check("pool: not for another size", addr(&other) != at && pool.cached_bytes() == 0);
    let big = pool.zeros::<u32>(4096)?;
    drop((again, other, big));
    t.check("pool: keeps no more than its cap", pool.cached_bytes() == 4000 + 3996);
    drop(pool.zeros::<u32>(2048)?);
    t.check("pool: past its cap the buffer freed longest ago goes", pool.cached_bytes() == 3996 + 8192);
    pool.release();
    t.check("pool: release gives every buffer back", pool.cached_bytes() == 0);
    Ok(())
}

/// The device leaf packing of FRI layers folded several steps at a time
/// against Stwo's (`CpuBackend::pack_leaves_input`), with its time beside the
/// host round trip it replaces at the first layer of a 2^20-row proof.
fn check_pack_leaves(gpu: &Gpu, t: &mut Tally, rng: &mut Rng) -> Result<()> {
    for log in [2u32, 5, 12, 22] {
        let host: Vec<Vec<u32>> = (0..4).map(|_| rng.m31s(1 << log)).collect();
        let dev = host.iter().map(|c| gpu.upload(c)).collect::<Result<Vec<_>>>()?;
        let t0 = Instant::now();
        let packed = gpu.pack_leaves([&dev[0], &dev[1], &dev[2], &dev[3]], 1 << log)?;
        gpu.synchronize()?;
        let device_ms = ms(t0.elapsed());
        let got = packed.iter().map(|c| gpu.download(c)).collect::<Result<Vec<_>>>()?;
        let cpu: Vec<Vec<M31>> = host.iter().map(|c| m31(c)).collect();
        let t1 = Instant::now();
        let want = CpuBackend::pack_leaves_input(&[&cpu[0], &cpu[1], &cpu[2], &cpu[3]]);
        let host_ms = ms(t1.elapsed());
        let equal = got.iter().zip(&want).all(|(g, w)| g.len() == w.len() && g.iter().zip(w).all(|(a, b)| *a == b.0));
        t.check(
            &format!("pack leaves of 4 x 2^{log} values: device {device_ms:.2} ms, Stwo's host loop {host_ms:.1} ms"),
            equal,
        );
    }
    // Columns that are not a multiple of four values are refused, not read past.
    let short = gpu.upload(&rng.m31s(6))?;
    t.check("pack leaves refuses 6 values", gpu.pack_leaves([&short, &short, &short, &short], 6).is_err());
    Ok(())
}

fn prefixed(channel: &Blake2sChannel, pow_bits: u32) -> [u32; 8] {
    let mut h = Blake2sHasher::new();
    h.update(&Blake2sChannel::POW_PREFIX.to_le_bytes());
    h.update(&[0u8; 12]);
    h.update(&channel.digest().0);
    h.update(&pow_bits.to_le_bytes());
    hash_words(&h.finalize().0)
}

fn check_grind(gpu: &Gpu, t: &mut Tally, rng: &mut Rng) -> Result<()> {
    for pow_bits in [8u32, 16, 20, 22] {
        let mut channel = Blake2sChannel::default();
        channel.mix_u32s(&rng.m31s(8));
        let want = <SimdBackend as GrindOps<Blake2sChannel>>::grind(&channel, pow_bits);
        let got = gpu.grind(&prefixed(&channel, pow_bits), pow_bits)?;
        t.check(&format!("grind {pow_bits} bits: nonce {got:#x}"), got == want);
    }
    Ok(())
}

/// The lifted Poseidon252 tree against the CPU and SIMD backends' (column
/// counts that leave every remainder the sponge pads: none, one short felt,
/// one full felt, a full and a short one), and its grinding against SIMD's.
fn check_poseidon252(gpu: &Gpu, t: &mut Tally, rng: &mut Rng) -> Result<()> {
    for logs in [
        vec![1u32, 2, 5],
        vec![4; 8],
        [vec![3, 9], vec![11; 11]].concat(),
        vec![6; 16],
        [vec![5, 10], vec![12; 33]].concat(),
        [vec![8], vec![14; 39]].concat(),
    ] {
        let top = *logs.iter().max().unwrap_or(&1);
        let host: Vec<Vec<u32>> = logs.iter().map(|&l| rng.m31s(1 << l)).collect();
        let dev = host.iter().map(|c| gpu.upload(c)).collect::<Result<Vec<_>>>()?;
        let cols: Vec<_> = dev.iter().zip(&logs).map(|(d, &l)| (&**d, l)).collect();
        let (_, root) = gpu.p252_merkle_root(&cols)?;
        let cpu_cols: Vec<Vec<M31>> = host.iter().map(|c| m31(c)).collect();
        let want =
            MerkleProverLifted::<CpuBackend, Poseidon252MerkleHasher>::commit(cpu_cols.iter().collect(), top, 0).root();
        let simd_cols: Vec<BaseColumn> = cpu_cols.iter().map(|c| c.iter().copied().collect()).collect();
        let simd =
            MerkleProverLifted::<SimdBackend, Poseidon252MerkleHasher>::commit(simd_cols.iter().collect(), top, 0)
                .root();
        t.check(
            &format!("poseidon252 merkle root over {} columns, log sizes {}..{top}", logs.len(), logs[0]),
            root == want && root == simd,
        );
    }
    for pow_bits in [1u32, 8, 12, 16] {
        let mut channel = Poseidon252Channel::default();
        channel.mix_u32s(&rng.m31s(8));
        let want = <SimdBackend as GrindOps<Poseidon252Channel>>::grind(&channel, pow_bits);
        let prefixed = starknet_crypto_06::poseidon_hash_many(&[
            Poseidon252Channel::POW_PREFIX.into(),
            channel.digest(),
            pow_bits.into(),
        ]);
        let got = gpu.p252_grind(&prefixed, pow_bits)?;
        t.check(
            &format!("poseidon252 grind {pow_bits} bits: nonce {got:#x}"),
            got == want && channel.verify_pow_nonce(pow_bits, got),
        );
    }
    Ok(())
}

/// FRI folds, lift-and-accumulate and the barycentric dot product against
/// the CPU backend's `FriOps`, `AccumulationOps` and plain field arithmetic.
fn check_fri(gpu: &Gpu, t: &mut Tally, rng: &mut Rng) -> Result<()> {
    let max_log = 20;
    let dtw = gpu.twiddles(max_log)?;
    let tree = CpuBackend::precompute_twiddles(CanonicCoset::new(max_log).circle_domain().half_coset);
    let secure = |rng: &mut Rng, log: u32| -> (Vec<u32>, SecureColumnByCoords<CpuBackend>) {
        let words = rng.m31s(4 << log);
        let columns = std::array::from_fn(|c| m31(&words[c << log..(c + 1) << log]));
        (words, SecureColumnByCoords { columns })
    };
    let flat = |c: &SecureColumnByCoords<CpuBackend>| -> Vec<u32> { c.columns.iter().flat_map(|v| words(v)).collect() };
    let felt = |rng: &mut Rng| {
        let w = rng.m31s(4);
        (SecureField::from_m31_array([M31(w[0]), M31(w[1]), M31(w[2]), M31(w[3])]), [w[0], w[1], w[2], w[3]])
    };
    // A QM31 column's four coordinates on the device, and back.
    let up4 = |w: &[u32], log: u32| -> Result<[Buf; 4]> {
        let n = 1usize << log;
        Ok([gpu.upload(&w[..n])?, gpu.upload(&w[n..2 * n])?, gpu.upload(&w[2 * n..3 * n])?, gpu.upload(&w[3 * n..])?])
    };
    fn refs4(c: &[Buf; 4]) -> [&cudarc::driver::CudaSlice<u32>; 4] {
        [&*c[0], &*c[1], &*c[2], &*c[3]]
    }
    let down4 = |c: &[Buf; 4]| -> Result<Vec<u32>> {
        Ok(c.iter().map(|b| gpu.download(b)).collect::<Result<Vec<_>>>()?.concat())
    };
    for log in [4u32, 10, 16] {
        let (host, col) = secure(rng, log);
        let (alpha, alpha_w) = felt(rng);
        let src = SecureEvaluation::<CpuBackend, BitReversedOrder>::new(CanonicCoset::new(log).circle_domain(), col);
        let want = flat(&CpuBackend::fold_circle_into_line(&src, alpha, &tree).values);
        let got = down4(&gpu.fri_fold(refs4(&up4(&host, log)?), log - 1, alpha_w, true, &dtw.itw)?)?;
        t.check(&format!("fold_circle_into_line 2^{log} -> 2^{}", log - 1), got == want);
    }
    for (log, step) in [(4u32, 1u32), (10, 1), (16, 3)] {
        let (host, col) = secure(rng, log);
        let (alpha, _) = felt(rng);
        let eval = LineEvaluation::<CpuBackend>::new(LineDomain::new(Coset::half_odds(log)), col);
        let want = flat(&CpuBackend::fold_line(&eval, alpha, &tree, step).values);
        let mut d = up4(&host, log)?;
        let mut a = alpha;
        for j in 0..step {
            let w = a.to_m31_array().map(|x| x.0);
            d = gpu.fri_fold(refs4(&d), log - 1 - j, w, false, &dtw.itw)?;
            a = a * a;
        }
        t.check(&format!("fold_line 2^{log}, {step} step(s)"), down4(&d)? == want);
    }
    let logs = [1u32, 2, 5, 6, 12];
    let cols: Vec<(Vec<u32>, SecureColumnByCoords<CpuBackend>)> = logs.iter().map(|&l| secure(rng, l)).collect();
    let want = CpuBackend::lift_and_accumulate(cols.iter().map(|c| c.1.clone()).collect()).map(|c| flat(&c));
    let dev = cols
        .iter()
        .map(|c| SecureColumnByCoords { columns: c.1.columns.each_ref().map(|v| DevCol::from_m31(v)) })
        .collect();
    let got =
        CudaBackend::lift_and_accumulate(dev).map(|c| c.columns.iter().flat_map(|v| words(&v.to_cpu())).collect());
    t.check(&format!("lift_and_accumulate over log sizes {logs:?}"), got == want);
    for log in [3u32, 16, 20] {
        let evals = rng.m31s(1 << log);
        let (host_w, w) = secure(rng, log);
        let want = (0..1usize << log).fold(SecureField::default(), |acc, i| acc + w.at(i) * M31(evals[i]));
        let got = gpu.dot_m31_qm31(&*gpu.upload(&evals)?, &*gpu.upload(&host_w)?)?;
        t.check(&format!("barycentric dot product over 2^{log}"), got == want.to_m31_array().map(|x| x.0));
    }
    // Many columns against one element-major weight column, in blocks of
    // DOT_COLS columns (a last block part full).
    for (log, n_cols) in [(3u32, 1usize), (12, 8), (16, 19)] {
        let n = 1usize << log;
        let w = rng.m31s(4 * n);
        let cols: Vec<Vec<u32>> = (0..n_cols).map(|_| rng.m31s(n)).collect();
        let want: Vec<[u32; 4]> = cols
            .iter()
            .map(|e| {
                let at = |i: usize| SecureField::from_m31_array(std::array::from_fn(|k| M31(w[4 * i + k])));
                let sum = (0..n).fold(SecureField::default(), |acc, i| acc + at(i) * M31(e[i]));
                sum.to_m31_array().map(|x| x.0)
            })
            .collect();
        let dev = cols.iter().map(|e| gpu.upload(e)).collect::<Result<Vec<_>>>()?;
        let ptrs = gpu.addrs(dev.iter());
        let got = gpu.dot_many(&ptrs, &*gpu.upload(&w)?, n)?;
        t.check(&format!("dot products of {n_cols} columns of 2^{log} against one weight column"), got == want);
    }
    Ok(())
}

/// Barycentric weights computed by `CudaBackend` (device inversions) against
/// the SIMD backend's, at random points of the secure-field circle.
fn check_weights(t: &mut Tally, rng: &mut Rng) -> Result<()> {
    for log in [3u32, 4, 5, 10, 17, 21] {
        let k = (u128::from(rng.next()) << 64) | u128::from(rng.next());
        let p = stwo::core::circle::SECURE_FIELD_CIRCLE_GEN.mul(k);
        let want = SimdBackend::barycentric_weights(CanonicCoset::new(log), p).to_cpu();
        let got = CudaBackend::barycentric_weights(CanonicCoset::new(log), p).to_cpu();
        t.check(&format!("barycentric weights over 2^{log}"), got == want);
    }
    Ok(())
}

/// Out-of-domain samples from coefficients (`CudaBackend::eval_at_point`)
/// against the CPU backend's fold, at random points of the secure-field
/// circle: a column alone (2^0 to 2^20 coefficients), and columns the
/// commitment registered (`evaluate_polynomials` keeping coefficients), whose
/// values at a point come from one batch for every column of a size.
fn check_samples(t: &mut Tally, rng: &mut Rng) -> Result<()> {
    let point = |rng: &mut Rng| {
        let k = (u128::from(rng.next()) << 64) | u128::from(rng.next());
        stwo::core::circle::SECURE_FIELD_CIRCLE_GEN.mul(k)
    };
    for log in [0u32, 1, 3, 10, 17, 20] {
        let c = rng.m31s(1 << log);
        let p = point(rng);
        let want = CpuBackend::eval_at_point(&CircleCoefficients::<CpuBackend>::new(m31(&c)), p);
        let dev = CircleCoefficients::<CudaBackend>::new(DevCol::from_iter(m31(&c)));
        t.check(&format!("sample of 2^{log} coefficients at a point"), CudaBackend::eval_at_point(&dev, p) == want);
    }
    let blowup = 1;
    let twiddles = CudaBackend::precompute_twiddles(CanonicCoset::new(16 + blowup + 1).circle_domain().half_coset);
    let pool = stwo::prover::mempool::BaseColumnPool::<CudaBackend>::new();
    let host: Vec<Vec<u32>> = [5u32, 12, 12, 16, 16, 16].iter().map(|&l| rng.m31s(1 << l)).collect();
    let polys = host.iter().map(|c| CircleCoefficients::<CudaBackend>::new(DevCol::from_iter(m31(c)))).collect();
    let committed = CudaBackend::evaluate_polynomials(polys, blowup, &twiddles, true, &pool);
    for _ in 0..2 {
        let p = point(rng);
        let got: Vec<SecureField> = committed
            .par_iter()
            .map(|poly| poly.coeffs.as_ref().map(|c| CudaBackend::eval_at_point(c, p)).unwrap_or_default())
            .collect();
        let want: Vec<SecureField> =
            host.iter().map(|c| CpuBackend::eval_at_point(&CircleCoefficients::<CpuBackend>::new(m31(c)), p)).collect();
        t.check("samples of six committed columns (2^5, 2^12, 2^16) at a point, in parallel", got == want);
    }
    Ok(())
}

/// Decommitment reads through `DevCol::at`: a first column read value by
/// value teaches the query plan, later columns of that length are served
/// from one gather, and reads outside the plan still return the right
/// value; for M31 and QM31 columns.
fn check_reads(t: &mut Tally, rng: &mut Rng) -> Result<()> {
    for log in [6u32, 12, 20] {
        let n = 1usize << log;
        let positions: Vec<usize> = (0..40).map(|_| rng.next() as usize % n).collect();
        let cols: Vec<Vec<M31>> = (0..4).map(|_| m31(&rng.m31s(n))).collect();
        let dev: Vec<DevCol<M31>> = cols.iter().map(|c| DevCol::from_m31(c)).collect();
        let mut ok = true;
        for (c, d) in cols.iter().zip(&dev) {
            ok &= positions.iter().all(|&p| d.at(p) == c[p]);
            let other = rng.next() as usize % n;
            ok &= d.at(other) == c[other];
        }
        t.check(&format!("decommitment reads through the query plan, 2^{log} M31"), ok);
        let secure: Vec<SecureField> = (0..n)
            .map(|_| SecureField::from_m31_array(std::array::from_fn(|_| M31(rng.next() as u32 % ((1 << 31) - 1)))))
            .collect();
        let d1: DevCol<SecureField> = secure.iter().copied().collect();
        let d2: DevCol<SecureField> = secure.iter().rev().copied().collect();
        let ok = positions.iter().all(|&p| d1.at(p) == secure[p])
            && positions.iter().all(|&p| d2.at(p) == secure[n - 1 - p]);
        t.check(&format!("decommitment reads through the query plan, 2^{log} QM31"), ok);
    }
    Ok(())
}

/// Uploads through the pinned staging buffer: columns of mixed sizes, one
/// larger than the buffer, and more columns than fit in one group.
fn check_uploads(t: &mut Tally, rng: &mut Rng) -> Result<()> {
    let mut sizes = vec![1usize, 16, 1000, 1 << 20, (1 << 25) + 3];
    sizes.extend(std::iter::repeat_n(1 << 22, 12));
    let cols: Vec<Vec<M31>> = sizes.iter().map(|&n| m31(&rng.m31s(n))).collect();
    let refs: Vec<&[M31]> = cols.iter().map(|c| c.as_slice()).collect();
    let dev = DevCol::upload_many(&refs);
    let same = dev.len() == cols.len() && dev.iter().zip(&cols).all(|(d, c)| d.to_cpu() == *c);
    t.check("uploads through the pinned staging buffer (mixed sizes, one over the buffer, several groups)", same);
    Ok(())
}

/// The quotient combination (`compute_quotients_and_combine`: the device
/// kernel, then interpolation and evaluation on the device) against the
/// SIMD backend's, on random accumulated numerators of mixed sizes.
fn check_quotients(t: &mut Tally, rng: &mut Rng) -> Result<()> {
    use bitsage_cuda::backend::{CudaBackend, DevCol};
    use stwo::prover::pcs::quotient_ops::AccumulatedNumerators;
    use stwo::prover::QuotientOps;
    let felt = |rng: &mut Rng| M31(rng.next() as u32 % ((1 << 31) - 1));
    for (lifting_log, blowup) in [(6u32, 1u32), (12, 1), (17, 2), (21, 1)] {
        let sub_log = lifting_log - blowup;
        let mut simd_accs = Vec::new();
        let mut cuda_accs = Vec::new();
        for k in 0..3u32 {
            let log = sub_log.saturating_sub(k * 2).max(4);
            let coords: [Vec<M31>; 4] = std::array::from_fn(|_| (0..1usize << log).map(|_| felt(rng)).collect());
            let kk = (u128::from(rng.next()) << 64) | u128::from(rng.next());
            let point = stwo::core::circle::SECURE_FIELD_CIRCLE_GEN.mul(kk);
            let flt = SecureField::from_m31_array(std::array::from_fn(|_| felt(rng)));
            simd_accs.push(AccumulatedNumerators::<SimdBackend> {
                sample_point: point,
                partial_numerators_acc: SecureColumnByCoords {
                    columns: std::array::from_fn(|c| coords[c].iter().copied().collect::<BaseColumn>()),
                },
                first_linear_term_acc: flt,
            });
            cuda_accs.push(AccumulatedNumerators::<CudaBackend> {
                sample_point: point,
                partial_numerators_acc: SecureColumnByCoords {
                    columns: std::array::from_fn(|c| DevCol::from_m31(&coords[c])),
                },
                first_linear_term_acc: flt,
            });
        }
        let coset = CanonicCoset::new(lifting_log).circle_domain().half_coset;
        let want = SimdBackend::compute_quotients_and_combine(
            simd_accs,
            lifting_log,
            blowup,
            &SimdBackend::precompute_twiddles(coset),
        );
        let got = CudaBackend::compute_quotients_and_combine(
            cuda_accs,
            lifting_log,
            blowup,
            &CudaBackend::precompute_twiddles(coset),
        );
        let same = (0..4).all(|c| got.values.columns[c].to_cpu() == want.values.columns[c].to_cpu());
        t.check(&format!("quotient combination, lifting 2^{lifting_log}, blowup 2^{blowup}"), same);
    }
    Ok(())
}

/// The generated constraint kernel of each ObelyskVM component, evaluated on
/// random columns and parameters, against the framework's own expression
/// evaluator on the host, row by row.
fn check_constraints(gpu: &Gpu, t: &mut Tally, rng: &mut Rng, skip_hash: bool) -> Result<()> {
    let rels = Relations::draw(&mut Blake2sChannel::default());
    let (trace_log, eval_log) = (5u32, 6u32);
    let evals = bitsage_cuda::constraints::obelysk_expressions(trace_log, &rels);
    for (name, ev) in evals {
        if skip_hash && name == "hash" {
            println!("skip constraints of `hash` (--skip-hash: its kernel takes minutes to compile)");
            continue;
        }
        let kernel = codegen::generate(&format!("constraints_{name}"), &ev);
        let t0 = Instant::now();
        let compiled = gpu.compile_constraints(kernel.clone())?;
        let compile_ms = ms(t0.elapsed());
        let host_cols: Vec<Vec<u32>> = kernel.columns.iter().map(|_| rng.m31s(1 << eval_log)).collect();
        let dev_cols = host_cols.iter().map(|c| gpu.upload(c)).collect::<Result<Vec<_>>>()?;
        // Real relation elements and column size; a random claimed sum.
        let claimed = rng.m31s(4);
        let claimed = SecureField::from_m31_array([M31(claimed[0]), M31(claimed[1]), M31(claimed[2]), M31(claimed[3])]);
        let (base, ext) = codegen::bind_params(&kernel, &rels.elements(), claimed, trace_log)
            .map_err(|p| bitsage_cuda::CudaError::Unsupported(format!("unbound parameter {p}")))?;
        let powers: Vec<u32> = rng.m31s(4 * kernel.n_constraints);
        let refs: Vec<_> = dev_cols.iter().map(|c| &**c).collect();
        let got = gpu.download(&gpu.eval_constraints(&compiled, &refs, &base, &ext, &powers, trace_log, eval_log)?)?;

        let qm = |w: &[u32]| SecureField::from_m31_array([M31(w[0]), M31(w[1]), M31(w[2]), M31(w[3])]);
        let mut mismatches = 0;
        for row in 0..1usize << eval_log {
            let want =
                codegen::host_row_value(&ev, &kernel, &host_cols, &base, &ext, &powers, trace_log, eval_log, row);
            if qm(&got[4 * row..4 * row + 4]) != want {
                mismatches += 1;
            }
        }
        t.check(
            &format!(
                "constraints of `{name}`: {} constraints, {} columns, {} kernels, {} KiB of CUDA, {} in {compile_ms:.0} ms, {} rows",
                kernel.n_constraints,
                kernel.columns.len(),
                kernel.parts.len(),
                kernel.source().len() >> 10,
                if compiled.from_cache { "loaded from cache" } else { "compiled" },
                1 << eval_log
            ),
            mismatches == 0,
        );
    }
    Ok(())
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// GPU time of `f` with device events, in ms.
fn gpu_time<T>(gpu: &Gpu, f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let start = gpu.stream.record_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))?;
    let out = f()?;
    let end = gpu.stream.record_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))?;
    Ok((out, start.elapsed_ms(&end)? as f64))
}

fn bench(gpu: &Gpu, min_log: u32, max_log: u32, n_cols: usize, rng: &mut Rng) -> Result<()> {
    let dtw = gpu.twiddles(max_log + 1)?;
    let stw = SimdBackend::precompute_twiddles(CanonicCoset::new(max_log + 1).circle_domain().half_coset);
    println!();
    println!("| rows | columns | H2D ms | GPU IFFT ms | GPU LDE x2 ms | GPU Merkle ms | GPU total ms | SIMD IFFT ms | SIMD LDE x2 ms | SIMD Merkle ms | SIMD total ms | speed-up | roots equal |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for log in min_log..=max_log {
        let evals = rng.m31s(n_cols << log);
        // GPU: upload, interpolate, extend, commit (warm-up run first).
        for round in 0..2 {
            let t0 = Instant::now();
            let mut d = gpu.upload(&evals)?;
            gpu.synchronize()?;
            let h2d = t0.elapsed();
            let ((), ifft) = gpu_time(gpu, || gpu.interpolate(&mut d, log, &dtw.itw))?;
            let (lde, lde_ms) = gpu_time(gpu, || gpu.evaluate(&d, log, log + 1, &dtw.tw))?;
            let views: Vec<_> = (0..n_cols).map(|c| lde.slice(c << (log + 1)..(c + 1) << (log + 1))).collect();
            let owned: Vec<_> =
                views.iter().map(|v| gpu.stream.clone_dtod(v)).collect::<std::result::Result<Vec<_>, _>>()?;
            let cols: Vec<_> = owned.iter().map(|c| (c, log + 1)).collect();
            let ((_, groot), merkle_ms) = gpu_time(gpu, || gpu.merkle_root(&cols))?;
            if round == 0 {
                continue;
            }
            // SIMD on all cores: the same three steps.
            let domain = CanonicCoset::new(log).circle_domain();
            let columns: Vec<_> = (0..n_cols)
                .map(|c| {
                    let col: BaseColumn = m31(&evals[c << log..(c + 1) << log]).into_iter().collect();
                    CircleEvaluation::<SimdBackend, BaseField, BitReversedOrder>::new(domain, col)
                })
                .collect();
            let t1 = Instant::now();
            let polys: Vec<CircleCoefficients<SimdBackend>> = SimdBackend::interpolate_columns(columns, &stw);
            let s_ifft = t1.elapsed();
            let t2 = Instant::now();
            let big = CanonicCoset::new(log + 1).circle_domain();
            let ldes: Vec<_> = polys.par_iter().map(|p| p.evaluate_with_twiddles(big, &stw)).collect();
            let s_lde = t2.elapsed();
            let t3 = Instant::now();
            let sroot = MerkleProverLifted::<SimdBackend, Blake2sMerkleHasher>::commit(
                ldes.iter().map(|e| &e.values).collect(),
                log + 1,
                0,
            )
            .root();
            let s_merkle = t3.elapsed();
            let gpu_total = ms(h2d) + ifft + lde_ms + merkle_ms;
            let simd_total = ms(s_ifft) + ms(s_lde) + ms(s_merkle);
            println!(
                "| 2^{log} | {n_cols} | {:.2} | {ifft:.3} | {lde_ms:.3} | {merkle_ms:.3} | {gpu_total:.2} | {:.1} | {:.1} | {:.1} | {simd_total:.1} | {:.1}x | {} |",
                ms(h2d),
                ms(s_ifft),
                ms(s_lde),
                ms(s_merkle),
                simd_total / gpu_total,
                groot == hash_words(&sroot.0)
            );
        }
    }
    // Grinding at the default 20 bits, a few channels.
    let mut g = 0.0;
    let mut s = 0.0;
    for _ in 0..4 {
        let mut channel = Blake2sChannel::default();
        channel.mix_u32s(&rng.m31s(8));
        let p = prefixed(&channel, 20);
        let t0 = Instant::now();
        gpu.grind(&p, 20)?;
        g += ms(t0.elapsed());
        let t1 = Instant::now();
        <SimdBackend as GrindOps<Blake2sChannel>>::grind(&channel, 20);
        s += ms(t1.elapsed());
    }
    println!(
        "\ngrind 20 bits (mean of 4, wall clock incl. launch + readback): GPU {:.2} ms, SIMD {:.2} ms",
        g / 4.0,
        s / 4.0
    );
    Ok(())
}

/// NVRTC times, caches bypassed: the largest generated sources under
/// several settings (every source and setting its own compile, all side by
/// side on `threads` threads, so the slowest compile bounds the table's wall
/// time), then the sets of sources a GPU and a proof load, each at once.
/// True when every source compiled with the default setting.
fn compile_bench(gpu: &Gpu, threads: usize) -> Result<bool> {
    use bitsage_cuda::compile::{compile_uncached, fixed_sources, sources, Needs, Source};
    let plain = sources(Needs::default())?;
    let hash = sources(Needs { hash: true, poseidon252: false })?;
    let virt = gpu.arch.replace("sm_", "compute_");
    let settings: [(&str, &str, &[&str]); 6] = [
        ("default", &gpu.arch, &[]),
        ("PTX only (no ptxas)", &virt, &[]),
        ("-Xptxas -O1", &gpu.arch, &["-Xptxas", "-O1"]),
        ("-Xptxas -O0", &gpu.arch, &["-Xptxas", "-O0"]),
        ("--Ofast-compile=max", &gpu.arch, &["--Ofast-compile=max"]),
        ("--maxrregcount=64", &gpu.arch, &["--maxrregcount=64"]),
    ];
    let mut largest: Vec<Source> = hash.clone();
    largest.sort_by_key(|s| std::cmp::Reverse(s.text.len()));
    largest.truncate(4);
    let jobs: Vec<(usize, usize)> = (0..settings.len()).flat_map(|k| (0..largest.len()).map(move |s| (k, s))).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| bitsage_cuda::CudaError::Unsupported(format!("compile threads: {e}")))?;
    println!("NVRTC for {}, {} compiles side by side on {threads} threads", gpu.arch, jobs.len());
    let t0 = Instant::now();
    let cells: Vec<String> = pool.install(|| {
        jobs.par_iter()
            .map(|&(k, s)| {
                let (_, arch, opts) = settings[k];
                let opts: Vec<String> = opts.iter().map(|o| o.to_string()).collect();
                let t = Instant::now();
                match compile_uncached(std::slice::from_ref(&largest[s]), arch, Some(&opts), 1).into_iter().next() {
                    Some(Ok(img)) => format!("{:.0} ms, {:.0} KiB", ms(t.elapsed()), img.len() as f64 / 1024.0),
                    Some(Err(e)) => format!("refused: {}", bitsage_air::verify::error_chain(&e).replace('\n', " ")),
                    None => "none".into(),
                }
            })
            .collect()
    });
    println!("(table wall {:.0} ms)", ms(t0.elapsed()));
    println!("| source | KiB | {} |", settings.map(|s| s.0).join(" | "));
    println!("|---|---|{}", "---|".repeat(settings.len()));
    let mut ok = true;
    for (si, src) in largest.iter().enumerate() {
        let row: Vec<&str> = (0..settings.len()).map(|k| cells[k * largest.len() + si].as_str()).collect();
        ok &= !row[0].starts_with("refused");
        println!("| {} | {:.1} | {} |", src.name, src.text.len() as f64 / 1024.0, row.join(" | "));
    }
    // The hash component's constraints split eight to a kernel instead of 32.
    let rels = Relations::draw(&mut Blake2sChannel::default());
    let (_, hash_ev) = bitsage_cuda::constraints::obelysk_expressions(5, &rels)
        .into_iter()
        .find(|(name, _)| name.contains("hash"))
        .ok_or_else(|| bitsage_cuda::CudaError::Unsupported("no hash component".into()))?;
    let split8 = bitsage_cuda::constraints::part_sources(&codegen::generate_split("split8_hash", &hash_ev, 8));
    // A set of sources and its NVRTC options (`None`: each source's own, as a proof compiles it).
    type Set<'a> = (&'a str, Vec<Source>, Option<&'a [&'a str]>);
    let sets: [Set; 5] = [
        ("fixed kernels (opening a GPU)", fixed_sources(), None),
        ("a proof without the hash component", plain, None),
        ("the hash constraints, 8 to a kernel, default", split8, Some(&[])),
        ("a proof with the hash component, as shipped", hash.clone(), None),
        ("a proof with the hash component, all at default", hash, Some(&[])),
    ];
    println!("| set | sources | ms at once on {threads} threads |");
    println!("|---|---|---|");
    for (what, set, opts) in sets {
        let opts: Option<Vec<String>> = opts.map(|o| o.iter().map(|x| x.to_string()).collect());
        let t0 = Instant::now();
        let failed = compile_uncached(&set, &gpu.arch, opts.as_deref(), threads).iter().filter(|r| r.is_err()).count();
        ok &= failed == 0;
        println!("| {what} | {} | {:.0}{} |", set.len(), ms(t0.elapsed()), if failed > 0 { " (FAILED)" } else { "" });
    }
    Ok(ok)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench_range = args.iter().position(|a| a == "--bench").map(|i| {
        let n = |k: usize| args.get(i + k).and_then(|s| s.parse().ok());
        (n(1).unwrap_or(16), n(2).unwrap_or(22))
    });
    let n_cols = args.iter().position(|a| a == "--cols").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(64);
    let compile_threads = args
        .iter()
        .position(|a| a == "--compile")
        .map(|i| args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or_else(bitsage_cuda::compile::compile_threads));
    let run = || -> Result<bool> {
        let gpu = Gpu::open(0)?;
        if let Some(threads) = compile_threads {
            return compile_bench(&gpu, threads);
        }
        let (free, total) = gpu.memory()?;
        println!(
            "device: {} ({} of {} MiB free), {} CPU threads",
            gpu.name()?,
            free >> 20,
            total >> 20,
            rayon::current_num_threads()
        );
        let mut t = Tally { passed: 0, failed: 0 };
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        check_fft(&gpu, &mut t, &mut rng)?;
        check_merkle(&gpu, &mut t, &mut rng)?;
        check_merkle_backend(&mut t, &mut rng)?;
        check_pool(&gpu, &mut t)?;
        check_pack_leaves(&gpu, &mut t, &mut rng)?;
        check_grind(&gpu, &mut t, &mut rng)?;
        check_poseidon252(&gpu, &mut t, &mut rng)?;
        check_fri(&gpu, &mut t, &mut rng)?;
        check_weights(&mut t, &mut rng)?;
        check_samples(&mut t, &mut rng)?;
        check_reads(&mut t, &mut rng)?;
        check_quotients(&mut t, &mut rng)?;
        check_uploads(&mut t, &mut rng)?;
        check_constraints(&gpu, &mut t, &mut rng, args.iter().any(|a| a == "--skip-hash"))?;
        println!("checks: {} passed, {} failed", t.passed, t.failed);
        if let Some((lo, hi)) = bench_range {
            bench(&gpu, lo, hi, n_cols, &mut rng)?;
        }
        Ok(t.failed == 0)
    };
    match run() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
