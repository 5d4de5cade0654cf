//! The LogUp relations between components, and the generic lookup entry.

use stwo::core::channel::Channel;
use stwo::core::fields::m31::M31;
use stwo::core::fields::qm31::SecureField;
use stwo_constraint_framework::logup::LookupElements;
use stwo_constraint_framework::{relation, Relation, RelationEFTraitBound, RelationEntry};

/// Runs `$body` with `$r` bound to the relation `$rel` of `$rels`.
macro_rules! for_each_relation {
    ($rels:expr, $rel:expr, $r:ident => $body:expr) => {
        match $rel {
            Rel::State => {
                let $r = &$rels.state;
                $body
            }
            Rel::Rom => {
                let $r = &$rels.rom;
                $body
            }
            Rel::RomDef => {
                let $r = &$rels.rom_def;
                $body
            }
            Rel::Mem => {
                let $r = &$rels.mem;
                $body
            }
            Rel::MemChain => {
                let $r = &$rels.mem_chain;
                $body
            }
            Rel::Range => {
                let $r = &$rels.range;
                $body
            }
            Rel::RangeChain => {
                let $r = &$rels.range_chain;
                $body
            }
            Rel::Input => {
                let $r = &$rels.input;
                $body
            }
            Rel::Output => {
                let $r = &$rels.output;
                $body
            }
            Rel::HashCall => {
                let $r = &$rels.hash_call;
                $body
            }
        }
    };
}

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
        for_each_relation!(self, rel, r => r.combine(values))
    }

    /// Every relation's name (as `Relation::get_name` gives it), `z`, and
    /// `α^i`: the values of the `<name>_z` and `<name>_alpha<i>` parameters in
    /// the constraint framework's expression trees (GPU constraint kernels).
    pub fn elements(&self) -> Vec<(String, SecureField, Vec<SecureField>)> {
        fn one<const N: usize>(name: &str, e: &LookupElements<N>) -> (String, SecureField, Vec<SecureField>) {
            (name.to_string(), e.z, e.alpha_powers.to_vec())
        }
        vec![
            one(Relation::<M31, SecureField>::get_name(&self.state), &self.state.0),
            one(Relation::<M31, SecureField>::get_name(&self.rom), &self.rom.0),
            one(Relation::<M31, SecureField>::get_name(&self.rom_def), &self.rom_def.0),
            one(Relation::<M31, SecureField>::get_name(&self.mem), &self.mem.0),
            one(Relation::<M31, SecureField>::get_name(&self.mem_chain), &self.mem_chain.0),
            one(Relation::<M31, SecureField>::get_name(&self.range), &self.range.0),
            one(Relation::<M31, SecureField>::get_name(&self.range_chain), &self.range_chain.0),
            one(Relation::<M31, SecureField>::get_name(&self.input), &self.input.0),
            one(Relation::<M31, SecureField>::get_name(&self.output), &self.output.0),
            one(Relation::<M31, SecureField>::get_name(&self.hash_call), &self.hash_call.0),
        ]
    }
}

/// Adds `lookups` to an evaluator, batched in pairs: one LogUp column per
/// pair, constraint degree 3 (denominators are linear). Entries go through
/// `add_to_relation`, so symbolic evaluators see the relation elements as
/// named parameters rather than constants.
pub fn add_lookups<E: stwo_constraint_framework::EvalAtRow>(
    eval: &mut E,
    rels: &Relations,
    lookups: Vec<Lookup<E::F>>,
) {
    for l in lookups {
        let mult = E::EF::from(l.mult);
        for_each_relation!(rels, l.rel, r => eval.add_to_relation(RelationEntry::new(r, mult, &l.values)));
    }
    eval.finalize_logup_in_pairs();
}
