//! Proves ObelyskVM executions with Stwo.
//!
//! [`prove`] executes a program and proves the run; [`prove_trace`] proves a
//! given [`Trace`] (which is how the soundness tests hand the prover traces
//! the honest executor would never produce). The proving core,
//! [`prove_trace_on`], is generic over the Stwo backend: the SIMD backend is
//! the default, and a GPU backend slots in by implementing Stwo's backend
//! traits and [`ProverBackend`].

#[cfg(feature = "cuda")]
pub mod cuda;
pub mod pool;
/// The receipt file, in its own crate so that verifiers without the prover
/// (the browser's) read it.
pub use bitsage_receipt as receipt;
pub mod tracegen;

use std::time::{Duration, Instant};

use bitsage_air::cpu::CpuEval;
use bitsage_air::hash::HashEval;
use bitsage_air::memory::MemEval;
use bitsage_air::range::RangeEval;
use bitsage_air::relations::Relations;
use bitsage_air::rom::RomEval;
use bitsage_air::statement::{Components, InteractionClaim};
use bitsage_air::verify::Proof;
use bitsage_air::{SecurityLevel, Statement};
use obelysk_vm::exec::{execute, ExecError, ExecLimits, Trace};
use obelysk_vm::isa::Program;
use serde::{Deserialize, Serialize};
use stwo::core::channel::MerkleChannel;
use stwo::core::fields::m31::M31;
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::PcsConfig;
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;
use stwo::core::vcs_lifted::poseidon252_merkle::{Poseidon252MerkleChannel, Poseidon252MerkleHasher};
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::BackendForChannel;
use stwo::prover::poly::circle::PolyOps;
use stwo::prover::{CommitmentSchemeProver, ComponentProver};
use stwo_constraint_framework::FrameworkComponent;
use tracing::info_span;

pub use receipt::{Receipt, ReceiptError};
use tracegen::{build_main_trace, Eval};

