//! The on-chain verifier's building blocks (issue 19), on a real devnet.
//!
//! The Fiat–Shamir channel first: the `StwoChannel` contract replays a
//! script of mixes and draws with the Cairo port of Stwo 2.3's
//! `Poseidon252Channel` (`contracts/src/stwo/channel.cairo`), and every value
//! it draws, every digest and every proof-of-work verdict must be the one
//! Stwo's own channel gives for the same script.

use bitsage_settle::chain::{Chain, Wallet};
use bitsage_settle::keystore::WorkerKey;
use bitsage_settle::onchain::{felt, fri_proof_calldata, pcs_proof_calldata, qm31, qm31s_calldata};
use bitsage_settle::Felt;
use bitsage_tests::devnet::{contracts_dir, Devnet};
use starknet_ff::FieldElement;
use stwo::core::channel::{Channel, MerkleChannel, Poseidon252Channel};
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::vcs_lifted::poseidon252_merkle::Poseidon252MerkleChannel;

/// A devnet with one funded account, its client, and the account's wallet.
struct Chainside {
    // Kept alive for the test's length (the process ends when it drops).
    _devnet: Devnet,
    rt: tokio::runtime::Runtime,
    chain: Chain,
    wallet: Wallet,
}

impl Chainside {
    fn start() -> Chainside {
        let devnet = Devnet::start(1);
        let account = &devnet.accounts[0];
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let chain = Chain::new(&devnet.url, None).expect("chain");
        let key = WorkerKey::from_secret(Felt::from_hex(&account.private_key).expect("key"));
        let wallet = rt
            .block_on(Wallet::connect(chain.clone(), Felt::from_hex(&account.address).expect("address"), &key))
            .expect("wallet");
        Chainside { _devnet: devnet, rt, chain, wallet }
    }

    /// Declares the compiled class `name`.
    fn declare(&self, name: &str) -> Felt {
        self.rt.block_on(self.wallet.declare(&contracts_dir(), name)).unwrap_or_else(|e| panic!("{name} declares: {e}"))
    }

    /// Declares the compiled class `name` and deploys it with `args`.
    fn deploy(&self, name: &str, args: Vec<Felt>) -> Felt {
        let class = self.declare(name);
        self.rt.block_on(self.wallet.deploy(class, args, Felt::ONE)).unwrap_or_else(|e| panic!("{name} deploys: {e}"))
    }

