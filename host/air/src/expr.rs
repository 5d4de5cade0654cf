//! The components' constraint expressions (the constraint framework's
//! `ExprEvaluator` over each component's own `evaluate`) and the walks every
//! code generator shares: which columns, at which row offsets, and which
//! parameters an expression reads. The CUDA kernels (`bitsage-cuda`) and the
//! on-chain verifier's Cairo ([`crate::cairo`]) are generated from these.

use std::collections::BTreeSet;

use stwo_constraint_framework::expr::{BaseExpr, ExprEvaluator, ExtExpr};
use stwo_constraint_framework::FrameworkEval;

use crate::cpu::CpuEval;
use crate::hash::HashEval;
use crate::memory::MemEval;
use crate::range::RangeEval;
use crate::relations::Relations;
use crate::rom::RomEval;

/// A mask read: `(interaction, column index, row offset)`, with the index in
/// `ExprEvaluator`'s numbering (one counter over all interactions).
pub type Mask = (usize, usize, isize);

/// The expression trees of the five ObelyskVM components at `log_size`, by
/// component name.
pub fn expressions(log_size: u32, rels: &Relations) -> Vec<(&'static str, ExprEvaluator)> {
    let r = || rels.clone();
    vec![
        ("cpu", CpuEval { log_size, rels: r() }.evaluate(ExprEvaluator::new())),
        ("rom", RomEval { log_size, rels: r() }.evaluate(ExprEvaluator::new())),
        ("memory", MemEval { log_size, rels: r() }.evaluate(ExprEvaluator::new())),
        ("range", RangeEval { log_size, rels: r() }.evaluate(ExprEvaluator::new())),
        ("hash", HashEval { log_size, rels: r() }.evaluate(ExprEvaluator::new())),
    ]
}

/// The mask a column expression reads.
pub fn parse_mask(e: &BaseExpr) -> Mask {
    // `trace_{interaction}_column_{idx}_offset_{k | neg_k}`: the fields are
    // private to the framework, its formatter is the stable view of them.
    let s = e.format_expr();
    let parts: Vec<&str> = s.split('_').collect();
    let num = |i: usize| parts.get(i).and_then(|p| p.parse::<usize>().ok());
    match (parts.first(), num(1), num(3), parts.get(5)) {
        (Some(&"trace"), Some(interaction), Some(idx), Some(&"neg")) => {
            (interaction, idx, -(num(6).unwrap_or_default() as isize))
        }
        (Some(&"trace"), Some(interaction), Some(idx), Some(_)) => {
            (interaction, idx, num(5).unwrap_or_default() as isize)
        }
        _ => panic!("unexpected column expression {s}"),
    }
}

/// What a set of expressions reads.
#[derive(Default)]
pub struct Vars {
    pub masks: BTreeSet<Mask>,
    pub base_params: BTreeSet<String>,
    pub ext_params: BTreeSet<String>,
}

pub fn visit_base(e: &BaseExpr, v: &mut Vars) {
    match e {
        BaseExpr::Col(_) => {
            v.masks.insert(parse_mask(e));
        }
        BaseExpr::Const(_) => {}
        BaseExpr::Param(p) => {
            v.base_params.insert(p.clone());
        }
        BaseExpr::Add(a, b) | BaseExpr::Sub(a, b) | BaseExpr::Mul(a, b) => {
            visit_base(a, v);
            visit_base(b, v);
        }
        BaseExpr::Neg(a) | BaseExpr::Inv(a) => visit_base(a, v),
    }
}

pub fn visit_ext(e: &ExtExpr, v: &mut Vars) {
    match e {
        ExtExpr::SecureCol(cs) => cs.iter().for_each(|c| visit_base(c, v)),
        ExtExpr::Const(_) => {}
        ExtExpr::Param(p) => {
            v.ext_params.insert(p.clone());
        }
        ExtExpr::Add(a, b) | ExtExpr::Sub(a, b) | ExtExpr::Mul(a, b) => {
            visit_ext(a, v);
            visit_ext(b, v);
        }
        ExtExpr::Neg(a) => visit_ext(a, v),
    }
}

/// `"intermediate{k}"` in creation order (later ones may use earlier ones).
pub fn ordered(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = names.collect();
    v.sort_by_key(|n| n.trim_start_matches("intermediate").parse::<usize>().unwrap_or(usize::MAX));
    v
}