#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("the statement cannot be proved")]
    Statement(#[from] bitsage_air::StatementError),
    #[error("the trace does not satisfy the AIR; the prover refuses to emit a proof")]
    ConstraintsNotSatisfied,
    #[error("backend unavailable")]
    Backend(#[source] BackendError),
    #[error("the proof needs about {need} bytes of device memory and {device} has {have}")]
    TooLarge { need: u64, have: u64, device: String },
}

/// What about a backend failed, with the driver's (or the thread pool's, or
/// the encoder's) own error as the source when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct BackendError {
    pub what: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ProveError {
    /// A backend failure with no underlying error.
    pub fn backend(what: impl Into<String>) -> ProveError {
        ProveError::Backend(BackendError { what: what.into(), source: None })
    }

    /// A backend failure caused by `e`.
    pub fn backend_by(what: impl Into<String>, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ProveError {
        ProveError::Backend(BackendError { what: what.into(), source: Some(e.into()) })
    }
}

/// Which Stwo backend proves. Proofs are byte-identical across backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// The GPU when one is usable, otherwise the CPU.
    Auto,
    /// Stwo's SIMD backend on all cores.
    Cpu,
    /// The CUDA backend; an error when no GPU is usable.
    Cuda,
}

/// Proves `trace` on the chosen backend. Returns the proof, its stats, and
/// a description of the backend that ran (`cpu (SIMD)`, `cuda (<device>)`).
pub fn prove_trace_with(
    choice: BackendChoice,
    statement: &Statement,
    trace: &Trace,
    opts: &ProveOptions<'_>,
) -> Result<(Proof, ProofStats, String), ProveError> {
    match chosen_gpu(choice)? {
        None => prove_trace(statement, trace, opts).map(|(p, s)| (p, s, "cpu (SIMD)".to_string())),
        Some(name) => prove_on_gpu(statement, trace, opts).map(|(p, s)| (p, s, format!("cuda ({name})"))),
    }
}

/// The GPU a choice proves on (its name), or `None` for the CPU: `Auto`
/// takes GPU 0 when it opens, `Cuda` requires it.
fn chosen_gpu(choice: BackendChoice) -> Result<Option<String>, ProveError> {
    Ok(match choice {
        BackendChoice::Cpu => None,
        BackendChoice::Auto => gpu_name().ok(),
        BackendChoice::Cuda => Some(gpu_name()?),
    })
}

/// Proves `trace` over the Merkle channel a receipt will name, on the
/// chosen backend: Blake2s ([`prove_trace_with`]), or Poseidon252 (a proof
/// the chain verifies, [`prove_poseidon252`]). Both backends make both, and
/// their proofs are byte-identical.
pub fn prove_receipt_proof(
    channel: receipt::Channel,
    choice: BackendChoice,
    statement: &Statement,
    trace: &Trace,
    opts: &ProveOptions<'_>,
) -> Result<(receipt::ReceiptProof, ProofStats, String), ProveError> {
    match channel {
        receipt::Channel::Blake2s => prove_trace_with(choice, statement, trace, opts).map(|(p, s, n)| (p.into(), s, n)),
        receipt::Channel::Poseidon252 => match chosen_gpu(choice)? {
            None => prove_poseidon252(statement, trace, opts).map(|(p, s)| (p.into(), s, "cpu (SIMD)".to_string())),
            Some(name) => {
                prove_poseidon252_on_gpu(statement, trace, opts).map(|(p, s)| (p.into(), s, format!("cuda ({name})")))
            }
        },
    }
}

/// Starts opening the GPU that `choice` may prove on (the driver, the
/// context and the fixed kernels) on a thread of its own, and readying the
/// generated kernels on another, and returns at once. A fresh process pays
/// about 150 to 250 ms for the driver and the context before its first GPU
/// proof, and, for a proof with the hash component, about as long again to
/// generate that component's kernels; started this way, both run beside
/// the guest's execution and the trace. The proof then finds the GPU open
/// (`backend::open` opens a device once) and its kernels generated and read
/// from the disk cache ([`bitsage_cuda::compile::warm`], which compiles
/// nothing: on a new machine the proof compiles what it needs, and no more).
/// Does nothing for the CPU, or in a build without CUDA.
pub fn open_gpu_in_background(choice: BackendChoice) {
    #[cfg(feature = "cuda")]
    if choice != BackendChoice::Cpu {
        let opening = std::thread::Builder::new().name("gpu-open".into()).spawn(|| {
            // An error here is found again, and reported, by the proof.
            let _ = cuda::init();
        });
        if let Err(e) = opening {
            tracing::debug!("not opening the GPU early: {e}");
        }
        warm_kernels_in_background();
    }
    #[cfg(not(feature = "cuda"))]
    let _ = choice;
}

/// Starts [`bitsage_cuda::compile::warm`] for a proof with the hash
/// component (whose kernels include every other proof's) on a thread of its
/// own. A proof without the hash component then waits for none of it.
#[cfg(feature = "cuda")]
pub(crate) fn warm_kernels_in_background() {
    let warming = std::thread::Builder::new().name("gpu-kernels".into()).spawn(|| {
        // Nothing is lost if this fails: the proof's own `prepare` finds the same error, or compiles.
        if let Err(e) = bitsage_cuda::compile::warm(bitsage_cuda::compile::Needs { hash: true, poseidon252: false }) {
            tracing::debug!("warming the CUDA kernels: {e}");
        }
    });
    if let Err(e) = warming {
        tracing::debug!("not warming the CUDA kernels early: {e}");
    }
}

#[cfg(feature = "cuda")]
fn gpu_name() -> Result<String, ProveError> {
    let g = cuda::init().map_err(|e| ProveError::backend_by("opening GPU 0", e))?;
    g.name().map_err(|e| ProveError::backend_by("reading GPU 0's name", e))
}

#[cfg(not(feature = "cuda"))]
fn gpu_name() -> Result<String, ProveError> {
    Err(ProveError::backend("this build has no CUDA support (build bitsage-prover with the `cuda` feature)"))
}

#[cfg(feature = "cuda")]
pub(crate) fn prove_on_gpu(
    statement: &Statement,
    trace: &Trace,
    opts: &ProveOptions<'_>,
) -> Result<(Proof, ProofStats), ProveError> {
    prove_trace_on::<bitsage_cuda::backend::CudaBackend>(statement, trace, opts, &Forgery::None)
}

/// [`prove_poseidon252`] on the CUDA backend (GPU 0): the same proof, byte
/// for byte.
#[cfg(feature = "cuda")]
pub fn prove_poseidon252_on_gpu(
    statement: &Statement,
    trace: &Trace,
    opts: &ProveOptions<'_>,
) -> Result<(Proof<Poseidon252MerkleHasher>, ProofStats), ProveError> {
    prove_poseidon252_on::<bitsage_cuda::backend::CudaBackend>(statement, trace, opts)
}

#[cfg(not(feature = "cuda"))]
pub fn prove_poseidon252_on_gpu(
    _: &Statement,
    _: &Trace,
    _: &ProveOptions<'_>,
) -> Result<(Proof<Poseidon252MerkleHasher>, ProofStats), ProveError> {
    gpu_name().map(|_| unreachable!("no CUDA support in this build"))
}

#[cfg(not(feature = "cuda"))]
pub(crate) fn prove_on_gpu(_: &Statement, _: &Trace, _: &ProveOptions<'_>) -> Result<(Proof, ProofStats), ProveError> {
    gpu_name().map(|_| unreachable!("no CUDA support in this build"))
}

/// A stage of proving, reported to the progress callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    Execute,
    MainTrace,
    CommitMain,
    InteractionTrace,
    CommitInteraction,
    Stark,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Execute,
        Stage::MainTrace,
        Stage::CommitMain,
        Stage::InteractionTrace,
        Stage::CommitInteraction,
        Stage::Stark,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Stage::Execute => "execute",
            Stage::MainTrace => "main trace",
            Stage::CommitMain => "commit main (LDE + Merkle)",
            Stage::InteractionTrace => "LogUp trace",
            Stage::CommitInteraction => "commit LogUp (LDE + Merkle)",
            Stage::Stark => "constraints, quotients, FRI, grinding",
        }
    }
}

