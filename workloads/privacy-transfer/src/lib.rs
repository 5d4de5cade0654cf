//! privacy-transfer: moves `amount` from a sender to a receiver whose
//! balances are hidden behind commitments `C = H(COMMIT; balance, salt)`.
//!
//! Private advice: both balances, their salts, the amount and two fresh
//! salts. Public output: old sender, old receiver, new sender, new receiver
//! commitments (4 words each), nothing else. The program checks:
//! `0 < amount < 2^28`, balances in `[0, 2^28)`, `amount <= sender balance`,
//! and that the receiver's new balance stays below 2^28. See docs/proofs.md for
//! what a proof holder can learn.
use bitsage_guest::gadgets::{write_all, Sponge, DIGEST_WORDS};
use bitsage_guest::prelude::*;

/// Domain tag of balance commitments.
pub const COMMIT: u32 = 1;
/// Balances and amounts are below this.
const BOUND: u32 = 1 << 28;

#[derive(Deserialize)]
struct Account {
    balance: u32,
    salt: [u32; DIGEST_WORDS],
}

#[derive(Deserialize)]
struct NewSalts {
    sender: [u32; DIGEST_WORDS],
    receiver: [u32; DIGEST_WORDS],
}

#[derive(Deserialize)]
struct Input {
    sender: Account,
    receiver: Account,
    amount: u32,
    new_salts: NewSalts,
}

const SPONGE: Sponge = Sponge::at(0);
const SALT: [Reg; DIGEST_WORDS] = [R4, R5, R6, R7];

/// Reads a salt from advice and writes `H(COMMIT; balance, salt)`.
fn commit(p: &mut Program, balance: Reg) {
    for r in SALT {
        p.advice(r);
    }
    SPONGE.hash_words(p, COMMIT, &[balance, R4, R5, R6, R7], SALT, R8);
    write_all(p, &SALT);
}

fn program() -> Program {
    let mut p = Program::new();
    // Old commitments.
    p.advice(R1).assert_range(R8, R1, BOUND);
    commit(&mut p, R1);
    p.advice(R2).assert_range(R8, R2, BOUND);
    commit(&mut p, R2);
    // The amount is positive, in range, and covered by the sender.
    p.advice(R3).assert_range(R8, R3, BOUND).assert_lt(R8, R0, R3);
    p.lt(R8, R1, R3).assert_zero(R8);
    p.sub(R1, R1, R3).add(R2, R2, R3).assert_range(R8, R2, BOUND);
    // New commitments.
    commit(&mut p, R1);
    commit(&mut p, R2);
    p.halt();
    p
}

fn words(ws: &[u32]) -> Result<Vec<M31>, Error> {
    ws.iter()
        .map(|&w| M31::canonical(w).ok_or_else(|| Error::new(format!("salt word {w} is not below 2^31 - 1"))))
        .collect()
}

fn hex_commitment(ws: &[M31]) -> String {
    ws.iter().map(|w| format!("{:08x}", w.value())).collect()
}

fn transfer(input: Input) -> Result<Value, Error> {
    if input.amount == 0 || input.amount > input.sender.balance {
        return Err(Error::new(format!("cannot transfer {} from a balance of {}", input.amount, input.sender.balance)));
    }
    let mut advice = vec![M31::from(input.sender.balance)];
    advice.extend(words(&input.sender.salt)?);
    advice.push(M31::from(input.receiver.balance));
    advice.extend(words(&input.receiver.salt)?);
    advice.push(M31::from(input.amount));
    advice.extend(words(&input.new_salts.sender)?);
    advice.extend(words(&input.new_salts.receiver)?);
    let run = execute(&program(), &[], &advice)?;
    let c: Vec<String> = run.output.chunks(DIGEST_WORDS).map(hex_commitment).collect();
    if c.len() != 4 {
        return Err(Error::new("the VM wrote an unexpected output"));
    }
    Ok(json!({
        "old": { "sender": c[0], "receiver": c[1] },
        "new": { "sender": c[2], "receiver": c[3] },
        "program_digest": run.program_digest,
    }))
}

bitsage_guest::workload!(transfer);
