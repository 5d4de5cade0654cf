//! The program table. Its rows must be exactly the program's instructions
//! and table entries: each row with `is_def = 1` consumes its tuple from
//! `RomDef`, to which the verifier adds every program tuple once. Rows then
//! serve fetches and table lookups with a free multiplicity through `Rom`.

use obelysk_vm::isa::{Instr, Program};
use stwo::core::fields::m31::M31;

use crate::relations::{Lookup, Rel};
use crate::{c, columns, AirValue};

columns!(RomCols { is_def, mult } [ e: 8 ]);

impl<F: AirValue> RomCols<F> {
    pub fn lookups(&self) -> Vec<Lookup<F>> {
        vec![
            Lookup::new(Rel::RomDef, c::<F>(0) - self.is_def.clone(), self.e.to_vec()),
            Lookup::new(Rel::Rom, self.mult.clone(), self.e.to_vec()),
        ]
    }
    pub fn air(&self, _name: &mut dyn FnMut(F) -> F) -> (Vec<F>, Vec<Lookup<F>>) {
        (self.constraints(), self.lookups())
    }

    pub fn constraints(&self) -> Vec<F> {
        vec![
            self.is_def.clone() * (self.is_def.clone() - c(1)),
            // Padding rows serve no lookups.
            self.mult.clone() * (c::<F>(1) - self.is_def.clone()),
        ]
    }
}

/// The program-table tuple of the instruction at `pc`.
pub fn instr_tuple(pc: u32, i: &Instr) -> [M31; 8] {
    [
        M31(0),
        M31::from(pc),
        M31(i.op as u32),
        M31(i.imm_mode as u32),
        M31(i.dst as u32),
        M31(i.a as u32),
        M31(i.b as u32),
        crate::felt(i.imm),
    ]
}

/// The tuple of entry `key -> value` of table number `table`.
pub fn table_tuple(table: u32, key: M31, value: M31) -> [M31; 8] {
    let mut e = [M31(0); 8];
    (e[0], e[1], e[2]) = (M31::from(table + 1), key, value);
    e
}

/// The tuples of `program`, in table order: instructions, then table entries.
pub fn rom_tuples(program: &Program) -> Vec<[M31; 8]> {
    let mut out: Vec<[M31; 8]> = program.instrs.iter().enumerate().map(|(pc, i)| instr_tuple(pc as u32, i)).collect();
    for (t, table) in program.tables.iter().enumerate() {
        out.extend(table.entries.iter().map(|(k, v)| table_tuple(t as u32, crate::felt(*k), crate::felt(*v))));
    }
    out
}

crate::component_eval!(
    /// Evaluator for the program table.
    RomEval,
    RomCols
);
