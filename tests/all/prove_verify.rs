use bitsage_prover::{prove, ProveOptions, Receipt};
use obelysk_vm::{samples, M31};

#[test]
fn mac_loop_proves_and_verifies() {
    let p = samples::mac_loop();
    let (proof, statement, _) = prove(&p, &[M31(50), M31(3)], &[], &ProveOptions::default()).unwrap();
    assert_eq!(statement.output, vec![samples::mac_loop_expected(50, M31(3))]);
    bitsage_air::verify(&statement, &proof).unwrap();
    let r = Receipt::new(statement, proof).unwrap();
    let back = Receipt::from_bytes(&r.to_bytes().unwrap()).unwrap();
    assert_eq!(back.digest, r.digest);
    back.verify().unwrap();
}

#[test]
fn malformed_receipts_get_typed_errors() {
    use bitsage_prover::ReceiptError;
    let p = samples::mac_loop();
    let (proof, statement, _) = prove(&p, &[M31(3), M31(3)], &[], &ProveOptions::default()).unwrap();
    let bytes = Receipt::new(statement, proof).unwrap().to_bytes().unwrap();
    assert!(matches!(Receipt::from_bytes(b"nonsense"), Err(ReceiptError::BadMagic)));
    let mut v = bytes.clone();
    v[8] = 99;
    assert!(matches!(Receipt::from_bytes(&v), Err(ReceiptError::Version(99))));
    for cut in [10, 11, bytes.len() / 2, bytes.len() - 1] {
        assert!(matches!(Receipt::from_bytes(&bytes[..cut]), Err(ReceiptError::Corrupt(_))), "cut at {cut}");
    }
}

#[test]
fn security_128_proves_and_verifies() {
    let p = samples::mac_loop();
    let opts = ProveOptions { security: bitsage_air::SecurityLevel::Bits128, ..Default::default() };
    let (proof, statement, _) = prove(&p, &[M31(20), M31(2)], &[], &opts).unwrap();
    assert_eq!(statement.security.bits(), 128);
    bitsage_air::verify(&statement, &proof).unwrap();
}

#[test]
fn hashes_lookups_and_calls_prove() {
    let src = r#"
        .table relu 0:0 1:1 2:2 2147483646:0 2147483645:0
        read r1
        lookup r2, relu, r1
        store [r0 + 3], r2
        hash [r0 + 0]
        load r4, [r0 + 5]
        jal r15, double
        write r4
        halt
    double:
        add r4, r4, r4
        jr r15
    "#;
    let p = obelysk_vm::asm::assemble(src).unwrap();
    let (proof, statement, _) = prove(&p, &[M31(2)], &[], &ProveOptions::default()).unwrap();
    let mut st = [M31(0); 16];
    st[3] = M31(2);
    obelysk_vm::poseidon2::permute(&mut st);
    assert_eq!(statement.output, vec![st[5] + st[5]]);
    bitsage_air::verify(&statement, &proof).unwrap();
}

#[test]
fn the_proof_size_breakdown_accounts_for_the_proof() {
    use bitsage_air::shape::ProofParts;
    let p = samples::mac_loop();
    let (proof, statement, _) = prove(&p, &[M31(50), M31(3)], &[], &ProveOptions::default()).unwrap();
    let columns: usize = proof.claim.column_log_sizes().iter().map(Vec::len).sum::<usize>() + 8;
    let parts = ProofParts::of(&proof.stark);
    let stark_bytes = bincode::serialize(&proof.stark).unwrap().len();
    // The payload is the encoding less its length prefixes (8 bytes for each
    // column's list of values, a few hundred columns): close below it.
    assert!(parts.total() <= stark_bytes && parts.total() * 100 >= stark_bytes * 90, "{parts:?} vs {stark_bytes}");
    // One word per committed column (the composition's eight included) per
    // distinct queried row.
    let rows = proof.stark.queried_values[1][0].len();
    assert!(rows > 0 && rows <= statement.security.pcs_config(&proof.claim).fri_config.n_queries);
    assert_eq!(parts.queried_values, columns * rows * 4);
}