    fn call(&self, contract: Felt, name: &str, calldata: Vec<Felt>) -> Vec<Felt> {
        self.rt.block_on(self.chain.call(contract, name, calldata)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

/// A `PcsConfig` as the contracts' `PcsConfig` decodes it: the grinding
/// bits, then the FRI config's fields.
fn pcs_config_calldata(config: &stwo::core::pcs::PcsConfig) -> Vec<Felt> {
    let f = &config.fri_config;
    [config.pow_bits, f.log_blowup_factor, f.log_last_layer_degree_bound, f.n_queries as u32, f.fold_step]
        .map(Felt::from)
        .to_vec()
}

/// A deterministic stream of pseudo-random words (xorshift64).
fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// A script for the contract and what Stwo's channel gives for it.
#[derive(Default)]
struct Script {
    ops: Vec<Felt>,
    expected: Vec<Felt>,
    channel: Poseidon252Channel,
}

impl Script {
    fn op(&mut self, code: u64, args: impl IntoIterator<Item = Felt>) {
        self.ops.push(Felt::from(code));
        self.ops.extend(args);
    }

    fn mix_root(&mut self, root: FieldElement) {
        Poseidon252MerkleChannel::mix_root(&mut self.channel, root);
        self.op(0, [felt(root)]);
    }

    fn mix_u64(&mut self, v: u64) {
        self.channel.mix_u64(v);
        self.op(1, [Felt::from(v)]);
    }

    fn mix_felts(&mut self, felts: &[SecureField]) {
        self.channel.mix_felts(felts);
        let words = felts.iter().flat_map(|f| f.to_m31_array()).map(|m| Felt::from(m.0));
        self.op(2, std::iter::once(Felt::from(felts.len() as u64)).chain(words));
    }

    fn mix_u32s(&mut self, words: &[u32]) {
        self.channel.mix_u32s(words);
        self.op(3, std::iter::once(Felt::from(words.len() as u64)).chain(words.iter().map(|&w| Felt::from(w))));
    }

    fn draw_secure_felts(&mut self, n: usize) {
        let drawn = self.channel.draw_secure_felts(n);
        self.expected.extend(drawn.iter().flat_map(|f| f.to_m31_array()).map(|m| Felt::from(m.0)));
        self.op(4, [Felt::from(n as u64)]);
    }

    fn draw_u32s(&mut self) {
        self.expected.extend(self.channel.draw_u32s().into_iter().map(Felt::from));
        self.op(5, []);
    }

    fn verify_pow(&mut self, bits: u32, nonce: u64) -> bool {
        let ok = self.channel.verify_pow_nonce(bits, nonce);
        self.expected.push(Felt::from(ok as u64));
        self.op(6, [Felt::from(bits), Felt::from(nonce)]);
        ok
    }

    fn digest(&mut self) {
        self.expected.push(felt(self.channel.digest()));
        self.op(7, []);
    }
}

#[test]
fn the_chain_replays_stwo_s_poseidon252_channel() {
    let side = Chainside::start();
    let contract = side.deploy("StwoChannel", vec![]);
    let run = |s: &Script| -> Vec<Felt> {
        let calldata: Vec<Felt> =
            std::iter::once(Felt::from(s.ops.len() as u64)).chain(s.ops.iter().copied()).collect();
        let out = side.call(contract, "run", calldata);
        assert_eq!(out.first(), Some(&Felt::from(out.len() as u64 - 1)), "a length-prefixed array");
        out[1..].to_vec()
    };

    let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
    let m31 = |v: u64| stwo::core::fields::m31::M31::reduce(v & 0x7fff_ffff);
    let qm31 = |a: u64, b: u64| SecureField::from_m31_array([m31(a), m31(a >> 31), m31(b), m31(b >> 31)]);

    // Every operation, with each mix's boundary cases: an odd and an even
    // number of QM31 elements, word counts on either side of a full felt of
    // seven, the largest root and u64, and draws straddling a batch of eight.
    let mut s = Script::default();
    s.digest();
    s.draw_secure_felts(1);
    s.mix_root(
        FieldElement::from_hex_be("0x7ffffffffffffffffffffffffffffff0123456789abcdef0123456789abcd").expect("felt"),
    );
    s.digest();
    s.draw_secure_felts(3);
    s.draw_u32s();
    for n in [0usize, 1, 2, 3, 8] {
        let felts: Vec<SecureField> = (0..n).map(|_| qm31(next(), next())).collect();
        s.mix_felts(&felts);
        s.draw_secure_felts(2);
    }
    for n in [0usize, 1, 6, 7, 8, 13, 14, 15, 40] {
        let words: Vec<u32> = (0..n).map(|_| next() as u32).collect();
        s.mix_u32s(&words);
        s.digest();
    }
    s.mix_u64(u64::MAX);
    s.mix_u64(0);
    s.draw_secure_felts(5);
    s.draw_u32s();
    s.draw_u32s();
    // Proof of work: the first nonce that grinds 8 bits passes, the one
    // before it fails (at 8 bits and at 9, where it need not pass either).
    let probe = s.channel.clone();
    let nonce = (0u64..).find(|&n| probe.verify_pow_nonce(8, n)).expect("a nonce");
    assert!(s.verify_pow(8, nonce));
    if nonce > 0 {
        assert!(!s.verify_pow(8, nonce - 1));
    }
    s.verify_pow(9, nonce);
    s.verify_pow(0, 12345);
    s.mix_u64(nonce);
    s.digest();
    s.draw_secure_felts(7);

    assert_eq!(run(&s), s.expected);
}

mod merkle {
    use stwo::core::fields::m31::BaseField;
    use stwo::core::vcs_lifted::merkle_hasher::MerkleHasherLifted;
    use stwo::core::vcs_lifted::poseidon252_merkle::Poseidon252MerkleHasher;
    use stwo::core::vcs_lifted::verifier::{MerkleVerificationError, MerkleVerifierLifted};
    use stwo::prover::backend::CpuBackend;
    use stwo::prover::vcs_lifted::prover::MerkleProverLifted;

    use super::*;

    /// A committed tree: its columns, and a decommitment of `queries`.
    #[derive(Clone)]
    struct Opening {
        root: FieldElement,
        log_sizes: Vec<u32>,
        queries: Vec<usize>,
        values: Vec<Vec<BaseField>>,
        witness: Vec<FieldElement>,
    }

    impl Opening {
        fn new(log_sizes: Vec<u32>, n_queries: usize, next: &mut impl FnMut() -> u64) -> Opening {
            let cols: Vec<Vec<BaseField>> = log_sizes
                .iter()
                .map(|&l| (0..1 << l).map(|_| BaseField::from((next() % 0x7fff_ffff) as u32)).collect())
                .collect();
            let height = *log_sizes.iter().max().expect("a column");
            let tree =
                MerkleProverLifted::<CpuBackend, Poseidon252MerkleHasher>::commit(cols.iter().collect(), height, 0);
            let mut queries: Vec<usize> = (0..n_queries).map(|_| (next() % (1 << height)) as usize).collect();
            queries.sort_unstable();
            queries.dedup();
            let (values, decommitment) = tree.decommit(&queries, cols.iter().collect());
            Opening { root: tree.root(), log_sizes, queries, values, witness: decommitment.decommitment.hash_witness }
        }

        fn height(&self) -> u32 {
            *self.log_sizes.iter().max().expect("a column")
        }

        /// Stwo's verdict: 0, or the contract's code for the same error.
        fn stwo_verdict(&self) -> u64 {
            let verifier =
                MerkleVerifierLifted::<Poseidon252MerkleHasher>::new(self.root, self.log_sizes.clone(), None);
            let decommitment = stwo::core::vcs_lifted::verifier::MerkleDecommitmentLifted::<Poseidon252MerkleHasher> {
                hash_witness: self.witness.clone(),
            };
            match verifier.verify(&self.queries, self.values.clone(), decommitment) {
                Ok(()) => 0,
                Err(MerkleVerificationError::WitnessTooShort) => 2,
                Err(MerkleVerificationError::WitnessTooLong) => 3,
                Err(MerkleVerificationError::RootMismatch) => 4,
            }
        }

        fn calldata(&self) -> Vec<Felt> {
            let list = |v: &mut Vec<Felt>, items: Vec<Felt>| {
                v.push(Felt::from(items.len() as u64));
                v.extend(items);
            };
            let mut c = vec![felt(self.root), Felt::from(self.height())];
            list(&mut c, self.log_sizes.iter().map(|&l| Felt::from(l)).collect());
            list(&mut c, self.queries.iter().map(|&q| Felt::from(q as u64)).collect());
            c.push(Felt::from(self.values.len() as u64));
            for col in &self.values {
                list(&mut c, col.iter().map(|v| Felt::from(v.0)).collect());
            }
            list(&mut c, self.witness.iter().map(|&w| felt(w)).collect());
            c
        }
    }

    #[test]
    fn the_chain_verifies_stwo_s_lifted_poseidon252_merkle_decommitments() {
        let side = Chainside::start();
        let contract = side.deploy("StwoMerkle", vec![]);
        let call = |name: &str, calldata: Vec<Felt>| side.call(contract, name, calldata);

        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);

        // Leaves of every length up to two permutations and a remainder.
        for n in 1..=34usize {
            let row: Vec<BaseField> = (0..n).map(|_| BaseField::from((next() % 0x7fff_ffff) as u32)).collect();
            let mut h = Poseidon252MerkleHasher::default();
            h.update_leaf(&row);
            let calldata = std::iter::once(Felt::from(n as u64)).chain(row.iter().map(|v| Felt::from(v.0))).collect();
            assert_eq!(call("leaf_hash", calldata), vec![felt(h.finalize())], "a leaf of {n} words");
        }

        // Trees of one to many columns of mixed sizes (lifted to the
        // largest), opened at a few and at many positions.
        for (n_cols, n_queries) in [(1usize, 1usize), (3, 4), (8, 5), (9, 16), (17, 40), (30, 9)] {
            let log_sizes: Vec<u32> = (0..n_cols).map(|_| 2 + (next() % 5) as u32).collect();
            let honest = Opening::new(log_sizes, n_queries, &mut next);
            let verdict = |o: &Opening| call("verify", o.calldata())[0];
            assert_eq!(honest.stwo_verdict(), 0);
            assert_eq!(verdict(&honest), Felt::ZERO, "{n_cols} columns, {n_queries} queries");

            // Each tampering, judged as Stwo's verifier judges it.
            let mut bad = honest.clone();
            bad.values[n_cols / 2][0] += BaseField::from(1u32);
            assert_eq!(verdict(&bad), Felt::from(bad.stwo_verdict()));
            assert_eq!(bad.stwo_verdict(), 4);
            if !honest.witness.is_empty() {
                let mut bad = honest.clone();
                bad.witness[0] += FieldElement::ONE;
                assert_eq!((verdict(&bad), bad.stwo_verdict()), (Felt::from(4u64), 4));
                bad.witness.pop();
                assert_eq!((verdict(&bad), bad.stwo_verdict()), (Felt::from(2u64), 2));
            }
            let mut bad = honest.clone();
            bad.witness.push(FieldElement::ONE);
            assert_eq!((verdict(&bad), bad.stwo_verdict()), (Felt::from(3u64), 3));
            // A position outside the tree is refused before any hashing.
            let mut bad = honest.clone();
            *bad.queries.last_mut().expect("a query") = 1 << honest.height();
            assert_eq!(verdict(&bad), Felt::ONE);
        }
    }
}

mod fri {
    use stwo::core::fields::m31::BaseField;
    use stwo::core::fri::{CirclePolyDegreeBound, FriConfig, FriProof, FriVerificationError, FriVerifier};
    use stwo::core::poly::circle::CanonicCoset;
    use stwo::core::vcs_lifted::poseidon252_merkle::Poseidon252MerkleHasher;
    use stwo::prover::backend::cpu::CpuCirclePoly;
    use stwo::prover::backend::CpuBackend;
    use stwo::prover::fri::FriProver;
    use stwo::prover::poly::circle::{PolyOps, SecureEvaluation};
    use stwo::prover::poly::BitReversedOrder;
    use stwo::prover::secure_column::SecureColumnByCoords;

    use super::*;

    const LOG_BLOWUP: u32 = 2;
    const LOG_LAST_LAYER: u32 = 1;

    type Proof = FriProof<Poseidon252MerkleHasher>;

    /// A FRI proof of a random QM31 column of degree below `2^log_degree`,
    /// made by Stwo's prover on a fresh channel, and the column's values at
    /// the queries that channel drew.
    fn prove(
        log_degree: u32,
        fold_step: u32,
        n_queries: usize,
        next: &mut impl FnMut() -> u64,
    ) -> (FriConfig, Proof, Vec<SecureField>) {
        let config = FriConfig::new(LOG_LAST_LAYER, LOG_BLOWUP, n_queries, fold_step);
        let domain = CanonicCoset::new(log_degree + LOG_BLOWUP).circle_domain();
        let columns = std::array::from_fn(|_| {
            let coeffs = (0..1 << log_degree).map(|_| BaseField::from((next() % 0x7fff_ffff) as u32)).collect();
            CpuCirclePoly::new(coeffs).evaluate(domain).values
        });
        let column = SecureEvaluation::<CpuBackend, BitReversedOrder>::new(domain, SecureColumnByCoords { columns });
        let twiddles = CpuBackend::precompute_twiddles(domain.half_coset);
        let mut channel = Poseidon252Channel::default();
        let prover =
            FriProver::<CpuBackend, Poseidon252MerkleChannel>::commit(&mut channel, config, &column, &twiddles);
        let result = prover.decommit(&mut channel);
        let evals = result.query_positions.iter().map(|&p| column.at(p)).collect();
        (config, result.fri_proof.proof, evals)
    }

    /// Stwo's verdict on a fresh channel: 0, or the contract's code.
    fn stwo_verdict(config: FriConfig, log_degree: u32, proof: &Proof, evals: &[SecureField]) -> u64 {
        let mut channel = Poseidon252Channel::default();
        let result = FriVerifier::<Poseidon252MerkleChannel>::commit(
            &mut channel,
            config,
            proof.clone(),
            CirclePolyDegreeBound::new(log_degree),
        )
        .and_then(|mut v| {
            v.sample_query_positions(&mut channel);
            v.decommit(evals.to_vec())
        });
        match result {
            Ok(()) => 0,
            Err(FriVerificationError::InvalidNumFriLayers) => 1,
            Err(FriVerificationError::FirstLayerEvaluationsInvalid) => 2,
            Err(FriVerificationError::FirstLayerCommitmentInvalid { .. }) => 3,
            Err(FriVerificationError::InnerLayerCommitmentInvalid { .. }) => 4,
            Err(FriVerificationError::InnerLayerEvaluationsInvalid { .. }) => 5,
            Err(FriVerificationError::LastLayerDegreeInvalid) => 6,
            Err(FriVerificationError::LastLayerEvaluationsInvalid) => 7,
        }
    }

    fn calldata(config: FriConfig, log_degree: u32, proof: &Proof, evals: &[SecureField]) -> Vec<Felt> {
        let mut c: Vec<Felt> = [
            config.log_blowup_factor,
            config.log_last_layer_degree_bound,
            config.n_queries as u32,
            config.fold_step,
            log_degree,
        ]
        .into_iter()
        .map(Felt::from)
        .collect();
        c.extend(fri_proof_calldata(proof));
        c.extend(qm31s_calldata(evals));
        c
    }

    #[test]
    fn the_chain_verifies_stwo_s_fri_proofs_and_rejects_tampered_ones() {
        let side = Chainside::start();
        let contract = side.deploy("StwoFri", vec![]);
        let verdict = |config: FriConfig, log_degree: u32, proof: &Proof, evals: &[SecureField]| -> u64 {
            let out = side.call(contract, "verify", calldata(config, log_degree, proof, evals));
            let v = out[0].to_bytes_le();
            u64::from_le_bytes(v[..8].try_into().expect("eight bytes"))
        };

        let mut next = xorshift(0x1234_5678_9abc_def1u64);
        // Fold steps 1 to 3 (3 is the project's), with and without packed
        // leaves, and a last inner layer that folds less than the step.
        for (log_degree, fold_step, n_queries) in
            [(3u32, 1u32, 3usize), (5, 2, 4), (6, 3, 5), (8, 3, 8), (9, 2, 6), (10, 3, 12)]
        {
            let (config, proof, evals) = prove(log_degree, fold_step, n_queries, &mut next);
            let case = format!("degree 2^{log_degree}, fold step {fold_step}");
            assert_eq!(stwo_verdict(config, log_degree, &proof, &evals), 0, "{case}");
            assert_eq!(verdict(config, log_degree, &proof, &evals), 0, "{case}: the honest proof");

            // Each tampering, judged as Stwo's verifier judges it.
            let mut tampered: Vec<(&str, Proof, Vec<SecureField>)> = Vec::new();
            let mut e = evals.clone();
            e[0] += SecureField::from(BaseField::from(1u32));
            tampered.push(("a first-layer value", proof.clone(), e));
            if !proof.first_layer.fri_witness.is_empty() {
                let mut p = proof.clone();
                p.first_layer.fri_witness[0] += SecureField::from(BaseField::from(1u32));
                tampered.push(("a first-layer witness value", p.clone(), evals.clone()));
                p.first_layer.fri_witness.pop();
                tampered.push(("a first-layer witness value too few", p, evals.clone()));
            }
            let mut p = proof.clone();
            p.first_layer.fri_witness.push(SecureField::from(BaseField::from(7u32)));
            tampered.push(("a first-layer witness value too many", p, evals.clone()));
            if let Some(last) = proof.inner_layers.last() {
                if !last.fri_witness.is_empty() {
                    let mut p = proof.clone();
                    let l = p.inner_layers.len() - 1;
                    p.inner_layers[l].fri_witness[0] += SecureField::from(BaseField::from(1u32));
                    tampered.push(("an inner-layer witness value", p, evals.clone()));
                }
                let mut p = proof.clone();
                p.inner_layers.pop();
                tampered.push(("an inner layer left out", p, evals.clone()));
                let mut p = proof.clone();
                p.inner_layers.push(last.clone());
                tampered.push(("an inner layer repeated", p, evals.clone()));
            }
            let mut p = proof.clone();
            p.first_layer.commitment += FieldElement::ONE;
            tampered.push(("the first layer's root", p, evals.clone()));
            for (what, p, e) in &tampered {
                let want = stwo_verdict(config, log_degree, p, e);
                assert_ne!(want, 0, "{case}: Stwo accepts {what}");
                assert_eq!(verdict(config, log_degree, p, e), want, "{case}: {what}");
            }
        }
    }
}

mod pcs {
    use stwo::core::circle::CirclePoint;
    use stwo::core::fields::m31::BaseField;
    use stwo::core::fri::FriConfig;
    use stwo::core::pcs::quotients::CommitmentSchemeProof;
    use stwo::core::pcs::{CommitmentSchemeVerifier, PcsConfig, TreeVec};
    use stwo::core::poly::circle::CanonicCoset;
    use stwo::core::vcs_lifted::poseidon252_merkle::Poseidon252MerkleHasher;
    use stwo::core::verifier::VerificationError;
    use stwo::prover::backend::cpu::CpuCirclePoly;
    use stwo::prover::backend::CpuBackend;
    use stwo::prover::poly::circle::PolyOps;
    use stwo::prover::CommitmentSchemeProver;

    use super::*;

    type Proof = CommitmentSchemeProof<Poseidon252MerkleHasher>;
    type Points = TreeVec<Vec<Vec<CirclePoint<SecureField>>>>;

    /// Stwo's verdict: 0, or the contract's code.
    fn stwo_verdict(config: PcsConfig, sizes: &[Vec<u32>], points: &Points, proof: &Proof) -> u64 {
        let mut channel = Poseidon252Channel::default();
        let mut verifier = CommitmentSchemeVerifier::<Poseidon252MerkleChannel>::new(config);
        for (root, sizes) in proof.commitments.iter().zip(sizes) {
            verifier.commit(*root, sizes, &mut channel);
        }
        match verifier.verify_values(points.clone(), proof.clone(), &mut channel) {
            Ok(()) => 0,
            Err(VerificationError::InvalidStructure(_)) => 1,
            Err(VerificationError::ProofOfWork) => 2,
            Err(VerificationError::Merkle(_)) => 3,
            Err(VerificationError::Fri(_)) => 4,
            Err(VerificationError::OodsNotMatching) => 99,
        }
    }

    fn calldata(config: PcsConfig, sizes: &[Vec<u32>], points: &Points, proof: &Proof) -> Vec<Felt> {
        let n = |k: usize| Felt::from(k as u64);
        let mut c = pcs_config_calldata(&config);
        c.push(n(proof.commitments.len()));
        c.extend(proof.commitments.iter().map(|&r| felt(r)));
        c.push(n(sizes.len()));
        for s in sizes {
            c.push(n(s.len()));
            c.extend(s.iter().map(|&l| Felt::from(l)));
        }
        c.push(n(points.len()));
        for tree in points.iter() {
            c.push(n(tree.len()));
            for col in tree {
                c.push(n(col.len()));
                for p in col {
                    c.extend(qm31(&p.x));
                    c.extend(qm31(&p.y));
                }
            }
        }
        c.extend(pcs_proof_calldata(proof));
        c
    }

    #[test]
    fn the_chain_verifies_stwo_s_commitment_scheme_openings() {
        let side = Chainside::start();
        let contract = side.deploy("StwoPcs", vec![]);
        let verdict = |config: PcsConfig, sizes: &[Vec<u32>], points: &Points, proof: &Proof| -> u64 {
            let out = side.call(contract, "verify", calldata(config, sizes, points, proof));
            let v = out[0].to_bytes_le();
            u64::from_le_bytes(v[..8].try_into().expect("eight bytes"))
        };

        let mut next = xorshift(0x0bad_cafe_f00d_1234u64);
        // Points drawn as Stwo draws the OODS point, from a channel of their own.
        let mut point_channel = Poseidon252Channel::default();
        point_channel.mix_u64(7);
        let mut point = || CirclePoint::<SecureField>::get_random_point(&mut point_channel);

        // An empty preprocessed tree (as in our proofs), a trace tree of
        // mixed sizes with one- and two-point samples (a mask reaching the
        // previous row), and a tree of the composition's eight columns.
        for (fold_step, n_queries, max_log) in [(1u32, 4usize, 4u32), (3, 9, 6), (2, 6, 7)] {
            let config = PcsConfig {
                pow_bits: 6,
                fri_config: FriConfig::new(1, 2, n_queries, fold_step),
                lifting_log_size: None,
            };
            let sizes: Vec<Vec<u32>> = vec![vec![], vec![max_log - 2, max_log, max_log - 1, max_log], vec![max_log; 8]];
            let twiddles = CpuBackend::precompute_twiddles(CanonicCoset::new(max_log + 3).circle_domain().half_coset);
            let mut channel = Poseidon252Channel::default();
            let mut scheme = CommitmentSchemeProver::<CpuBackend, Poseidon252MerkleChannel>::new(config, &twiddles);
            for tree in &sizes {
                let mut builder = scheme.tree_builder();
                builder.extend_polys(tree.iter().map(|&l| {
                    CpuCirclePoly::new((0..1 << l).map(|_| BaseField::from((next() % 0x7fff_ffff) as u32)).collect())
                }));
                builder.commit(&mut channel);
            }
            let oods = point();
            let points: Points = TreeVec(
                sizes
                    .iter()
                    .enumerate()
                    .map(|(t, tree)| {
                        tree.iter()
                            .enumerate()
                            .map(|(c, _)| if t == 1 && c % 2 == 1 { vec![point(), oods] } else { vec![oods] })
                            .collect()
                    })
                    .collect(),
            );
            let proof = scheme.prove_values(points.clone(), &mut channel).proof;
            let case = format!("fold step {fold_step}, {n_queries} queries, columns up to 2^{max_log}");
            assert_eq!(stwo_verdict(config, &sizes, &points, &proof), 0, "{case}");
            assert_eq!(verdict(config, &sizes, &points, &proof), 0, "{case}: the honest opening");

            let one = SecureField::from(BaseField::from(1u32));
            let mut tampered: Vec<(&str, Proof)> = Vec::new();
            let mut p = proof.clone();
            p.sampled_values[1][1][0] += one;
            tampered.push(("a sampled value", p));
            let mut p = proof.clone();
            p.sampled_values[2][7][0] += one;
            tampered.push(("a composition column's sampled value", p));
            let mut p = proof.clone();
            p.queried_values[1][2][0] += BaseField::from(1u32);
            tampered.push(("a queried value", p));
            let mut p = proof.clone();
            p.decommitments[2].hash_witness[0] += FieldElement::ONE;
            tampered.push(("a decommitment hash", p));
            let mut p = proof.clone();
            p.proof_of_work = (0u64..)
                .find(|&n| {
                    let mut q = proof.clone();
                    q.proof_of_work = n;
                    stwo_verdict(config, &sizes, &points, &q) == 2
                })
                .expect("a nonce that does not grind");
            tampered.push(("the proof of work", p));
            let mut p = proof.clone();
            p.fri_proof.last_layer_poly[0] += one;
            tampered.push(("FRI's last layer", p));
            for (what, p) in &tampered {
                let want = stwo_verdict(config, &sizes, &points, p);
                assert_ne!(want, 0, "{case}: Stwo accepts {what}");
                assert_eq!(verdict(config, &sizes, &points, p), want, "{case}: {what}");
            }
            // Sample points other than those the values were sampled at.
            let mut moved = points.clone();
            moved.0[1][0][0] = point();
            let want = stwo_verdict(config, &sizes, &moved, &proof);
            assert_ne!(want, 0, "{case}: Stwo accepts moved sample points");
            assert_eq!(verdict(config, &sizes, &moved, &proof), want, "{case}: moved sample points");
        }
    }
}

mod stark {
    use stwo::core::air::Component;
    use stwo::core::fields::m31::BaseField;
    use stwo::core::fri::FriConfig;
    use stwo::core::pcs::{CommitmentSchemeVerifier, PcsConfig};
    use stwo::core::poly::circle::CanonicCoset;
    use stwo::core::proof::StarkProof;
    use stwo::core::vcs_lifted::poseidon252_merkle::Poseidon252MerkleHasher;
    use stwo::core::verifier::{verify, VerificationError};
    use stwo::prover::backend::simd::column::BaseColumn;
    use stwo::prover::backend::simd::SimdBackend;
    use stwo::prover::poly::circle::{CircleEvaluation, PolyOps};
    use stwo::prover::poly::BitReversedOrder;
    use stwo::prover::{prove, CommitmentSchemeProver};
    use stwo_constraint_framework::{EvalAtRow, FrameworkComponent, FrameworkEval, TraceLocationAllocator};

    use super::*;

    type Proof = StarkProof<Poseidon252MerkleHasher>;

    /// The contract's test component: `c[i] = c[i-2]^2 + c[i-1]^2`.
    #[derive(Clone)]
    struct Squares {
        log_size: u32,
        n: usize,
    }

    impl FrameworkEval for Squares {
        fn log_size(&self) -> u32 {
            self.log_size
        }
        fn max_constraint_log_degree_bound(&self) -> u32 {
            self.log_size + 1
        }
        fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
            let c: Vec<E::F> = (0..self.n).map(|_| eval.next_trace_mask()).collect();
            for i in 2..self.n {
                eval.add_constraint(
                    c[i].clone() - (c[i - 2].clone() * c[i - 2].clone() + c[i - 1].clone() * c[i - 1].clone()),
                );
            }
            eval
        }
    }

    /// A proof of the component over a random trace.
    fn prove_squares(
        config: PcsConfig,
        squares: &Squares,
        next: &mut impl FnMut() -> u64,
    ) -> (Proof, FrameworkComponent<Squares>) {
        let rows = 1usize << squares.log_size;
        let mut cols: Vec<Vec<BaseField>> = vec![Vec::with_capacity(rows); squares.n];
        for _ in 0..rows {
            let (mut a, mut b) =
                (BaseField::from((next() % 0x7fff_ffff) as u32), BaseField::from((next() % 0x7fff_ffff) as u32));
            cols[0].push(a);
            cols[1].push(b);
            for col in cols.iter_mut().skip(2) {
                let c = a * a + b * b;
                col.push(c);
                (a, b) = (b, c);
            }
        }
        let domain = CanonicCoset::new(squares.log_size).circle_domain();
        let trace = cols
            .into_iter()
            .map(|c| {
                CircleEvaluation::<SimdBackend, BaseField, BitReversedOrder>::new(domain, BaseColumn::from_iter(c))
            })
            .collect::<Vec<_>>();
        let twiddles = SimdBackend::precompute_twiddles(
            CanonicCoset::new(squares.log_size + 1 + config.fri_config.log_blowup_factor).circle_domain().half_coset,
        );
        let mut channel = Poseidon252Channel::default();
        let mut scheme = CommitmentSchemeProver::<SimdBackend, Poseidon252MerkleChannel>::new(config, &twiddles);
        scheme.tree_builder().commit(&mut channel);
        let mut builder = scheme.tree_builder();
        builder.extend_evals(trace);
        builder.commit(&mut channel);
        let component = FrameworkComponent::new(
            &mut TraceLocationAllocator::default(),
            squares.clone(),
            SecureField::from(BaseField::from(0u32)),
        );
        let proof =
            prove::<SimdBackend, Poseidon252MerkleChannel>(&[&component], &mut channel, scheme).expect("proves");
        (proof, component)
    }

    /// Stwo's verdict: 0, or the contract's code.
    fn stwo_verdict(config: PcsConfig, component: &FrameworkComponent<Squares>, proof: &Proof) -> u64 {
        let mut channel = Poseidon252Channel::default();
        let mut verifier = CommitmentSchemeVerifier::<Poseidon252MerkleChannel>::new(config);
        let sizes = component.trace_log_degree_bounds();
        verifier.commit(proof.0.commitments[0], &sizes[0], &mut channel);
        verifier.commit(proof.0.commitments[1], &sizes[1], &mut channel);
        match verify(&[component], &mut channel, &mut verifier, proof.clone()) {
            Ok(()) => 0,
            Err(VerificationError::InvalidStructure(_)) => 1,
            Err(VerificationError::OodsNotMatching) => 2,
            Err(_) => 3,
        }
    }

    fn calldata(config: PcsConfig, squares: &Squares, proof: &Proof) -> Vec<Felt> {
        let mut c = pcs_config_calldata(&config);
        c.extend([squares.log_size, squares.n as u32].map(Felt::from));
        c.push(Felt::from(proof.0.commitments.len() as u64));
        c.extend(proof.0.commitments.iter().map(|&r| felt(r)));
        c.extend(bitsage_settle::onchain::pcs_proof_calldata(&proof.0));
        c
    }

    #[test]
    fn the_chain_verifies_a_stwo_stark_proof_end_to_end() {
        let side = Chainside::start();
        let (rt, chain, wallet) = (&side.rt, &side.chain, &side.wallet);
        let contract = side.deploy("StwoStark", vec![]);
        let verdict = |config: PcsConfig, squares: &Squares, proof: &Proof| -> u64 {
            let out = side.call(contract, "verify_squares", calldata(config, squares, proof));
            let v = out[0].to_bytes_le();
            u64::from_le_bytes(v[..8].try_into().expect("eight bytes"))
        };

        let mut next = xorshift(0x5eed_0f_5ca1_ab1eu64);
        // The project's FRI settings (blowup 4, fold step 3) with fewer
        // queries, and fold step 1 beside them.
        for (log_size, n, fold_step, n_queries) in [(5u32, 4usize, 3u32, 8usize), (6, 7, 1, 5), (8, 5, 3, 12)] {
            let config = PcsConfig {
                pow_bits: 8,
                fri_config: FriConfig::new(0, 2, n_queries, fold_step),
                lifting_log_size: None,
            };
            let squares = Squares { log_size, n };
            let case = format!("{n} columns of 2^{log_size} rows, fold step {fold_step}");
            let (proof, component) = prove_squares(config, &squares, &mut next);
            assert_eq!(stwo_verdict(config, &component, &proof), 0, "{case}");
            assert_eq!(verdict(config, &squares, &proof), 0, "{case}: the honest proof");
            // The same verification as a transaction, within a block's limits.
            let calls = calldata(config, &squares, &proof);
            let n_felts = calls.len();
            let tx = rt
                .block_on(wallet.invoke(vec![Wallet::call(contract, "verify_squares", calls)]))
                .expect("the verification runs in a transaction");
            let cost = rt.block_on(chain.tx_cost(tx)).expect("its cost");
            assert!(cost.l2_gas > 0, "{case}: {cost:?}");
            eprintln!("{case}: {n_felts} felts of calldata, {} L2 gas, fee {} fri", cost.l2_gas, cost.fee);

            let one = SecureField::from(BaseField::from(1u32));
            let mut tampered: Vec<(&str, Proof)> = Vec::new();
            let mut p = proof.clone();
            p.0.sampled_values[1][n - 1][0] += one;
            tampered.push(("a trace value at the out-of-domain point", p));
            let mut p = proof.clone();
            p.0.sampled_values[2][3][0] += one;
            tampered.push(("a composition value at the out-of-domain point", p));
            let mut p = proof.clone();
            p.0.queried_values[1][0][1] += BaseField::from(1u32);
            tampered.push(("a queried trace value", p));
            let mut p = proof.clone();
            p.0.commitments[1] += FieldElement::ONE;
            tampered.push(("the trace root", p));
            for (what, p) in &tampered {
                let want = stwo_verdict(config, &component, p);
                assert_ne!(want, 0, "{case}: Stwo accepts {what}");
                assert_eq!(verdict(config, &squares, p), want, "{case}: {what}");
            }
        }
    }
}

mod air {
    use std::path::PathBuf;

