//! # bitsage-guest: write a BitSage workload
//!
//! A workload is a WebAssembly component (`cargo build --target
//! wasm32-wasip2`) that the BitSage host runs in a sandbox. It does three
//! things:
//!
//! 1. builds an ObelyskVM [`Program`] (labels, loops, multiply-accumulate,
//!    lookup tables, the Poseidon2 `hash`);
//! 2. chooses the program's **public input** and **private advice**;
//! 3. calls [`execute`] once. The host executes the program, keeps the trace,
//!    and proves it.
//!
//! ## What is proven, and what is not
//!
//! The receipt proves: *this VM program, on this public input and some
//! private advice, halts and writes this public output.* The verifier sees
//! the program (so its tables and constants), the input and the output.
//!
//! The WASM code is **not** proven. It is an untrusted witness generator: it
//! may compute anything, lie about anything, and choose any advice. Whatever
//! must hold, the VM program must check (see [`Program::assert_eq`],
//! [`Program::assert_lt`], [`Program::assert_bit`]). The bytes a workload
//! returns from its entry point are a report for the user, not part of the
//! statement. Advice is hidden from the chain but not from the worker that
//! holds the trace, and the proof is not zero-knowledge.
//!
//! ## Hello world
//!
//! Compile-checked here (a doctest, built natively: it is not run, since
//! the VM is the host's):
//!
//! ```no_run
//! # fn main() {}
//! use bitsage_guest::prelude::*;
//!
//! fn sum((a, b): (u32, u32)) -> Result<Value, Error> {
//!     let mut p = Program::new();
//!     p.read(R1).read(R2).add(R3, R1, R2).write(R3).halt();
//!     let run = execute(&p, &[a.into(), b.into()], &[])?;
//!     Ok(json!({ "sum": run.output[0] }))
//! }
//!
//! bitsage_guest::workload!(sum);
//! ```

pub use obelysk_isa::{field, gadgets};

/// The program builder and its parts. `Program` is the name workloads write
/// programs with; it is [`obelysk_isa::ProgramBuilder`], the builder the host
/// uses too, so labels, validation and the assertion gadgets behave the same
/// on both sides of the sandbox.
pub mod program {
    pub use obelysk_isa::builder::*;
    pub use obelysk_isa::Opcode;

    /// The program builder (see the module docs).
    pub type Program = ProgramBuilder;
}

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "bitsage:workload/workload",
        pub_export_macro: true,
        export_macro_name: "export_workload",
        default_bindings_module: "bitsage_guest::bindings",
    });
}

use std::fmt;

use bindings::bitsage::workload::{log as wit_log, types as wit, types::VmError, vm};

pub use field::M31;
pub use program::{Label, Operand, Program, Reg, TableId};

/// What an execution produced, as the verifier will see it.
#[derive(Clone, Debug)]
pub struct Execution {
    /// Public output words in the order `write` produced them.
    pub output: Vec<M31>,
    /// Instructions executed, including the final `halt`.
    pub steps: u64,
    /// `hash` instructions executed.
    pub hashes: u64,
    /// SHA-256 of the program (hex), as the receipt names it.
    pub program_digest: String,
}

/// A workload's error: shown to the user, and the job fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub fn new(msg: impl Into<String>) -> Error {
        Error(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error(format!("bad input: {e}"))
    }
}

impl From<String> for Error {
    fn from(e: String) -> Error {
        Error(e)
    }
}

impl From<&str> for Error {
    fn from(e: &str) -> Error {
        Error(e.to_string())
    }
}

impl From<obelysk_isa::BuildError> for Error {
    fn from(e: obelysk_isa::BuildError) -> Error {
        Error(e.to_string())
    }
}

impl From<VmError> for Error {
    fn from(e: VmError) -> Error {
        Error(match e {
            VmError::InvalidProgram(m) => format!("invalid program: {m}"),
            VmError::ExecutionFailed(m) => format!("execution failed: {m}"),
            VmError::TraceLimit(n) => format!("trace exceeds the job's cap of {n} rows"),
            VmError::NotAFieldElement(v) => format!("{v} is not a field element"),
            VmError::AlreadyExecuted => "the VM was already executed in this job".to_string(),
        })
    }
}

