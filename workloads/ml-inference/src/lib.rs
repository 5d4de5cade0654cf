//! ml-inference: proves one forward pass of a quantised MLP on an 8x8 digit.
//!
//! The model (model.json, trained by train.py) is compiled into the VM
//! program as immediates, so the program digest names the model. The image
//! is the public input; the public output is the ten class scores followed
//! by the argmax.
use bitsage_guest::gadgets::select;
use bitsage_guest::prelude::*;

const PIXELS: u32 = 64;
const MAX_PIXEL: u32 = 16;
/// RAM layout: pixels, then hidden activations, then scores.
const HIDDEN_BASE: u32 = PIXELS;

#[derive(Deserialize)]
struct Model {
    hidden: usize,
    classes: usize,
    w1: Vec<Vec<i32>>,
    b1: Vec<i32>,
    w2: Vec<Vec<i32>>,
    b2: Vec<i32>,
}

#[derive(Deserialize)]
struct Input {
    image: Vec<u32>,
}

fn model() -> Result<Model, Error> {
    let m: Model = serde_json::from_str(include_str!("../model.json"))?;
    let shapes_ok = m.w1.len() == m.hidden
        && m.w1.iter().all(|r| r.len() == PIXELS as usize)
        && m.b1.len() == m.hidden
        && m.w2.len() == m.classes
        && m.w2.iter().all(|r| r.len() == m.hidden)
        && m.b2.len() == m.classes;
    if !shapes_ok {
        return Err(Error::new("model.json has inconsistent shapes"));
    }
    Ok(m)
}

/// The VM program: a forward pass with the weights as immediates.
fn program(m: &Model) -> Program {
    let score_base = HIDDEN_BASE + m.hidden as u32;
    let mut p = Program::new();
    // Public input -> RAM[0..64].
    p.repeat(R9, PIXELS, |p| {
        p.read(R1).store(R2, 0, R1).add(R2, R2, 1u32);
    });
    // Hidden layer with ReLU: a = h * (0 < h).
    for (j, (row, &bias)) in m.w1.iter().zip(&m.b1).enumerate() {
        p.mov(R3, bias);
        for (i, &w) in row.iter().enumerate().filter(|(_, &w)| w != 0) {
            p.load(R1, R0, i as u32).mac(R3, R1, w);
        }
        p.lt(R4, R0, R3).mul(R3, R3, R4).store(R0, HIDDEN_BASE + j as u32, R3);
    }
    // Output layer: scores are public output.
    for (k, (row, &bias)) in m.w2.iter().zip(&m.b2).enumerate() {
        p.mov(R3, bias);
        for (j, &w) in row.iter().enumerate().filter(|(_, &w)| w != 0) {
            p.load(R1, R0, HIDDEN_BASE + j as u32).mac(R3, R1, w);
        }
        p.store(R0, score_base + k as u32, R3).write(R3);
    }
    // Argmax, first maximum wins: best in R5, its index in R6.
    p.load(R5, R0, score_base).mov(R6, 0u32);
    for k in 1..m.classes as u32 {
        p.load(R1, R0, score_base + k).lt(R4, R5, R1);
        select(&mut p, R8, R4, R1, R5);
        p.mov(R5, R8).mov(R7, k);
        select(&mut p, R8, R4, R7, R6);
        p.mov(R6, R8);
    }
    p.write(R6).halt();
    p
}

fn infer(input: Input) -> Result<Value, Error> {
    if input.image.len() != PIXELS as usize {
        return Err(Error::new(format!("image must have {PIXELS} pixels, got {}", input.image.len())));
    }
    if let Some(bad) = input.image.iter().find(|&&v| v > MAX_PIXEL) {
        return Err(Error::new(format!("pixel value {bad} is outside 0..={MAX_PIXEL}")));
    }
    let m = model()?;
    let image: Vec<M31> = input.image.iter().map(|&v| M31::from(v)).collect();
    let run = execute(&program(&m), &image, &[])?;
    let scores: Vec<i64> = run.output[..m.classes].iter().map(|s| s.signed()).collect();
    Ok(json!({
        "class": run.output[m.classes].value(),
        "scores": scores,
        "program_digest": run.program_digest,
        "vm_steps": run.steps,
    }))
}

bitsage_guest::workload!(infer);