    use bitsage_air::cairo::{generate, module_file, CairoComponent};
    use bitsage_air::cpu::CpuEval;
    use bitsage_air::hash::HashEval;
    use bitsage_air::memory::MemEval;
    use bitsage_air::range::RangeEval;
    use bitsage_air::relations::Relations;
    use bitsage_air::rom::RomEval;
    use stwo::core::air::accumulation::PointEvaluationAccumulator;
    use stwo::core::air::Component;
    use stwo::core::circle::CirclePoint;
    use stwo::core::constraints::coset_vanishing;
    use stwo::core::fields::m31::BaseField;
    use stwo::core::fields::FieldExpOps;
    use stwo::core::pcs::TreeVec;
    use stwo::core::poly::circle::CanonicCoset;
    use stwo_constraint_framework::{FrameworkComponent, FrameworkEval, InfoEvaluator, TraceLocationAllocator};

    use super::*;

    fn regenerate_requested() -> bool {
        std::env::var_os("BITSAGE_REGENERATE_CAIRO").is_some()
    }

    fn stwo_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../contracts/src/stwo")
    }

    #[test]
    fn the_committed_cairo_is_the_one_generated_from_the_air() {
        let components = generate();
        let mut files: Vec<(String, String)> = components.iter().flat_map(|c| c.files.clone()).collect();
        files.push(("air.cairo".into(), module_file(&components)));
        // No file is left from an earlier generation.
        let generated: std::collections::BTreeSet<String> = files.iter().map(|(f, _)| f.clone()).collect();
        for entry in std::fs::read_dir(stwo_dir().join("air")).into_iter().flatten().flatten() {
            let f = format!("air/{}", entry.file_name().to_string_lossy());
            if regenerate_requested() && !generated.contains(&f) {
                std::fs::remove_file(entry.path()).expect("removes a stale file");
            } else {
                assert!(generated.contains(&f), "{f} is no longer generated: remove it (or regenerate)");
            }
        }
        let regenerate = regenerate_requested();
        for (file, text) in files {
            let path = stwo_dir().join(&file);
            if regenerate {
                std::fs::create_dir_all(path.parent().expect("a folder")).expect("creates the folder");
                std::fs::write(&path, &text).expect("writes");
                continue;
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == text,
                "{} is stale: the AIR changed. Regenerate it with \
                 BITSAGE_REGENERATE_CAIRO=1 cargo test -p bitsage-tests --test all onchain::air",
                path.display()
            );
        }
    }

