//! The LogUp relations between components, and the generic lookup entry.

use stwo::core::channel::Channel;
use stwo::core::fields::m31::M31;
use stwo::core::fields::qm31::SecureField;
use stwo_constraint_framework::{relation, Relation, RelationEFTraitBound, RelationEntry};

/// Declares every relation once: its element type (Stwo's `relation!`), its
/// `Rel` variant, its field in [`Relations`], and the order in which the
/// prover and verifier draw its elements (the list order).
macro_rules! relations {
    ($($(#[$doc:meta])* $variant:ident, $field:ident: $ty:ident, $size:literal;)*) => {
        $(relation!($ty, $size);)*

        /// Which relation an entry belongs to.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Rel {
            $($(#[$doc])* $variant,)*
        }

        impl Rel {
            /// This relation's position in [`Relations::elements`].
            pub const fn index(self) -> usize {
                self as usize
            }
        }

        /// The drawn elements of every relation.
        #[derive(Clone, Debug)]
        pub struct Relations {
            $(pub $field: $ty,)*
        }

        impl Relations {
            /// Elements used only to lay out columns: column sizes do not
            /// depend on the elements, and the verifier needs the sizes
            /// before it may draw the real ones. Never used to prove or to
            /// check a lookup.
            pub(crate) fn for_layout() -> Self {
                Relations { $($field: $ty::dummy(),)* }
            }

            pub fn draw(ch: &mut impl Channel) -> Self {
                Relations { $($field: $ty::draw(ch),)* }
            }

            /// `combine(values) = Σ α^i v_i - z` for relation `rel`.
            pub fn combine<F: Clone, EF: RelationEFTraitBound<F>>(&self, rel: Rel, values: &[F]) -> EF {
                match rel {
                    $(Rel::$variant => self.$field.combine(values),)*
                }
            }

            /// Hands one lookup entry to an evaluator through `add_to_relation`.
            fn add_to<E: stwo_constraint_framework::EvalAtRow>(&self, eval: &mut E, rel: Rel, mult: E::EF, values: &[E::F]) {
                match rel {
                    $(Rel::$variant => eval.add_to_relation(RelationEntry::new(&self.$field, mult, values)),)*
                }
            }

            /// Every relation's name (as `Relation::get_name` gives it), `z`,
            /// and `α^i`: the values of the `<name>_z` and `<name>_alpha<i>`
            /// parameters in the constraint framework's expression trees
            /// (GPU constraint kernels).
            pub fn elements(&self) -> Vec<(String, SecureField, Vec<SecureField>)> {
                vec![$((
                    Relation::<M31, SecureField>::get_name(&self.$field).to_string(),
                    self.$field.0.z,
                    self.$field.0.alpha_powers.to_vec(),
                ),)*]
            }
        }
    };
}

relations! {
    /// `(pc, clk, in_ptr, out_ptr)`: the CPU state passed from step to step.
    State, state: StateRel, 4;
    /// `(0, pc, opcode, imm_mode, dst, a, b, imm)` or `(1 + table, key, value)`.
    Rom, rom: RomRel, 8;
    /// The same tuples, defined once each by the program (verifier terms).
    RomDef, rom_def: RomDefRel, 8;
    /// `(space, addr, value, ts)`: space 0 = registers, 1 = RAM.
    Mem, mem: MemRel, 4;
    /// `(space, addr)`: enumerates the address list of the memory boundary.
    MemChain, mem_chain: MemChainRel, 2;
    /// `(v)` with `v < 2^16`.
    Range, range: RangeRel, 1;
    /// `(v)`: enumerates the range table.
    RangeChain, range_chain: RangeChainRel, 1;
    /// `(index, word)` of the public input.
    Input, input: InputRel, 2;
    /// `(index, word)` of the public output.
    Output, output: OutputRel, 2;
    /// `(base, clk)`: a `hash` instruction handed to the hash component.
    HashCall, hash_call: HashCallRel, 2;
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
        rels.add_to(eval, l.rel, E::EF::from(l.mult), &l.values);
    }
    eval.finalize_logup_in_pairs();
}