/// Proofs for the chain: the same statement and AIR over Stwo's Poseidon252
/// Merkle channel. The Rust verifier for that channel accepts them and
/// rejects a changed output, a changed sampled value, a changed queried
/// value and a changed proof of work.
#[test]
fn poseidon252_channel_proofs_verify_and_reject_tampering() {
    use bitsage_air::verify::{verify_poseidon252, VerifyError};
    use stwo::core::fields::m31::BaseField;
    use stwo::core::fields::qm31::SecureField;

    // One program with every opcode (hash included), one without `hash`.
    for (p, input, advice) in [
        (samples::every_opcode_loop(), vec![M31(20)], vec![M31(11)]),
        (samples::mac_loop(), vec![M31(40), M31(3)], vec![]),
    ] {
        let trace = obelysk_vm::execute(&p, &input, &advice, Default::default()).expect("runs");
        let statement = bitsage_tests::statement(&p, &input.iter().map(|w| w.0).collect::<Vec<_>>(), &trace.output);
        let (proof, _) =
            bitsage_prover::prove_poseidon252(&statement, &trace, &ProveOptions::default()).expect("proves");
        verify_poseidon252(&statement, &proof).expect("the honest proof verifies");

        let mut st = statement.clone();
        st.output[0] += M31(1);
        assert!(verify_poseidon252(&st, &proof).is_err(), "a changed output");
        let one = SecureField::from(BaseField::from(1u32));
        let mut p1 = proof.clone();
        p1.stark.0.sampled_values[1][0][0] += one;
        assert!(verify_poseidon252(&statement, &p1).is_err(), "a changed sampled value");
        let mut p2 = proof.clone();
        p2.stark.0.queried_values[1][3][0] += BaseField::from(1u32);
        assert!(verify_poseidon252(&statement, &p2).is_err(), "a changed queried value");
        let mut p3 = proof.clone();
        p3.stark.0.proof_of_work ^= 1;
        assert!(matches!(verify_poseidon252(&statement, &p3), Err(VerifyError::Stark(_))), "a changed proof of work");
    }
}

/// The proof parameters follow from the claim: blowup 16 (20 queries at 96
/// bits) with the hash component, blowup 4 (40) without. A proof made under
/// the other claim kind's parameters, both honest and at the level, is
/// refused: the verifier accepts exactly one setting per (level, claim).
#[test]
fn the_parameters_follow_the_claim_and_no_other_setting_is_accepted() {
    use bitsage_air::statement::{HASH_PROOF_PARAMS, PROOF_PARAMS};
    use bitsage_air::{SecurityLevel, VerifyError};

    let level = SecurityLevel::Bits96;
    for (program, input, advice, hashes) in [
        (samples::every_opcode_loop(), vec![M31(9)], vec![M31(11)], true),
        (samples::mac_loop(), vec![M31(12), M31(3)], vec![], false),
    ] {
        let (proof, statement, _) = prove(&program, &input, &advice, &ProveOptions::default()).unwrap();
        assert_eq!(proof.claim.hash_log_size.is_some(), hashes);
        let (want, other) = if hashes { (HASH_PROOF_PARAMS, PROOF_PARAMS) } else { (PROOF_PARAMS, HASH_PROOF_PARAMS) };
        assert_eq!(proof.stark.config, level.pcs_config_with(want));
        let queries = proof.stark.config.fri_config.n_queries;
        assert_eq!(queries, if hashes { 20 } else { 40 });
        bitsage_air::verify(&statement, &proof).unwrap();

        let opts = ProveOptions { config: Some(level.pcs_config_with(other)), ..ProveOptions::default() };
        let (proof, statement, _) = prove(&program, &input, &advice, &opts).unwrap();
        bitsage_air::verify::verify_with_config(&statement, &proof, &level.pcs_config_with(other)).unwrap();
        assert!(
            matches!(bitsage_air::verify(&statement, &proof), Err(VerifyError::ConfigMismatch)),
            "hashes: {hashes}"
        );
    }
}