/// Time spent per stage, and trace shape.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProofStats {
    pub stages: Vec<(Stage, Duration)>,
    pub steps: usize,
    pub cpu_rows: usize,
    pub main_columns: usize,
    pub total_rows: usize,
}

pub struct ProveOptions<'a> {
    pub security: SecurityLevel,
    pub limits: ExecLimits,
    /// Called when a stage starts.
    pub on_stage: Option<&'a (dyn Fn(Stage) + Sync)>,
    /// Proof parameters other than the security level's. Only for
    /// benchmarks that compare settings: [`bitsage_air::verify`] refuses a
    /// proof made with any but the level's own
    /// ([`SecurityLevel::pcs_config`]).
    pub config: Option<PcsConfig>,
}

impl Default for ProveOptions<'_> {
    fn default() -> Self {
        ProveOptions { security: SecurityLevel::default(), limits: ExecLimits::default(), on_stage: None, config: None }
    }
}

/// A Stwo backend the ObelyskVM proof can run on: it takes the main trace
/// built on the host (all of it, or all but the CPU rows, which it then
/// builds itself), builds the interaction trace, and runs every component's
/// prover.
pub trait ProverBackend: BackendForChannel<Blake2sMerkleChannel> + PolyOps + Sized {
    /// Makes ready, before proving starts, what proving `main` over the
    /// Blake2s or (with `poseidon252`) the Poseidon252 channel will use: the
    /// CUDA backend compiles the proof's kernels here, all at once.
    fn prepare(_main: &tracegen::MainTrace, _poseidon252: bool) -> Result<(), ProveError> {
        Ok(())
    }
    /// Whether the commitment keeps each column's coefficients, so the
    /// out-of-domain samples are evaluated from them rather than from the
    /// evaluations with barycentric weights. The value is the same either
    /// way (so is the proof); what differs is the cost.
    const STORE_COEFFICIENTS: bool = false;
    /// Told, before the STARK starts, what its FRI queries will be drawn
    /// over (`2^lifting_log_size` positions, the config's count and fold
    /// step): the CUDA backend plans its decommitment reads from it.
    fn expect_queries(_lifting_log_size: u32, _config: &stwo::core::pcs::PcsConfig) -> Result<(), ProveError> {
        Ok(())
    }
    /// The main trace of an execution, as this backend commits it: built on
    /// the host here; a backend that builds the CPU rows itself (from the
    /// steps) leaves them out ([`tracegen::build_main_trace_deferred`]).
    fn main_trace<'t>(program: &Program, trace: &'t Trace) -> tracegen::MainTrace<'t> {
        build_main_trace(program, trace)
    }
    /// What this backend keeps of the main trace to build the interaction
    /// trace from after the main trace is committed (the commitment consumes
    /// the evaluations it is given).
    type MainCopy;
    /// The main trace's columns on this backend, for the commitment, and
    /// what [`ProverBackend::interaction_trace`] will read.
    fn convert_main(
        main: &tracegen::MainTrace,
    ) -> (
        Vec<stwo::prover::poly::circle::CircleEvaluation<Self, M31, stwo::prover::poly::BitReversedOrder>>,
        Self::MainCopy,
    );
    /// The LogUp interaction trace of every component, in component order,
    /// and their claimed sums.
    #[allow(clippy::type_complexity)]
    fn interaction_trace(
        main: &tracegen::MainTrace,
        copy: Self::MainCopy,
        rels: &Relations,
    ) -> (
        Vec<stwo::prover::poly::circle::CircleEvaluation<Self, M31, stwo::prover::poly::BitReversedOrder>>,
        [SecureField; 5],
    );
    /// The component provers, in the order the AIR allocates their columns.
    fn provers(c: &Components) -> Vec<&dyn ComponentProver<Self>>;
}

