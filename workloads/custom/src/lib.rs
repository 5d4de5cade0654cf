//! A custom workload: proves `a + b = sum`. Start here; see GUIDE.md.
use bitsage_guest::prelude::*;

fn sum((a, b): (u32, u32)) -> Result<Value, Error> {
    let mut p = Program::new();
    p.read(R1).read(R2).add(R3, R1, R2).write(R3).halt();
    let run = execute(&p, &[a.into(), b.into()], &[])?;
    Ok(json!({ "sum": run.output[0] }))
}

bitsage_guest::workload!(sum);
