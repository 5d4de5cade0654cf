//! The LogUp relations between components, and the generic lookup entry.

use stwo::core::channel::Channel;
use stwo_constraint_framework::{relation, Relation, RelationEFTraitBound};

relation!(StateRel, 4);
relation!(RomRel, 8);
relation!(RomDefRel, 8);
relation!(MemRel, 4);
relation!(MemChainRel, 2);
relation!(RangeRel, 1);
relation!(RangeChainRel, 1);
relation!(InputRel, 2);
relation!(OutputRel, 2);
relation!(HashCallRel, 2);

/// Which relation an entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rel {
    /// `(pc, clk, in_ptr, out_ptr)`: the CPU state passed from step to step.
    State,
    /// `(0, pc, opcode, imm_mode, dst, a, b, imm)` or `(1 + table, key, value)`.
    Rom,
    /// The same tuples, defined once each by the program (verifier terms).
    RomDef,
    /// `(space, addr, value, ts)`: space 0 = registers, 1 = RAM.
    Mem,
    /// `(space, addr)`: enumerates the address list of the memory boundary.
    MemChain,
    /// `(v)` with `v < 2^16`.
    Range,
    /// `(v)`: enumerates the range table.
    RangeChain,
    /// `(index, word)` of the public input.
    Input,
    /// `(index, word)` of the public output.
    Output,
    /// `(base, clk)`: a `hash` instruction handed to the hash component.
    HashCall,
}

/// One LogUp entry: `mult / (z - combine(values))` in relation `rel`.
/// Producers use positive multiplicities, consumers negative ones.
pub struct Lookup<F> {
    pub rel: Rel,
    pub mult: F,
    pub values: Vec<F>,
}

impl<F> Lookup<F> {
    pub fn new(rel: Rel, mult: F, values: Vec<F>) -> Self {
        Lookup { rel, mult, values }
    }
}

/// The drawn elements of every relation.
#[derive(Clone, Debug)]
pub struct Relations {
    pub state: StateRel,
    pub rom: RomRel,
    pub rom_def: RomDefRel,
    pub mem: MemRel,
    pub mem_chain: MemChainRel,
    pub range: RangeRel,
    pub range_chain: RangeChainRel,
    pub input: InputRel,
    pub output: OutputRel,
    pub hash_call: HashCallRel,
}

impl Relations {
    /// Elements used only to lay out columns: column sizes do not depend on
    /// the elements, and the verifier needs the sizes before it may draw the
    /// real ones. Never used to prove or to check a lookup.
    pub(crate) fn for_layout() -> Self {
        Relations {
            state: StateRel::dummy(),
            rom: RomRel::dummy(),
            rom_def: RomDefRel::dummy(),
            mem: MemRel::dummy(),
            mem_chain: MemChainRel::dummy(),
            range: RangeRel::dummy(),
            range_chain: RangeChainRel::dummy(),
            input: InputRel::dummy(),
            output: OutputRel::dummy(),
            hash_call: HashCallRel::dummy(),
        }
    }

    pub fn draw(ch: &mut impl Channel) -> Self {
        Relations {
            state: StateRel::draw(ch),
            rom: RomRel::draw(ch),
            rom_def: RomDefRel::draw(ch),
            mem: MemRel::draw(ch),
            mem_chain: MemChainRel::draw(ch),
            range: RangeRel::draw(ch),
            range_chain: RangeChainRel::draw(ch),
            input: InputRel::draw(ch),
            output: OutputRel::draw(ch),
            hash_call: HashCallRel::draw(ch),
        }
    }

    /// `combine(values) = Σ α^i v_i - z` for relation `rel`.
    pub fn combine<F: Clone, EF: RelationEFTraitBound<F>>(&self, rel: Rel, values: &[F]) -> EF {
        match rel {
            Rel::State => self.state.combine(values),
            Rel::Rom => self.rom.combine(values),
            Rel::RomDef => self.rom_def.combine(values),
            Rel::Mem => self.mem.combine(values),
            Rel::MemChain => self.mem_chain.combine(values),
            Rel::Range => self.range.combine(values),
            Rel::RangeChain => self.range_chain.combine(values),
            Rel::Input => self.input.combine(values),
            Rel::Output => self.output.combine(values),
            Rel::HashCall => self.hash_call.combine(values),
        }
    }
}

/// Adds `lookups` to an evaluator, batched in pairs: one LogUp column per
/// pair, constraint degree 3 (denominators are linear).
pub fn add_lookups<E: stwo_constraint_framework::EvalAtRow>(
    eval: &mut E,
    rels: &Relations,
    lookups: Vec<Lookup<E::F>>,
) {
    for l in lookups {
        let denom: E::EF = rels.combine(l.rel, &l.values);
        eval.write_logup_frac(stwo::core::Fraction::new(E::EF::from(l.mult), denom));
    }
    eval.finalize_logup_in_pairs();
}