impl ProverBackend for SimdBackend {
    /// Stwo's SIMD barycentric weights compute one domain point and one
    /// QM31 inverse per row, for every (size, point) pair sampled: about 30
    /// of a 160 ms ml_inference proof on two cores. Evaluating from the
    /// coefficients, which the commitment computes anyway, is a packed
    /// multiply-add per sixteen coefficients.
    const STORE_COEFFICIENTS: bool = true;
    type MainCopy = ();
    fn convert_main(main: &tracegen::MainTrace) -> (Vec<Eval>, ()) {
        (main.evals(), ())
    }
    fn interaction_trace(main: &tracegen::MainTrace, _: (), rels: &Relations) -> (Vec<Eval>, [SecureField; 5]) {
        tracegen::cpu_interaction_trace(main, rels)
    }
    fn provers(c: &Components) -> Vec<&dyn ComponentProver<Self>> {
        component_provers(c)
    }
}

/// The present components' provers on backend `B`, in allocation order.
pub fn component_provers<B: stwo::prover::backend::Backend>(c: &Components) -> Vec<&dyn ComponentProver<B>>
where
    FrameworkComponent<CpuEval>: ComponentProver<B>,
    FrameworkComponent<RomEval>: ComponentProver<B>,
    FrameworkComponent<MemEval>: ComponentProver<B>,
    FrameworkComponent<RangeEval>: ComponentProver<B>,
    FrameworkComponent<HashEval>: ComponentProver<B>,
{
    let mut v: Vec<&dyn ComponentProver<B>> = vec![&c.cpu, &c.rom, &c.mem, &c.range];
    if let Some(h) = &c.hash {
        v.push(h);
    }
    v
}

/// Executes `program` and proves the run on the default (SIMD) backend.
pub fn prove(
    program: &Program,
    input: &[obelysk_vm::M31],
    advice: &[obelysk_vm::M31],
    opts: &ProveOptions<'_>,
) -> Result<(Proof, Statement, ProofStats), ProveError> {
    if let Some(f) = opts.on_stage {
        f(Stage::Execute);
    }
    let t0 = Instant::now();
    let trace = execute(program, input, advice, opts.limits)?;
    let exec_time = t0.elapsed();
    let statement = Statement {
        program: program.clone(),
        input: input.to_vec(),
        output: trace.output.clone(),
        security: opts.security,
    };
    let (proof, mut stats) = prove_trace(&statement, &trace, opts)?;
    stats.stages.insert(0, (Stage::Execute, exec_time));
    Ok((proof, statement, stats))
}

/// Proves `trace` against `statement` on the SIMD backend.
pub fn prove_trace(
    statement: &Statement,
    trace: &Trace,
    opts: &ProveOptions<'_>,
) -> Result<(Proof, ProofStats), ProveError> {
    prove_trace_on::<SimdBackend>(statement, trace, opts, &Forgery::None)
}

/// How a proof may be forged. Builds without the `forge` feature (every
/// shipped binary) can only prove honestly; the soundness tests enable it
/// because they need proofs of bad traces to hand to the verifier, and the
/// honest prover refuses to make those.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgery {
    None,
    /// Skip the prover's own constraint check and emit the proof anyway.
    #[cfg(feature = "forge")]
    SkipCheck,
    /// Also rewrite the CPU's claimed LogUp sum so the sums balance, so the
    /// verifier's balance check passes and only the STARK can catch it.
    #[cfg(feature = "forge")]
    SkipCheckAndBalance,
}

/// The proving core, generic over the Stwo backend.
pub fn prove_trace_on<B>(
    statement: &Statement,
    trace: &Trace,
    opts: &ProveOptions<'_>,
    forgery: &Forgery,
) -> Result<(Proof, ProofStats), ProveError>
where
    B: ProverBackend,
{
    prove_trace_over::<B, Blake2sMerkleChannel>(statement, trace, opts, forgery)
}