    /// A QM31 as the contracts' `QM31` decodes it.
    fn q(v: SecureField) -> [Felt; 4] {
        v.to_m31_array().map(|m| Felt::from(m.0))
    }

    /// Stwo's own evaluation of `eval`'s constraints at a random point, with
    /// random mask values, and the contract's evaluation of the same.
    fn check<E: FrameworkEval + Clone>(
        side: &Chainside,
        contract: Felt,
        generated: &CairoComponent,
        eval: E,
        rels: &Relations,
        next: &mut impl FnMut() -> u64,
    ) {
        let mut rand_qm31 = || {
            let mut m = || BaseField::from((next() % 0x7fff_ffff) as u32);
            SecureField::from_m31_array([m(), m(), m(), m()])
        };
        let log_size = eval.log_size();
        let offsets: TreeVec<Vec<Vec<isize>>> = eval.evaluate(InfoEvaluator::empty()).mask_offsets;
        let mask: TreeVec<Vec<Vec<SecureField>>> = TreeVec(
            offsets
                .iter()
                .map(|tree| tree.iter().map(|col| col.iter().map(|_| rand_qm31()).collect()).collect())
                .collect(),
        );
        // The on-chain verifier reads a component's sampled values as its
        // evaluator's masks in (tree, column, sample) order and places the
        // samples by the generated layout: that is the framework's own mask
        // layout only if each column's offsets are sampled in increasing
        // order and every column of the main and interaction trees is read.
        for tree in [1usize, 2] {
            let generated_cols: Vec<Vec<isize>> = (0..offsets[tree].len())
                .map(|c| generated.masks.iter().filter(|m| m.0 == tree && m.1 == c).map(|m| m.2).collect())
                .collect();
            assert_eq!(generated_cols, offsets[tree], "{}: tree {tree}'s generated layout", generated.name);
        }
        assert_eq!(
            generated.masks.len(),
            offsets.iter().flatten().map(|c| c.len()).sum::<usize>(),
            "{}: masks outside the main and interaction trees",
            generated.name
        );
        let claimed_sum = rand_qm31();
        let random_coeff = rand_qm31();
        let mut ch = Poseidon252Channel::default();
        ch.mix_u64(next());
        let point = CirclePoint::<SecureField>::get_random_point(&mut ch);
        let max_log_degree_bound = log_size + 1;
        let component = FrameworkComponent::new(&mut TraceLocationAllocator::default(), eval, claimed_sum);
        let mut acc = PointEvaluationAccumulator::new(random_coeff);
        component.evaluate_constraint_quotients_at_point(point, &mask, &mut acc, max_log_degree_bound);
        let expected = acc.finalize();

        // The generated function's inputs, from the same values.
        let masks: Vec<SecureField> = generated
            .masks
            .iter()
            .map(|&(tree, col, off)| {
                let k = offsets[tree][col].iter().position(|&o| o == off).expect("an offset the column has");
                mask[tree][col][k]
            })
            .collect();
        let base: Vec<SecureField> = generated
            .base_params
            .iter()
            .map(|p| {
                assert_eq!(p, "column_size", "an unknown base parameter");
                SecureField::from(BaseField::from(1u32 << log_size))
            })
            .collect();
        let words =
            bitsage_cuda::codegen::bind_ext(&generated.ext_params, &rels.elements(), claimed_sum).expect("binds");
        let ext: Vec<SecureField> = words
            .chunks_exact(4)
            .map(|w| SecureField::from_m31_array([w[0], w[1], w[2], w[3]].map(BaseField::from)))
            .collect();
        let denom_inverse = coset_vanishing(CanonicCoset::new(max_log_degree_bound).coset, point).inverse();
        let list = |vs: &[SecureField]| {
            std::iter::once(Felt::from(vs.len() as u64)).chain(vs.iter().flat_map(|&v| q(v))).collect::<Vec<_>>()
        };
        let mut calldata = list(&masks);
        calldata.extend(list(&base));
        calldata.extend(list(&ext));
        calldata.extend(q(random_coeff));
        calldata.extend(q(denom_inverse));
        let out = side.call(contract, "eval", calldata);
        assert_eq!(out, q(expected).to_vec(), "{}: the chain's evaluation differs from Stwo's", generated.name);
    }

