use bitsage_prover::{prove, ProveOptions, Receipt};
use obelysk_vm::{samples, M31};

#[test]
fn mac_loop_proves_and_verifies() {
    let p = samples::mac_loop();
    let (proof, statement, _) = prove(&p, &[M31(50), M31(3)], &[], &ProveOptions::default()).unwrap();
    assert_eq!(statement.output, vec![samples::mac_loop_expected(50, M31(3))]);
    bitsage_air::verify(&statement, &proof).unwrap();
    let r = Receipt::new(statement, proof);
    let back = Receipt::from_bytes(&r.to_bytes()).unwrap();
    assert_eq!(back.digest, r.digest);
    back.verify().unwrap();
}
