//! The host side of the WIT world: the state a store carries, the `vm` and
//! `log` imports, the resource limiter, and captured stdio.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use obelysk_vm::{ExecError, ExecLimits, Instr, Opcode, Program, Table, Trace, M31};
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::{Limits, SandboxError};

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "bitsage:workload/workload",
    imports: { default: trappable },
});

use bitsage::workload::types::{self as wit, VmError};

/// The one VM execution a job proves.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub program: Program,
    pub input: Vec<M31>,
    pub trace: Trace,
    /// Time the host spent executing the VM (inside the guest's call).
    pub exec_time: std::time::Duration,
}

/// A line the guest sent through the `log` import.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
}

/// Why the VM import refused or failed, kept by the host whatever the guest
/// does with the error it was given.
#[derive(Clone, Debug)]
pub enum VmFailure {
    Exec(ExecError),
    TraceLimit(u64),
    NotAFieldElement(u32),
    AlreadyExecuted,
}

pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: Limiter,
    limits: Limits,
    /// When the job started (its deadline is `started + limits.timeout`).
    started: std::time::Instant,
    /// Set by the first `vm.execute`, whether it succeeds or not: a job
    /// gets one execution.
    executed: bool,
    pub recorded: Option<Recorded>,
    pub vm_failure: Option<VmFailure>,
    pub logs: Vec<LogLine>,
    log_bytes: usize,
}