    #[test]
    fn the_chain_evaluates_every_component_s_constraints_as_stwo_does() {
        let side = Chainside::start();
        let mut next = xorshift(0xa1a1_b2b2_c3c3_d4d4u64);
        let mut ch = Poseidon252Channel::default();
        ch.mix_u64(42);
        let rels = Relations::draw(&mut ch);
        let log_size = 6;
        for generated in generate() {
            let class_name = format!("Air{}{}", generated.name[..1].to_uppercase(), &generated.name[1..]);
            // A split component: its parts declared, their class hashes given to its evaluator.
            let parts: Vec<Felt> =
                (0..generated.n_parts).map(|p| side.declare(&format!("{class_name}Part{p}"))).collect();
            let args = if parts.is_empty() {
                vec![]
            } else {
                std::iter::once(Felt::from(parts.len() as u64)).chain(parts.iter().copied()).collect()
            };
            let contract = side.deploy(&class_name, args);
            let r = || rels.clone();
            for _ in 0..2 {
                match generated.name.as_str() {
                    "cpu" => check(&side, contract, &generated, CpuEval { log_size, rels: r() }, &rels, &mut next),
                    "rom" => check(&side, contract, &generated, RomEval { log_size, rels: r() }, &rels, &mut next),
                    "memory" => check(&side, contract, &generated, MemEval { log_size, rels: r() }, &rels, &mut next),
                    "range" => check(&side, contract, &generated, RangeEval { log_size, rels: r() }, &rels, &mut next),
                    "hash" => check(&side, contract, &generated, HashEval { log_size, rels: r() }, &rels, &mut next),
                    other => panic!("no evaluator for component {other}"),
                }
            }
        }
    }
}

mod statement {
    use bitsage_air::relations::Relations;
    use bitsage_air::verify::public_logup_sum;
    use bitsage_prover::ProveOptions;
    use obelysk_vm::{samples, M31};

    use super::*;

    use bitsage_settle::onchain::statement_calldata;

