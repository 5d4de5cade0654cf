//! The process's exit status: one documented meaning per code. `--help`
//! prints [`Exit::table`], and the table in docs/cli.md is the same list.

use bitsage_sandbox::SandboxError;

macro_rules! exits {
    ($($variant:ident = $code:literal: $meaning:literal,)*) => {
        /// Why `bitsage-host` stopped short of success (0).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Exit {
            $(#[doc = $meaning] $variant = $code,)*
        }

        impl Exit {
            /// Every status, in code order.
            pub const ALL: &'static [Exit] = &[$(Exit::$variant,)*];

            pub fn meaning(self) -> &'static str {
                match self {
                    $(Exit::$variant => $meaning,)*
                }
            }
        }
    };
}

exits! {
    Rejected = 1: "proof rejected (or the receipt is for another program, or its attestation does not verify)",
    Usage = 2: "bad command line, input word, key or signature",
    Assemble = 3: "program does not assemble",
    Execution = 4: "execution failed (a typed VM error, also from a workload) or the statement cannot be proved",
    Receipt = 5: "receipt file unreadable, truncated or corrupt",
    Io = 6: "I/O error",
    Backend = 7: "the chosen prover backend is unavailable (`--backend cuda` without a usable GPU)",
    Node = 8: "the node could not start, or its store failed",
    Remote = 9: "a remote node refused the request or could not be reached",
    NotCompiled = 10: "not WebAssembly, a core module, or does not compile",
    DisallowedImport = 11: "the component imports something the sandbox does not provide",
    NotApproved = 12: "module not approved (or its publisher signature does not verify)",
    Fuel = 13: "fuel exhausted",
    Deadline = 14: "wall-clock deadline",
    Memory = 15: "memory cap",
    Stack = 16: "wasm stack overflow",
    TooLarge = 17: "input or report over its cap",
    Log = 18: "log cap",
    TraceRows = 19: "VM trace-row cap",
    GuestPanic = 20: "the guest panicked",
    GuestTrap = 21: "the guest trapped, or could not be instantiated",
    GuestError = 22: "the guest returned an error",
    NoExecution = 23: "the guest never executed the VM",
    ChainRefused = 24: "the chain or a contract refused: reverted (with the contract's message), insufficient balance or stake, still unbonding",
    ChainUnreachable = 25: "the chain could not be reached, or answered unexpectedly",
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The `--help` table: `0 success`, then every code and its meaning.
    pub fn table() -> String {
        let mut out = String::from("Exit status:\n   0  success\n");
        for e in Exit::ALL {
            out.push_str(&format!("  {:>2}  {}\n", e.code(), e.meaning()));
        }
        out
    }
}

impl From<&SandboxError> for Exit {
    fn from(e: &SandboxError) -> Exit {
        match e {
            SandboxError::Malformed(_)
            | SandboxError::NotAComponent
            | SandboxError::Compile(_)
            | SandboxError::CompileLimit(_) => Exit::NotCompiled,
            SandboxError::DisallowedImport { .. } => Exit::DisallowedImport,
            SandboxError::NotApproved { .. } => Exit::NotApproved,
            SandboxError::FuelExhausted { .. } => Exit::Fuel,
            SandboxError::Deadline { .. } => Exit::Deadline,
            SandboxError::MemoryLimit { .. } => Exit::Memory,
            SandboxError::StackOverflow { .. } => Exit::Stack,
            SandboxError::OutputTooLarge { .. } | SandboxError::InputTooLarge { .. } => Exit::TooLarge,
            SandboxError::LogLimit { .. } => Exit::Log,
            SandboxError::TraceLimit { .. } => Exit::TraceRows,
            SandboxError::GuestPanic { .. } => Exit::GuestPanic,
            SandboxError::GuestTrap { .. } | SandboxError::Instantiate(_) => Exit::GuestTrap,
            SandboxError::GuestError { .. } => Exit::GuestError,
            SandboxError::Vm(_) | SandboxError::NotAFieldElement(_) | SandboxError::ExecutedTwice => Exit::Execution,
            SandboxError::NoExecution => Exit::NoExecution,
            SandboxError::Setup(_) => Exit::Io,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn codes_are_distinct_ascending_and_documented() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, (1..=25).collect::<Vec<u8>>());
        // docs/cli.md lists each code with the same meaning.
        let readme = include_str!("../../../docs/cli.md");
        for e in Exit::ALL {
            let row = format!("| {} | {} |", e.code(), e.meaning());
            assert!(readme.contains(&row), "docs/cli.md lacks `{row}`");
        }
    }
}
