//! Bounded compilation: what a component may cost Cranelift.
//!
//! Compile time and memory grow with a component's code, and some shapes
//! (tens of thousands of live locals in one function, a million functions)
//! keep Cranelift busy for minutes and gigabytes. So before compiling, the
//! component's core modules are walked with `wasmparser` (no code is
//! compiled for that) and refused past [`CompileLimits`]; then compilation
//! runs on its own thread under a wall-clock budget. A refusal is
//! `compile-limit`. A compile past its budget is abandoned: its thread
//! finishes in the background (threads cannot be killed), but the caller is
//! answered and the component is never used; the static limits are what
//! keep that rare.

use std::time::Duration;

use wasmparser::{Parser, Payload};

use crate::SandboxError;

/// What one component may cost to compile. The defaults are far above what
/// a Rust workload needs (ours: at most a few thousand functions, a few
/// hundred locals in a function) and far below the shapes that stall
/// Cranelift.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct CompileLimits {
    /// Bytes of the component.
    pub component_bytes: usize,
    /// Functions with bodies, over every core module.
    pub functions: usize,
    /// Locals declared in one function.
    pub locals_per_function: u64,
    /// Bytes of one function body.
    pub function_bytes: usize,
    /// Wall-clock budget for compiling.
    pub timeout: Duration,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            component_bytes: 32 << 20,
            functions: 100_000,
            locals_per_function: 5_000,
            function_bytes: 1 << 20,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What the walk found: the largest figures, for the error and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodeShape {
    pub functions: usize,
    pub max_locals: u64,
    pub max_function_bytes: usize,
}

fn limit(what: &str, value: impl std::fmt::Display, cap: impl std::fmt::Display) -> SandboxError {
    SandboxError::CompileLimit(format!("{what} is {value}, over the limit of {cap}"))
}

/// Walks every core module of `bytes` (nested ones included) and checks the
/// static limits. Bytes that do not parse are `compile` errors, as
/// wasmtime's own would be.
pub fn check(bytes: &[u8], limits: &CompileLimits) -> Result<CodeShape, SandboxError> {
    if bytes.len() > limits.component_bytes {
        return Err(limit("the component's size in bytes", bytes.len(), limits.component_bytes));
    }
    let mut shape = CodeShape::default();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| SandboxError::Compile(e.to_string()))?;
        if let Payload::CodeSectionEntry(body) = payload {
            shape.functions += 1;
            if shape.functions > limits.functions {
                return Err(limit("the number of functions", format!("over {}", limits.functions), limits.functions));
            }
            let size = body.range().len();
            shape.max_function_bytes = shape.max_function_bytes.max(size);
            if size > limits.function_bytes {
                return Err(limit("a function's size in bytes", size, limits.function_bytes));
            }
            let mut locals = 0u64;
            for entry in body.get_locals_reader().map_err(|e| SandboxError::Compile(e.to_string()))? {
                let (count, _) = entry.map_err(|e| SandboxError::Compile(e.to_string()))?;
                locals += count as u64;
                if locals > limits.locals_per_function {
                    return Err(limit(
                        "a function's local count",
                        format!("over {locals}"),
                        limits.locals_per_function,
                    ));
                }
            }
            shape.max_locals = shape.max_locals.max(locals);
        }
    }
    Ok(shape)
}

/// Runs `compile` on its own thread; `compile-limit` if it has not finished
/// within `timeout`.
pub fn within<T: Send + 'static>(
    timeout: Duration,
    compile: impl FnOnce() -> Result<T, SandboxError> + Send + 'static,
) -> Result<T, SandboxError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bitsage-compile".into())
        .spawn(move || {
            let _ = tx.send(compile());
        })
        .map_err(|e| SandboxError::Setup(format!("spawning the compile thread: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => Err(SandboxError::CompileLimit(format!("compiling took longer than {} s", timeout.as_secs()))),
    }
}