    #[test]
    fn the_chain_mixes_the_statement_and_adds_the_public_logup_terms_as_the_verifier_does() {
        let side = Chainside::start();
        let contract = side.deploy("StwoStatement", vec![]);
        let named = obelysk_vm::asm::assemble(
            ".table a-table-name-longer-than-thirty-one-bytes 0:5 1:7 2:11\n\
             read r1\nlookup r2, a-table-name-longer-than-thirty-one-bytes, r1\nwrite r2\nhalt\n",
        )
        .expect("assembles");
        for (program, input, advice) in [
            (samples::every_opcode_loop(), vec![M31(9)], vec![M31(11)]),
            (samples::mac_loop(), vec![M31(30), M31(3)], vec![]),
            (named, vec![M31(2)], vec![]),
        ] {
            let trace = obelysk_vm::execute(&program, &input, &advice, Default::default()).expect("runs");
            let statement =
                bitsage_tests::statement(&program, &input.iter().map(|w| w.0).collect::<Vec<_>>(), &trace.output);
            let (proof, _) =
                bitsage_prover::prove_poseidon252(&statement, &trace, &ProveOptions::default()).expect("proves");
            let claim = proof.claim;
            let config = statement.security.pcs_config(&claim);

            // The Rust verifier's own transcript and terms.
            let mut ch = Poseidon252Channel::default();
            config.mix_into(&mut ch);
            statement.mix_into(&claim, &mut ch);
            Poseidon252MerkleChannel::mix_root(&mut ch, proof.stark.commitments[0]);
            Poseidon252MerkleChannel::mix_root(&mut ch, proof.stark.commitments[1]);
            let digest = felt(ch.digest());
            let rels = Relations::draw(&mut ch);
            let public = public_logup_sum(&statement, &claim, &rels);
            // The terms are the ones the proof balances against.
            assert_eq!(proof.interaction.total() + public, SecureField::from(BaseField::from(0u32)));

            let mut calldata = pcs_config_calldata(&config);
            calldata.extend(statement_calldata(&statement));
            calldata.extend(claim.words().map(Felt::from));
            calldata.push(Felt::from(2u64));
            calldata.extend([felt(proof.stark.commitments[0]), felt(proof.stark.commitments[1])]);
            let out = side.call(contract, "replay", calldata);

            let program_digest: Vec<Felt> = statement
                .program
                .digest()
                .chunks_exact(4)
                .map(|w| Felt::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]])))
                .collect();
            let mut want = vec![digest];
            want.extend(program_digest);
            want.extend(public.to_m31_array().map(|m| Felt::from(m.0)));
            assert_eq!(
                out,
                want,
                "{} instructions: the chain's transcript or terms differ",
                statement.program.instrs.len()
            );
        }
    }
}

/// The verifier of our proofs put together (`contracts/src/stwo/verifier.cairo`),
/// split over transactions: proofs over the Poseidon252 channel, with and
/// without the hash component, verified on chain step by step within
/// mainnet's per-transaction limits, and every tampering rejected with the
/// Rust verifier's error kind.
mod verifier {
    use bitsage_air::verify::{verify_poseidon252, ChainProof};
    use bitsage_air::{SecurityLevel, Statement};
    use bitsage_prover::{Forgery, ProofStats, ProveOptions};
    use bitsage_settle::chain::{ChainError, StepCost};
    use bitsage_settle::onchain::{statement_key, verdict_code, verdict_of_reason, Split};
    use bitsage_tests::forged;
    use obelysk_vm::{samples, M31};
    use stwo::prover::backend::simd::SimdBackend;

    use super::*;

    /// Mainnet's limits per transaction (blockifier 0.20's versioned
    /// constants 0.14.4): Sierra gas to execute, and calldata felts.
    const MAX_L2_GAS: u64 = 1_110_000_000;
    const MAX_CALLDATA: usize = 5_000;

    /// The Rust verifier's verdict, as the contract numbers it (`verifier::verdict`).
    fn rust_verdict(statement: &Statement, proof: &ChainProof) -> u64 {
        verdict_code(&verify_poseidon252(statement, proof)) as u64
    }

    /// The verifier deployed with the generated evaluators' classes and its
    /// step classes.
    pub(super) fn deploy(side: &Chainside) -> Felt {
        let mut args = vec![Felt::from(4u64)];
        for name in ["AirCpu", "AirRom", "AirMemory", "AirRange"] {
            args.push(side.declare(name));
        }
        let parts = bitsage_air::cairo::generate().into_iter().find(|c| c.name == "hash").expect("hash").n_parts;
        args.push(Felt::from(parts as u64));
        for p in 0..parts {
            args.push(side.declare(&format!("AirHashPart{p}")));
        }
        args.push(side.declare("VerifierTranscript"));
        args.push(side.declare("VerifierSteps"));
        side.deploy("BitsageVerifier", args)
    }

    /// Why a step was refused: the verifier's verdict (`verify failed: NN`),
    /// or another of the contract's reasons.
    #[derive(Debug, PartialEq)]
    pub(super) enum Refused {
        Verdict(u64),
        Reason(String),
    }

    /// Runs `split`'s verification from `wallet`'s account, step by step
    /// (`Wallet::verify_on_chain`).
    pub(super) fn run(
        wallet: &Wallet,
        rt: &tokio::runtime::Runtime,
        contract: Felt,
        split: &Split,
    ) -> Result<Vec<StepCost>, Refused> {
        rt.block_on(wallet.verify_on_chain(contract, split, |_| {})).map_err(|e| match e {
            ChainError::Reverted { reason } => match reason.strip_prefix("verify failed: ") {
                Some(code) => Refused::Verdict(code.parse().unwrap_or(99)),
                None => Refused::Reason(reason),
            },
            other => Refused::Reason(other.to_string()),
        })
    }

    fn is_verified(side: &Chainside, contract: Felt, statement: &Statement) -> bool {
        side.call(contract, "verified_by", vec![statement_key(statement)])[0] != Felt::ZERO
    }

    fn prove(program: &obelysk_vm::Program, input: &[M31], advice: &[M31]) -> (Statement, ChainProof) {
        let trace = obelysk_vm::execute(program, input, advice, Default::default()).expect("runs");
        let statement =
            bitsage_tests::statement(program, &input.iter().map(|w| w.0).collect::<Vec<_>>(), &trace.output);
        let (proof, _) =
            bitsage_prover::prove_poseidon252(&statement, &trace, &ProveOptions::default()).expect("proves");
        (statement, proof)
    }

    #[test]
    fn the_chain_verifies_our_proofs_over_transactions_within_mainnet_s_limits() {
        let side = Chainside::start();
        let contract = deploy(&side);
        for (name, program, input, advice) in [
            ("mac_loop", samples::mac_loop(), vec![M31(30), M31(3)], vec![]),
            ("every_opcode_loop (hash component)", samples::every_opcode_loop(), vec![M31(9)], vec![M31(11)]),
        ] {
            let (statement, proof) = prove(&program, &input, &advice);
            assert_eq!(rust_verdict(&statement, &proof), 0, "{name}");
            let split = Split::new(&statement, &proof);
            assert!(!is_verified(&side, contract, &statement), "{name}: verified before any step");
            let txs = run(&side.wallet, &side.rt, contract, &split)
                .unwrap_or_else(|e| panic!("{name}: the honest proof is refused: {e:?}"));
            assert!(is_verified(&side, contract, &statement), "{name}: not recorded as verified");
            // The session under the proof hash the split computes is finished.
            assert_eq!(side.call(contract, "session", vec![split.proof_hash()]), vec![Felt::ONE], "{name}");
            let total: u64 = txs.iter().map(|t| t.l2_gas).sum();
            eprintln!("{name} ({:?}): {} transactions, {total} L2 gas in all", proof.claim, txs.len());
            for t in &txs {
                eprintln!("  {}: {} felts of calldata, {} L2 gas, fee {} fri", t.step, t.calldata, t.l2_gas, t.fee);
                assert!(t.calldata <= MAX_CALLDATA, "{name}: {} sends {} felts", t.step, t.calldata);
                assert!(t.l2_gas <= MAX_L2_GAS, "{name}: {} spends {} L2 gas", t.step, t.l2_gas);
            }
            // A verified proof cannot be verified again.
            assert_eq!(
                run(&side.wallet, &side.rt, contract, &split).err(),
                Some(Refused::Reason("proof already verified".into())),
                "{name}: a replay"
            );
        }
    }

    #[test]
    fn the_chain_rejects_tampered_and_mixed_proofs_as_the_rust_verifier_does() {
        let side = Chainside::start();
        let contract = deploy(&side);
        let (statement, proof) = prove(&samples::mac_loop(), &[M31(30), M31(3)], &[]);
        let one = SecureField::from(BaseField::from(1u32));
        let mut cases: Vec<(&str, Statement, ChainProof)> = Vec::new();
        let mut case = |what: &'static str, f: &dyn Fn(&mut Statement, &mut ChainProof)| {
            let (mut s, mut p) = (statement.clone(), proof.clone());
            f(&mut s, &mut p);
            cases.push((what, s, p));
        };
        case("an output word", &|s, _| s.output[0] = M31(s.output[0].0 ^ 1));
        case("an input word", &|s, _| s.input[0] = M31(s.input[0].0 + 1));
        case("a non-canonical input word", &|s, _| s.input[0] = M31(0x7fff_ffff));
        case("the CPU's LogUp sum", &|_, p| p.interaction.cpu += one);
        case("a LogUp sum for the absent hash component", &|_, p| {
            p.interaction.hash += one;
            p.interaction.cpu -= one;
        });
        case("a main-trace value at the out-of-domain point", &|_, p| p.stark.0.sampled_values[1][3][0] += one);
        case("a composition value", &|_, p| p.stark.0.sampled_values[3][5][0] += one);
        case("a queried main-trace value", &|_, p| p.stark.0.queried_values[1][7][2] += BaseField::from(1u32));
        case("a queried interaction value", &|_, p| p.stark.0.queried_values[2][0][0] += BaseField::from(1u32));
        case("the last query's composition value", &|_, p| {
            if let Some(v) = p.stark.0.queried_values[3][2].last_mut() {
                *v += BaseField::from(1u32);
            }
        });
        case("a main-trace Merkle witness node", &|_, p| {
            p.stark.0.decommitments[1].hash_witness[0] += FieldElement::ONE
        });
        case("the main root", &|_, p| p.stark.0.commitments[1] += FieldElement::ONE);
        case("the proof of work", &|_, p| p.stark.0.proof_of_work ^= 1);
        case("the last FRI layer", &|_, p| p.stark.0.fri_proof.last_layer_poly[0] += one);
        case("a FRI witness value", &|_, p| p.stark.0.fri_proof.first_layer.fri_witness[0] += one);
        case("the RAM size in the claim", &|_, p| p.claim.ram_words += 1);
        for (what, s, p) in &cases {
            let want = rust_verdict(s, p);
            assert_ne!(want, 0, "Rust accepts {what}");
            let got = run(&side.wallet, &side.rt, contract, &Split::new(s, p));
            assert_eq!(got.err(), Some(Refused::Verdict(want)), "{what}");
            assert!(!is_verified(&side, contract, s), "{what}: recorded as verified");
        }