/// Executes `program` on public `input` and private `advice` in the host. The
/// host keeps the trace and proves it. Call it once per job.
///
/// The program is built and validated here first ([`Program::build`]), so a
/// mistake is reported with its kind before anything crosses to the host;
/// the host validates again, since it trusts no guest.
pub fn execute(program: &Program, input: &[M31], advice: &[M31]) -> Result<Execution, Error> {
    let wit_program = to_wit(&program.build()?);
    let input: Vec<u32> = input.iter().map(|v| v.value()).collect();
    let advice: Vec<u32> = advice.iter().map(|v| v.value()).collect();
    let e = vm::execute(&wit_program, &input, &advice)?;
    Ok(Execution {
        output: e.output.into_iter().map(M31::new).collect(),
        steps: e.steps,
        hashes: e.hashes,
        program_digest: e.program_digest,
    })
}

/// The one conversion from the shared instruction set to the WIT types.
fn to_wit(p: &obelysk_isa::Program) -> wit::Program {
    use obelysk_isa::Opcode as O;
    use wit::Opcode as W;
    let op = |o: O| match o {
        O::Add => W::Add,
        O::Sub => W::Sub,
        O::Mul => W::Mul,
        O::Mac => W::Mac,
        O::Mov => W::Mov,
        O::Eq => W::Eq,
        O::Lt => W::Lt,
        O::Load => W::Load,
        O::Store => W::Store,
        O::Jmp => W::Jmp,
        O::Jnz => W::Jnz,
        O::Jz => W::Jz,
        O::Jal => W::Jal,
        O::Jr => W::Jr,
        O::Read => W::Read,
        O::Advice => W::Advice,
        O::Write => W::Write,
        O::Lookup => W::Lookup,
        O::Hash => W::Hash,
        O::Halt => W::Halt,
    };
    wit::Program {
        instrs: p
            .instrs
            .iter()
            .map(|i| wit::Instr { op: op(i.op), dst: i.dst, a: i.a, b: i.b, imm_mode: i.imm_mode, imm: i.imm.value() })
            .collect(),
        tables: p
            .tables
            .iter()
            .map(|t| wit::Table {
                name: t.name.clone(),
                entries: t.entries.iter().map(|(k, v)| (k.value(), v.value())).collect(),
            })
            .collect(),
    }
}

/// Log levels for [`log`].
pub use wit_log::Level;

/// Sends a log line to the host (captured and capped per job).
pub fn log(level: Level, message: &str) {
    wit_log::log(level, message);
}

/// Everything a workload usually needs.
pub mod prelude {
    pub use crate::program::*;
    pub use crate::{execute, log, Error, Execution, Level, M31};
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::{json, Value};
}

#[doc(hidden)]
pub mod __private {
    use serde::de::DeserializeOwned;
    use serde::Serialize;

    pub use serde_json;

    /// Decodes the JSON input, runs the handler, encodes its JSON report.
    pub fn dispatch<I: DeserializeOwned, O: Serialize>(
        input: &[u8],
        handler: fn(I) -> Result<O, crate::Error>,
    ) -> Result<Vec<u8>, String> {
        let input: I = serde_json::from_slice(input).map_err(|e| format!("bad input: {e}"))?;
        let out = handler(input).map_err(|e| e.to_string())?;
        serde_json::to_vec(&out).map_err(|e| format!("could not encode the result: {e}"))
    }
}

/// Declares the workload's entry point: `fn(Input) -> Result<Output, Error>`,
/// where `Input: Deserialize` is read from the job's JSON input and
/// `Output: Serialize` is returned to the user as JSON.
#[macro_export]
macro_rules! workload {
    ($handler:path) => {
        struct __BitsageWorkload;

        impl $crate::bindings::Guest for __BitsageWorkload {
            fn run(input: ::std::vec::Vec<u8>) -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                $crate::__private::dispatch(&input, $handler)
            }
        }

        $crate::bindings::export_workload!(__BitsageWorkload with_types_in $crate::bindings);
    };
}