/// The proving core over any of Stwo's Merkle channels the backend has:
/// builds the main trace, then [`prove_main_with`].
pub fn prove_trace_over<B, MC>(
    statement: &Statement,
    trace: &Trace,
    opts: &ProveOptions<'_>,
    forgery: &Forgery,
) -> Result<(Proof<MC::H>, ProofStats), ProveError>
where
    B: ProverBackend + BackendForChannel<MC>,
    MC: MerkleChannel,
    MC::C: Default,
{
    if let Some(f) = opts.on_stage {
        f(Stage::MainTrace);
    }
    let t0 = Instant::now();
    let main = {
        let _s = info_span!("main_trace").entered();
        B::main_trace(&statement.program, trace)
    };
    let mut stats = ProofStats { steps: trace.steps.len(), ..Default::default() };
    stats.stages.push((Stage::MainTrace, t0.elapsed()));
    prove_main_with::<B, MC>(statement, &main, opts, forgery, stats)
}

/// Proves an already built main trace. Public so the soundness tests can
/// edit trace rows (padding rows included) before proving.
pub fn prove_main_on<B>(
    statement: &Statement,
    main: &tracegen::MainTrace,
    opts: &ProveOptions<'_>,
    forgery: &Forgery,
    stats: ProofStats,
) -> Result<(Proof, ProofStats), ProveError>
where
    B: ProverBackend,
{
    prove_main_with::<B, Blake2sMerkleChannel>(statement, main, opts, forgery, stats)
}

/// Proves `trace` over Stwo's Poseidon252 Merkle channel on the SIMD backend:
/// the proof an on-chain verifier checks (Cairo hashes Poseidon natively;
/// `bitsage_air::verify::verify_poseidon252` is its Rust counterpart).
/// Receipts default to the Blake2s channel.
pub fn prove_poseidon252(
    statement: &Statement,
    trace: &Trace,
    opts: &ProveOptions<'_>,
) -> Result<(Proof<Poseidon252MerkleHasher>, ProofStats), ProveError> {
    prove_poseidon252_on::<SimdBackend>(statement, trace, opts)
}

/// [`prove_poseidon252`] on any backend with the Poseidon252 channel.
pub fn prove_poseidon252_on<B>(
    statement: &Statement,
    trace: &Trace,
    opts: &ProveOptions<'_>,
) -> Result<(Proof<Poseidon252MerkleHasher>, ProofStats), ProveError>
where
    B: ProverBackend + BackendForChannel<Poseidon252MerkleChannel>,
{
    prove_trace_over::<B, Poseidon252MerkleChannel>(statement, trace, opts, &Forgery::None)
}