        // Parts of two proofs mixed: the session of one, a query chunk of
        // another (of the same program, input and size).
        let (other_statement, other) = prove(&samples::mac_loop(), &[M31(30), M31(4)], &[]);
        let (a, b) = (Split::new(&statement, &proof), Split::new(&other_statement, &other));
        let mut mixed = a.clone();
        mixed.chunks[1] = b.chunks[1].clone();
        assert_eq!(
            run(&side.wallet, &side.rt, contract, &mixed).err(),
            Some(Refused::Reason("part differs from committed".into())),
            "a chunk of another proof"
        );
        // The honest proof still verifies after all that.
        run(&side.wallet, &side.rt, contract, &a).expect("the honest proof");
        assert!(is_verified(&side, contract, &statement));
    }

    /// A program longer than a transaction's calldata goes in program parts:
    /// each checked against the program's rules, the digest recomputed
    /// across them, the program table's LogUp terms added, and the sums
    /// balanced after the last. Parts rearranged, dropped, repeated or taken
    /// from another program, even when `begin` commits to them as sent, are
    /// refused with the Rust verifier's verdict for the program they make;
    /// so are FRI layers (a transaction each) dropped or reordered.
    #[test]
    fn a_long_program_goes_in_parts_and_the_parts_must_make_the_stated_program() {
        let side = Chainside::start();
        let contract = deploy(&side);
        let program = |salt: u32| {
            let mut src = String::from(".table sq 0:0 1:1 2:4 3:9\n.table cube 0:0 1:1 2:8\nread r1\n");
            for k in 0..1500u32 {
                src.push_str(["add r2, r2, r1\n", "mul r4, r2, r1\n", "sub r5, r4, r2\n"][((k + salt) % 3) as usize]);
            }
            src.push_str("lookup r3, cube, r1\nwrite r2\nwrite r3\nhalt\n");
            bitsage_tests::asm(&src)
        };
        let (statement, proof) = prove(&program(0), &[M31(2)], &[]);
        let split = Split::new(&statement, &proof);
        assert!(split.program.len() >= 3, "{} program parts", split.program.len());
        assert!(split.too_large().is_none(), "{:?}", split.too_large());

        // Crafted splits, each recommitted by `begin` so that only the
        // program's own checks stand in the way.
        let mut cases: Vec<(&str, Split, u64)> = Vec::new();
        let mut craft = |what: &'static str, want: u64, f: &dyn Fn(&mut Split)| {
            let mut s = split.clone();
            f(&mut s);
            s.recommit();
            cases.push((what, s, want));
        };
        craft("two runs of instructions swapped", 1, &|s| s.program.swap(0, 1));
        craft("the last part (the tables) dropped", 1, &|s| {
            s.program.pop();
        });
        craft("a part sent twice", 5, &|s| {
            let last = s.program.last().cloned().expect("a part");
            s.program.push(last);
        });
        let (other_statement, other_proof) = prove(&program(1), &[M31(2)], &[]);
        let other = Split::new(&other_statement, &other_proof);
        craft("another program's first part", 1, &|s| s.program[0] = other.program[0].clone());
        craft("the tables before the last instructions", 1, &|s| {
            let n = s.program.len();
            s.program.swap(n - 2, n - 1);
        });
        craft("FRI's last layer dropped", 5, &|s| {
            s.fri.pop();
        });
        craft("two FRI layers swapped", 5, &|s| s.fri.swap(0, 1));
        for (what, crafted, want) in &cases {
            assert_eq!(chain_verdict(&side, contract, crafted), *want, "{what} (views)");
            assert_eq!(run(&side.wallet, &side.rt, contract, crafted).err(), Some(Refused::Verdict(*want)), "{what}");
        }
        // Steps out of order: `commit` on the state `begin` returns, with
        // the program parts skipped, is refused.
        let opening = side.call(contract, "check_begin", split.transcript().to_vec());
        let mut c = opening.clone();
        c.extend_from_slice(&split.commit);
        let skipped = side.rt.block_on(side.chain.call(contract, "check_commit", c));
        assert!(
            matches!(&skipped, Err(ChainError::Reverted { reason }) if verdict_of_reason(reason) == Some(1)),
            "{skipped:?}"
        );

        // The honest split: verified, every transaction within mainnet's limits.
        assert!(!is_verified(&side, contract, &statement));
        let txs = run(&side.wallet, &side.rt, contract, &split).expect("the honest long program verifies");
        assert!(is_verified(&side, contract, &statement));
        for t in &txs {
            eprintln!("  {}: {} felts of calldata, {} L2 gas", t.step, t.calldata, t.l2_gas);
            assert!(t.calldata <= MAX_CALLDATA, "{} sends {} felts", t.step, t.calldata);
            assert!(t.l2_gas <= MAX_L2_GAS, "{} spends {} L2 gas", t.step, t.l2_gas);
        }
        assert_eq!(txs.iter().filter(|t| t.step.starts_with("program")).count(), split.program.len());
    }

    /// The escrow pays on a proof the chain verified: no validator, no vote.
    #[test]
    fn the_escrow_pays_the_worker_whose_proof_the_chain_verified() {
        use bitsage_settle::attest::JobSpec;
        use bitsage_settle::chain::{Chain, DeployParams, Deployment, EscrowEvent, JobState, UNIT};
        use bitsage_settle::keystore::WorkerKey;
        use bitsage_tests::devnet::STRK;

        let devnet = Devnet::start(5);
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        for a in &devnet.accounts[..3] {
            devnet.mint(&a.address, 10_000);
        }
        let addr = |k: usize| Felt::from_hex(&devnet.accounts[k].address).expect("address");
        let wallet = |k: usize, d: Option<Deployment>| {
            let chain = Chain::new(&devnet.url, d).expect("chain");
            let key = WorkerKey::from_secret(Felt::from_hex(&devnet.accounts[k].private_key).expect("key"));
            rt.block_on(Wallet::connect(chain, addr(k), &key)).expect("wallet")
        };
        let params = DeployParams {
            token: Felt::from_hex(STRK).expect("token"),
            treasury: addr(3),
            stakers_pool: addr(4),
            unbonding_secs: 100,
            min_validator_stake: 1000 * UNIT,
            slash_amount: 500 * UNIT,
            salt: 7,
        };
        let d = rt.block_on(wallet(0, None).deploy_all(&contracts_dir(), params)).expect("deploys");
        let (worker, client) = (wallet(1, Some(d.clone())), wallet(2, Some(d.clone())));
        let chain = Chain::new(&devnet.url, Some(d.clone())).expect("chain");
        let balance = |who: Felt| rt.block_on(chain.balance_of(d.token, who)).expect("balance");
        // Both staked: the client as a second worker that did not prove.
        rt.block_on(worker.stake(10 * UNIT)).expect("stakes");
        rt.block_on(client.stake(10 * UNIT)).expect("stakes");

        let (statement, proof) = prove(&samples::mac_loop(), &[M31(30), M31(3)], &[]);
        let spec = JobSpec::new([7; 32], &statement.program, &statement.input, statement.security, "job-1");
        let job_id = spec.job_id().expect("job id");
        let deadline = rt.block_on(chain.now()).expect("now") + 3600;
        rt.block_on(client.deposit(&spec, 100 * UNIT, deadline)).expect("deposits");
        let output = bitsage_prover::receipt::words_digest(&statement.output);
        let refused = |r: Result<Felt, ChainError>, reason: &str| match r {
            Err(ChainError::Reverted { reason: got }) => assert_eq!(got, reason),
            other => panic!("wanted {reason:?}, got {other:?}"),
        };

        // Nothing verified yet: no claim pays.
        refused(rt.block_on(worker.claim_verified(job_id, &output)), "no proof verified by caller");
        let steps = run(&worker, &rt, d.verifier, &Split::new(&statement, &proof)).expect("verifies");
        assert_eq!(rt.block_on(chain.verified_by(statement_key(&statement))).expect("verified_by").0, addr(1));
        // Only the prover is paid, and only for the output it proved.
        refused(rt.block_on(client.claim_verified(job_id, &output)), "no proof verified by caller");
        let mut wrong = output;
        wrong[31] ^= 1;
        refused(rt.block_on(worker.claim_verified(job_id, &wrong)), "no proof verified by caller");

        let (w0, t0, p0) = (balance(addr(1)), balance(addr(3)), balance(addr(4)));
        rt.block_on(worker.claim_verified(job_id, &output)).expect("claims");
        assert!(balance(addr(1)) + UNIT > w0 + 80 * UNIT, "the worker got 80 (less its fee)");
        assert_eq!(balance(addr(3)), t0 + 18 * UNIT, "the treasury got 18");
        assert_eq!(balance(addr(4)), p0 + 2 * UNIT, "the stakers' pool got 2");
        assert_eq!(rt.block_on(chain.job(job_id)).expect("job").state, JobState::Paid);
        let events = rt.block_on(chain.escrow_events(d.from_block)).expect("events");
        assert!(
            events.iter().any(|e| matches!(e, EscrowEvent::ProofAccepted { job_id: j, worker: w, .. } if *j == job_id && *w == addr(1))),
            "{events:?}"
        );
        refused(rt.block_on(worker.claim_verified(job_id, &output)), "job not open");
        let total: u64 = steps.iter().map(|s| s.l2_gas).sum();
        eprintln!("paid on a proof verified in {} transactions, {total} L2 gas", steps.len());
    }

    /// The chain's verdict on `split`, from the verifier's views as calls
    /// (`Chain::check_on_chain`): 0 accepted, else the step's verdict.
    fn chain_verdict(side: &Chainside, contract: Felt, split: &Split) -> u64 {
        match side.rt.block_on(side.chain.check_on_chain(contract, split, |_, _| {})) {
            Ok(_) => 0,
            Err(ChainError::Reverted { reason }) => {
                verdict_of_reason(&reason).unwrap_or_else(|| panic!("refused for another reason: {reason}")) as u64
            }
            Err(e) => panic!("the chain did not answer: {e}"),
        }
    }

    /// One value-level change to a proof or its statement, chosen by `pick`
    /// (the proof's shape stays what its claim fixes, so it encodes as
    /// calldata; shape errors are the receipt decoder's and the hostile
    /// receipt suite's). Returns what it changed.
    fn mutate(s: &mut Statement, p: &mut ChainProof, next: &mut impl FnMut() -> u64) -> String {
        let one = SecureField::from(BaseField::from(1u32));
        let mut at = |n: usize| (next() % n.max(1) as u64) as usize;
        let pcs = &mut p.stark.0;
        match at(14) {
            0 => {
                let k = at(s.output.len());
                s.output[k] = M31((s.output[k].0 + 1) % 0x7fff_ffff);
                format!("output word {k}")
            }
            1 => {
                let k = at(s.input.len());
                s.input[k] = M31((s.input[k].0 + 1) % 0x7fff_ffff);
                format!("input word {k}")
            }
            2 => {
                let k = at(s.program.instrs.len());
                s.program.instrs[k].imm = M31((s.program.instrs[k].imm.0 + 1) % 0x7fff_ffff);
                format!("the immediate of instruction {k}")
            }
            3 => {
                let k = at(5);
                let i = &mut p.interaction;
                *[&mut i.cpu, &mut i.rom, &mut i.mem, &mut i.range, &mut i.hash][k] += one;
                format!("LogUp sum {k}")
            }
            4 => {
                let t = 1 + at(pcs.sampled_values.len() - 1);
                let c = at(pcs.sampled_values[t].len());
                let k = at(pcs.sampled_values[t][c].len());
                pcs.sampled_values[t][c][k] += one;
                format!("sampled value {t}/{c}/{k}")
            }
            5 => {
                let t = 1 + at(pcs.queried_values.len() - 1);
                let c = at(pcs.queried_values[t].len());
                let k = at(pcs.queried_values[t][c].len());
                pcs.queried_values[t][c][k] += BaseField::from(1 + at(1000) as u32);
                format!("queried value {t}/{c}/{k}")
            }
            6 => {
                let t = 1 + at(pcs.decommitments.len() - 1);
                let k = at(pcs.decommitments[t].hash_witness.len());
                pcs.decommitments[t].hash_witness[k] += FieldElement::ONE;
                format!("Merkle witness node {t}/{k}")
            }
            7 => {
                let t = at(pcs.commitments.len());
                pcs.commitments[t] += FieldElement::ONE;
                format!("root {t}")
            }
            8 => {
                let b = at(20);
                pcs.proof_of_work ^= 1 << b;
                format!("proof-of-work bit {b}")
            }
            9 => {
                let k = at(pcs.fri_proof.first_layer.fri_witness.len());
                pcs.fri_proof.first_layer.fri_witness[k] += one;
                format!("FRI first-layer witness {k}")
            }
            10 if !pcs.fri_proof.inner_layers.is_empty() => {
                let l = at(pcs.fri_proof.inner_layers.len());
                let layer = &mut pcs.fri_proof.inner_layers[l];
                match at(2) {
                    0 if !layer.fri_witness.is_empty() => {
                        let k = at(layer.fri_witness.len());
                        layer.fri_witness[k] += one;
                        format!("FRI layer {l} witness {k}")
                    }
                    _ => {
                        layer.commitment += FieldElement::ONE;
                        format!("FRI layer {l} root")
                    }
                }
            }
            10 | 11 => {
                let k = at(pcs.fri_proof.last_layer_poly.len());
                pcs.fri_proof.last_layer_poly[k] += one;
                format!("FRI last-layer coefficient {k}")
            }
            12 => {
                s.security = match s.security {
                    SecurityLevel::Bits96 => SecurityLevel::Bits128,
                    SecurityLevel::Bits128 => SecurityLevel::Bits96,
                };
                "the statement's security level".into()
            }
            _ => match at(3) {
                0 => {
                    p.claim.ram_words += 1 + at(4) as u32;
                    "the claim's RAM size".into()
                }
                1 => {
                    p.claim.cpu_log_size += 1;
                    "the claim's CPU size".into()
                }
                _ => {
                    p.claim.range_log_size += 1;
                    "the claim's range-table size".into()
                }
            },
        }
    }

    /// A differential corpus: honest proofs of several programs, each
    /// soundness-suite forgery (proved past the prover's self-check, with and
    /// without the LogUp sums rewritten to balance), and value-level
    /// mutations of the honest ones, at least 200 in all. The chain's verdict
    /// (the deployed verifier's views, as calls) must be the Rust verifier's
    /// on every one, error kind included.
    #[test]
    fn the_chain_and_the_rust_verifier_agree_on_a_corpus_of_valid_and_invalid_proofs() {
        let side = Chainside::start();
        let contract = deploy(&side);
        let mut corpus: Vec<(String, Statement, ChainProof)> = Vec::new();
        let asm = bitsage_tests::asm;
        let honest = [
            ("mac_loop(30, 3)", samples::mac_loop(), vec![M31(30), M31(3)], vec![]),
            ("mac_loop(200, 7)", samples::mac_loop(), vec![M31(200), M31(7)], vec![]),
            ("every_opcode_loop(9)", samples::every_opcode_loop(), vec![M31(9)], vec![M31(11)]),
            ("add", asm("read r1\nread r2\nadd r3, r1, r2\nwrite r3\nhalt\n"), vec![M31(20), M31(22)], vec![]),
            (
                "hash",
                asm("read r1\nstore [r0 + 0], r1\nhash [r0 + 0]\nload r2, [r0 + 1]\nwrite r2\nhalt\n"),
                vec![M31(5)],
                vec![],
            ),
        ];
        let mut bases = Vec::new();
        for (name, program, input, advice) in honest {
            let (s, p) = prove(&program, &input, &advice);
            corpus.push((format!("honest {name}"), s.clone(), p.clone()));
            bases.push((name, s, p));
        }
        for (name, bad) in forged::all() {
            let (s, main) = bad.main();
            for f in [Forgery::SkipCheck, Forgery::SkipCheckAndBalance] {
                let (p, _) = bitsage_prover::prove_main_with::<SimdBackend, Poseidon252MerkleChannel>(
                    s,
                    &main,
                    &ProveOptions::default(),
                    &f,
                    ProofStats::default(),
                )
                .expect("forging never refuses");
                corpus.push((format!("forged ({f:?}): {name}"), s.clone(), p));
            }
        }
        let mut next = xorshift(0x5eed_0019);
        while corpus.len() < 210 {
            let (name, s, p) = &bases[(next() % bases.len() as u64) as usize];
            let (mut s, mut p) = (s.clone(), p.clone());
            let what = mutate(&mut s, &mut p, &mut next);
            corpus.push((format!("{name} with {what} changed"), s, p));
        }

        let mut tally = std::collections::BTreeMap::<u64, usize>::new();
        for (what, s, p) in &corpus {
            let want = rust_verdict(s, p);
            let got = chain_verdict(&side, contract, &Split::new(s, p));
            assert_eq!(got, want, "{what}: the chain says {got}, Rust {want}");
            *tally.entry(want).or_default() += 1;
        }
        eprintln!("{} proofs, by verdict: {tally:?}", corpus.len());
        assert!(corpus.len() >= 200);
        assert_eq!(tally.get(&0), Some(&5), "only the honest proofs are accepted");
        // The corpus reaches every stage of the verifier.
        for stage in [1, 2, 3, 4, 6, 11, 12, 13] {
            assert!(tally.contains_key(&stage), "no proof in the corpus fails with verdict {stage}: {tally:?}");
        }
    }
}