impl HostState {
    pub fn new(wasi: WasiCtx, limits: Limits) -> Self {
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter { memory_cap: limits.memory_bytes, total: 0, hit: None },
            limits,
            started: std::time::Instant::now(),
            executed: false,
            recorded: None,
            vm_failure: None,
            logs: Vec::new(),
            log_bytes: 0,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn fail(&mut self, f: VmFailure) -> VmError {
        let e = match &f {
            VmFailure::Exec(ExecError::InvalidProgram(p)) => VmError::InvalidProgram(p.to_string()),
            VmFailure::Exec(e) => VmError::ExecutionFailed(e.to_string()),
            VmFailure::TraceLimit(n) => VmError::TraceLimit(*n),
            VmFailure::NotAFieldElement(v) => VmError::NotAFieldElement(*v),
            VmFailure::AlreadyExecuted => VmError::AlreadyExecuted,
        };
        self.vm_failure = Some(f);
        e
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

fn field(v: u32) -> Result<M31, VmFailure> {
    obelysk_vm::word(v).map_err(|e| VmFailure::NotAFieldElement(e.0))
}

fn words(vs: &[u32]) -> Result<Vec<M31>, VmFailure> {
    vs.iter().map(|&v| field(v)).collect()
}

fn opcode(op: wit::Opcode) -> Opcode {
    use wit::Opcode as W;
    match op {
        W::Add => Opcode::Add,
        W::Sub => Opcode::Sub,
        W::Mul => Opcode::Mul,
        W::Mac => Opcode::Mac,
        W::Mov => Opcode::Mov,
        W::Eq => Opcode::Eq,
        W::Lt => Opcode::Lt,
        W::Load => Opcode::Load,
        W::Store => Opcode::Store,
        W::Jmp => Opcode::Jmp,
        W::Jnz => Opcode::Jnz,
        W::Jz => Opcode::Jz,
        W::Jal => Opcode::Jal,
        W::Jr => Opcode::Jr,
        W::Read => Opcode::Read,
        W::Advice => Opcode::Advice,
        W::Write => Opcode::Write,
        W::Lookup => Opcode::Lookup,
        W::Hash => Opcode::Hash,
        W::Halt => Opcode::Halt,
    }
}

/// The guest's program in the VM's own types. Structural checks (registers,
/// jump targets, tables) are the executor's `validate`.
pub fn to_program(p: &wit::Program) -> Result<Program, VmFailure> {
    let instrs = p
        .instrs
        .iter()
        .map(|i| Ok(Instr { op: opcode(i.op), dst: i.dst, a: i.a, b: i.b, imm_mode: i.imm_mode, imm: field(i.imm)? }))
        .collect::<Result<Vec<_>, VmFailure>>()?;
    let tables = p
        .tables
        .iter()
        .map(|t| {
            let entries =
                t.entries.iter().map(|&(k, v)| Ok((field(k)?, field(v)?))).collect::<Result<_, VmFailure>>()?;
            Ok(Table { name: t.name.clone(), entries })
        })
        .collect::<Result<Vec<_>, VmFailure>>()?;
    Ok(Program { instrs, tables })
}

impl HostState {
    fn run_vm(&mut self, program: &wit::Program, input: &[u32], advice: &[u32]) -> Result<wit::Execution, VmFailure> {
        if self.executed {
            return Err(VmFailure::AlreadyExecuted);
        }
        self.executed = true;
        let program = to_program(program)?;
        // The row budget covers every component: the program table (one row
        // per instruction and table entry) is proved whatever the run's length.
        let rom_rows = program.instrs.len() + program.tables.iter().map(|t| t.entries.len()).sum::<usize>();
        if rom_rows as u64 > self.limits.trace_rows {
            return Err(VmFailure::TraceLimit(self.limits.trace_rows));
        }
        let input = words(input)?;
        let advice = words(advice)?;
        // The run is the job's: its deadline, and what is left of its memory
        // cap after the guest's own memories and tables.
        let limits = ExecLimits {
            max_steps: self.limits.trace_rows,
            deadline: Some(self.started + self.limits.timeout),
            max_trace_bytes: Some(self.limiter.remaining() as u64),
            ..ExecLimits::default()
        };
        let start = std::time::Instant::now();
        let trace = match obelysk_vm::execute(&program, &input, &advice, limits) {
            Ok(t) => t,
            Err(ExecError::StepBudgetExceeded { budget }) => return Err(VmFailure::TraceLimit(budget)),
            Err(e) => return Err(VmFailure::Exec(e)),
        };
        // Hash rows and memory rows are components too.
        if trace.hashes.len() as u64 > self.limits.trace_rows || trace.ram.len() as u64 > self.limits.trace_rows {
            return Err(VmFailure::TraceLimit(self.limits.trace_rows));
        }
        let execution = wit::Execution {
            output: trace.output.iter().map(|v| v.0).collect(),
            steps: trace.steps.len() as u64,
            hashes: trace.hashes.len() as u64,
            program_digest: hex::encode(program.digest()),
        };
        self.recorded = Some(Recorded { program, input, trace, exec_time: start.elapsed() });
        Ok(execution)
    }
}

impl bitsage::workload::vm::Host for HostState {
    fn execute(
        &mut self,
        program: wit::Program,
        input: Vec<u32>,
        advice: Vec<u32>,
    ) -> wasmtime::Result<Result<wit::Execution, VmError>> {
        Ok(self.run_vm(&program, &input, &advice).map_err(|f| self.fail(f)))
    }
}

impl bitsage::workload::types::Host for HostState {}

impl bitsage::workload::log::Host for HostState {
    fn log(&mut self, level: bitsage::workload::log::Level, message: String) -> wasmtime::Result<()> {
        use bitsage::workload::log::Level;
        self.log_bytes += message.len();
        if self.log_bytes > self.limits.log_bytes {
            return Err(wasmtime::Error::new(SandboxError::LogLimit { limit: self.limits.log_bytes }));
        }
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.logs.push(LogLine { level, message });
        Ok(())
    }
}

/// Caps linear memory and remembers that the cap was what stopped the guest.
pub struct Limiter {
    memory_cap: usize,
    /// Bytes of every memory and table of the store, together.
    total: usize,
    pub hit: Option<usize>,
}

/// Bytes a table element is counted as (a function reference).
const TABLE_ELEMENT_BYTES: usize = 16;

impl Limiter {
    /// What is left of the job's memory cap.
    pub fn remaining(&self) -> usize {
        self.memory_cap.saturating_sub(self.total)
    }

    /// One cap on the sum of everything the store allocates: a memory or a
    /// table grows only if the total stays within it.
    fn grow(&mut self, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let total = self.total.saturating_sub(current).saturating_add(desired);
        if total > self.memory_cap {
            self.hit = Some(total);
            return Err(wasmtime::Error::new(SandboxError::MemoryLimit { limit: self.memory_cap }));
        }
        self.total = total;
        Ok(true)
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(current, desired)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(current.saturating_mul(TABLE_ELEMENT_BYTES), desired.saturating_mul(TABLE_ELEMENT_BYTES))
    }

    fn instances(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        64
    }
}

/// Captured stdout or stderr: keeps the first `cap` bytes, counts the rest
/// and drops them. Writes never fail, so a chatty guest is not killed by
/// its own logging.
#[derive(Clone)]
pub struct CappedPipe {
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    dropped: u64,
    cap: usize,
}

impl CappedPipe {
    pub fn new(cap: usize) -> Self {
        CappedPipe { inner: Arc::new(Mutex::new(Captured { cap, ..Captured::default() })) }
    }

    fn push(&self, bytes: &[u8]) {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let room = c.cap.saturating_sub(c.kept.len());
        let take = room.min(bytes.len());
        c.kept.extend_from_slice(&bytes[..take]);
        c.dropped += (bytes.len() - take) as u64;
    }

    /// The captured text (lossy UTF-8) and how many bytes were dropped.
    pub fn contents(&self) -> (String, u64) {
        let c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (String::from_utf8_lossy(&c.kept).into_owned(), c.dropped)
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instr(op: wit::Opcode, imm: u32) -> wit::Instr {
        wit::Instr { op, dst: 1, a: 0, b: 0, imm_mode: true, imm }
    }

    fn halt() -> wit::Instr {
        wit::Instr { op: wit::Opcode::Halt, dst: 0, a: 0, b: 0, imm_mode: false, imm: 0 }
    }

    #[test]
    fn words_at_or_above_p_are_refused_at_the_wit_boundary() {
        const P: u32 = (1 << 31) - 1;
        let program = |imm: u32, entry: (u32, u32)| wit::Program {
            instrs: vec![instr(wit::Opcode::Mov, imm), halt()],
            tables: vec![wit::Table { name: "t".into(), entries: vec![entry] }],
        };
        assert!(to_program(&program(P - 1, (0, P - 1))).is_ok());
        for (imm, entry) in [(P, (0, 1)), (u32::MAX, (0, 1)), (1, (P, 20)), (1, (0, P + 42))] {
            assert!(
                matches!(to_program(&program(imm, entry)), Err(VmFailure::NotAFieldElement(v)) if v >= P),
                "imm {imm}, entry {entry:?}"
            );
        }
        let ok = program(1, (0, 1));
        for (input, advice) in [(vec![P], vec![]), (vec![], vec![P + 42])] {
            // A fresh job each: a job gets one `vm.execute`.
            let mut state = HostState::new(WasiCtx::builder().build(), Limits::default());
            assert!(matches!(state.run_vm(&ok, &input, &advice), Err(VmFailure::NotAFieldElement(_))));
            assert!(matches!(state.run_vm(&ok, &[], &[]), Err(VmFailure::AlreadyExecuted)));
        }
    }
}
