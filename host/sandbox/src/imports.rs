//! What a workload may import, and the checks that run before it does.

use std::time::Duration;

use wasmtime::component::{Component, HasData, Linker, Resource, ResourceTable};
use wasmtime::Engine;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::bindings::{cli, clocks, random, sync};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiView};

use crate::SandboxError;

/// Interfaces a workload may import (without their `@version`). WASI
/// interfaces must be version 0.2.x.
pub const ALLOWED: &[&str] = &[
    "bitsage:workload/types",
    "bitsage:workload/vm",
    "bitsage:workload/log",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// Why an import outside [`ALLOWED`] is refused, for the error message.
fn refusal(interface: &str) -> &'static str {
    if interface.starts_with("wasi:filesystem/") {
        "workloads get no filesystem"
    } else if interface.starts_with("wasi:sockets/") || interface.starts_with("wasi:http/") {
        "workloads get no network"
    } else if interface.starts_with("wasi:") {
        "this WASI interface is not in the sandbox's subset"
    } else {
        "not part of the bitsage:workload world"
    }
}

/// Checks the 8-byte header: `\0asm`, then the version and layer fields,
/// which tell a component (layer 1) from a core module (layer 0).
pub fn check_encoding(bytes: &[u8]) -> Result<(), SandboxError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(SandboxError::Malformed("missing the `\\0asm` magic number".into()));
    }
    match u16::from_le_bytes([bytes[6], bytes[7]]) {
        0 => Err(SandboxError::NotAComponent),
        1 => Ok(()),
        layer => Err(SandboxError::Malformed(format!("unknown binary layer {layer}"))),
    }
}

/// Refuses any import outside [`ALLOWED`], naming the first one found and
/// listing the rest.
pub fn check_imports(engine: &Engine, component: &Component) -> Result<(), SandboxError> {
    let ty = component.component_type();
    let refused: Vec<&str> = ty
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| {
            let (interface, version) = name.split_once('@').unwrap_or((name, ""));
            !(ALLOWED.contains(&interface) && (!interface.starts_with("wasi:") || version.starts_with("0.2.")))
        })
        .collect();
    match refused.split_first() {
        None => Ok(()),
        Some((first, rest)) => Err(SandboxError::DisallowedImport {
            name: first.to_string(),
            why: refusal(first.split_once('@').map_or(*first, |(i, _)| i)),
            others: rest.iter().map(|s| s.to_string()).collect(),
        }),
    }
}

struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// Links exactly the WASI interfaces in [`ALLOWED`]; nothing else exists in
/// the linker, so even an unchecked component could not reach more.
pub fn link_allowed<T: WasiView + WasiCliView + WasiClocksView>(l: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    sync::io::poll::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    sync::io::streams::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, Frozen>(l, |t| FrozenClock { table: t.ctx().table })?;
    random::random::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    Ok(())
}

/// The monotonic clock a guest sees: stopped at 0, so every timer it
/// subscribes to (`subscribe-duration`, `subscribe-instant`, which
/// `std::thread::sleep` and every timeout reach through `poll`) has already
/// expired. No call a guest can make blocks on time: a 10 s or a 100-year
/// sleep returns at once, and a guest that spins waiting for time to pass
/// meets its fuel budget and the job's deadline instead of holding a worker
/// thread in a host call the deadline cannot interrupt.
struct Frozen;

impl HasData for Frozen {
    type Data<'a> = FrozenClock<'a>;
}

struct FrozenClock<'a> {
    table: &'a mut ResourceTable,
}

/// A timer whose time has come.
struct Elapsed;

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi_io::poll::Pollable for Elapsed {
    async fn ready(&mut self) {}
}

impl FrozenClock<'_> {
    fn elapsed(&mut self) -> wasmtime::Result<Resource<wasmtime_wasi::p2::DynPollable>> {
        let timer = self.table.push(Elapsed)?;
        wasmtime_wasi_io::poll::subscribe(self.table, timer)
    }
}

impl clocks::monotonic_clock::Host for FrozenClock<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(HostMonotonicClock::now(&FixedClock))
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        Ok(HostMonotonicClock::resolution(&FixedClock))
    }

    fn subscribe_instant(&mut self, _when: u64) -> wasmtime::Result<Resource<wasmtime_wasi::p2::DynPollable>> {
        self.elapsed()
    }

    fn subscribe_duration(&mut self, _duration: u64) -> wasmtime::Result<Resource<wasmtime_wasi::p2::DynPollable>> {
        self.elapsed()
    }
}

/// A clock stopped at the Unix epoch: guests cannot time anything, so runs
/// are reproducible and timing side channels are closed.
pub struct FixedClock;

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The "random" bytes guests see: a fixed stream, the same in every job.
/// `std` needs some (hash-map seeds); secrets must come from the input.
pub fn fixed_random() -> wasmtime_wasi::Deterministic {
    use sha2::{Digest, Sha256};
    let stream: Vec<u8> = (0u32..128)
        .flat_map(|i| Sha256::digest([b"bitsage fixed random".as_slice(), &i.to_le_bytes()].concat()))
        .collect();
    wasmtime_wasi::Deterministic::new(stream)
}
