//! Writes examples/batch-verify.json: membership proofs for four accounts of
//! a 16-account allowlist. `cargo run -p bitsage-tests --example allowlist`
fn main() -> std::io::Result<()> {
    let accounts: Vec<u32> = (0..16).map(|i| 100_000 + 7919 * i).collect();
    let input = bitsage_tests::merkle::batch_input(&accounts, 4, &[0, 5, 6, 13]);
    let text = serde_json::to_string_pretty(&input).map_err(std::io::Error::other)?;
    std::fs::write("examples/batch-verify.json", text + "\n")?;
    println!("wrote examples/batch-verify.json");
    Ok(())
}