/// The proving core over any of Stwo's Merkle channels the backend has.
pub fn prove_main_with<B, MC>(
    statement: &Statement,
    main: &tracegen::MainTrace,
    opts: &ProveOptions<'_>,
    forgery: &Forgery,
    mut stats: ProofStats,
) -> Result<(Proof<MC::H>, ProofStats), ProveError>
where
    B: ProverBackend + BackendForChannel<MC>,
    MC: MerkleChannel,
    MC::C: Default,
{
    // A statement the verifier would refuse (a word >= p, over a cap) is
    // refused here, before any proving work.
    statement.validate()?;
    B::prepare(main, std::any::type_name::<MC>() == std::any::type_name::<Poseidon252MerkleChannel>())?;
    let mut clock = StageClock { last: None, stats: &mut stats, on_stage: opts.on_stage };
    let claim = main.claim;

    clock.start(Stage::CommitMain);
    let config = opts.config.unwrap_or_else(|| statement.security.pcs_config(&claim));
    let max_log = claim.max_log_size();
    let twiddles = B::precompute_twiddles(
        CanonicCoset::new(max_log + 1 + config.fri_config.log_blowup_factor).circle_domain().half_coset,
    );
    let channel = &mut MC::C::default();
    config.mix_into(channel);
    statement.mix_into(&claim, channel);
    let mut scheme = CommitmentSchemeProver::<B, MC>::new(config, &twiddles);
    if B::STORE_COEFFICIENTS {
        scheme.set_store_polynomials_coefficients();
    }
    scheme.tree_builder().commit(channel);
    let mut tb = scheme.tree_builder();
    let (main_evals, main_copy) = B::convert_main(main);
    tb.extend_evals(main_evals);
    tb.commit(channel);

    clock.start(Stage::InteractionTrace);
    let rels = Relations::draw(channel);
    let (itrace, sums) = {
        let _s = info_span!("interaction_trace").entered();
        B::interaction_trace(main, main_copy, &rels)
    };
    let interaction = InteractionClaim { cpu: sums[0], rom: sums[1], mem: sums[2], range: sums[3], hash: sums[4] };
    #[cfg(feature = "forge")]
    let interaction = match forgery {
        Forgery::SkipCheckAndBalance => forge::balance(interaction, statement, &claim, &rels),
        _ => interaction,
    };

    clock.start(Stage::CommitInteraction);
    interaction.mix_into(channel);
    let mut tb = scheme.tree_builder();
    tb.extend_evals(itrace);
    tb.commit(channel);

    clock.start(Stage::Stark);
    stats_shape(clock.stats, main);
    let components = Components::new(&claim, &rels, &interaction);
    let provers = B::provers(&components);
    B::expect_queries(config.lifting_log_size.unwrap_or(max_log + config.fri_config.log_blowup_factor), &config)?;
    let stark = match forgery {
        Forgery::None => {
            stwo::prover::prove::<B, MC>(&provers, channel, scheme).map_err(|_| ProveError::ConstraintsNotSatisfied)?
        }
        #[cfg(feature = "forge")]
        _ => forge::prove_unchecked::<B, MC>(&provers, channel, scheme),
    };
    clock.finish();
    Ok((Proof { claim, interaction, stark }, stats))
}

fn stats_shape(stats: &mut ProofStats, main: &tracegen::MainTrace) {
    stats.cpu_rows = 1 << main.claim.cpu_log_size;
    stats.main_columns = main.n_columns();
    stats.total_rows = main.components().iter().map(|c| 1usize << c.log_size).sum();
}

struct StageClock<'a, 'b> {
    last: Option<(Stage, Instant)>,
    stats: &'a mut ProofStats,
    on_stage: Option<&'b (dyn Fn(Stage) + Sync)>,
}

impl StageClock<'_, '_> {
    fn start(&mut self, s: Stage) {
        self.finish();
        if let Some(f) = self.on_stage {
            f(s);
        }
        self.last = Some((s, Instant::now()));
    }
    fn finish(&mut self) {
        if let Some((s, t)) = self.last.take() {
            self.stats.stages.push((s, t.elapsed()));
        }
    }
}

#[cfg(feature = "forge")]
mod forge;

#[cfg(test)]
mod tests {
    use obelysk_vm::isa::ProgramError;

    use super::*;

    /// `e` and its sources, as chain renderers (`anyhow`'s `{:#}`, the
    /// node's verdicts) print them.
    fn causes(e: &dyn std::error::Error) -> Vec<String> {
        let mut out = vec![e.to_string()];
        let mut next = e.source();
        while let Some(s) = next {
            out.push(s.to_string());
            next = s.source();
        }
        out
    }

    #[test]
    fn a_nested_error_names_each_cause_once() {
        // A proof of a program the VM refuses: ProveError <- ExecError <- ProgramError.
        let e = ProveError::from(ExecError::from(ProgramError::BadRegister { pc: 3, reg: 9 }));
        let rendered = causes(&e).join(": ");
        assert_eq!(rendered.matches("register r9 does not exist").count(), 1, "{rendered}");
        assert!(rendered.starts_with("pc 3: register r9"), "{rendered}");
        // The kind survives for whoever matches on it (the node's `vm-error`).
        assert!(matches!(e, ProveError::Exec(ExecError::InvalidProgram(_))), "{e:?}");
    }

    #[test]
    fn a_backend_failure_keeps_its_cause_typed() {
        let driver = std::io::Error::other("the driver refused the context");
        let e = ProveError::backend_by("opening GPU 0", driver);
        assert_eq!(causes(&e), ["backend unavailable", "opening GPU 0", "the driver refused the context"]);
        let ProveError::Backend(b) = &e else { panic!("{e:?}") };
        assert!(b.source.as_ref().and_then(|s| s.downcast_ref::<std::io::Error>()).is_some(), "the source stays typed");
        assert_eq!(
            causes(&ProveError::backend("no CUDA device found")),
            ["backend unavailable", "no CUDA device found"]
        );
    }
}
