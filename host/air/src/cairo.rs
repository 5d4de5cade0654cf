//! The on-chain verifier's constraint evaluation, generated from the AIR.
//!
//! For each component, a Cairo function evaluates the component's
//! constraints at the out-of-domain point, as Stwo's `PointEvaluator` does:
//! every mask value is the QM31 value sampled there, and each constraint in
//! order updates `acc = acc · random_coeff + denom_inverse · C`. It is
//! written from the same expression trees the CUDA kernels are generated
//! from ([`crate::expr`]), never by hand, so the chain checks the AIR the
//! prover proves. `contracts/src/stwo/air/` holds the generated files; a
//! test fails when they are stale, and
//! `BITSAGE_REGENERATE_CAIRO=1 cargo test -p bitsage-tests --test all onchain::air`
//! rewrites them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use stwo_constraint_framework::expr::{BaseExpr, ExprEvaluator, ExtExpr};

use crate::expr::{expressions, ordered, visit_base, visit_ext, Mask, Vars};
use crate::relations::Relations;

/// Intermediates or constraints per generated function: a function's frame
/// must stay within CASM's offsets.
const PER_FUNCTION: usize = 2;

/// One component's generated evaluator and how to feed it.
#[derive(Clone, Debug)]
pub struct CairoComponent {
    pub name: String,
    /// `(path under contracts/src/stwo/, source)`: the component's module,
    /// then its parts' when it is split.
    pub files: Vec<(String, String)>,
    /// How many part classes the evaluator library-calls (0: none, it is one class).
    pub n_parts: usize,
    /// The values `masks[k]` the function reads: `(interaction, column
    /// within that tree, row offset)`.
    pub masks: Vec<Mask>,
    /// Base-field parameters (`column_size`), in order.
    pub base_params: Vec<String>,
    /// Extension parameters (relation elements, `claimed_sum`), in order.
    pub ext_params: Vec<String>,
    pub n_constraints: usize,
}

struct Emitter<'a> {
    masks: &'a BTreeMap<Mask, usize>,
    base_params: &'a BTreeMap<String, usize>,
    ext_params: &'a BTreeMap<String, usize>,
    /// Intermediate name to its slot in `inter`.
    intermediates: &'a BTreeMap<String, usize>,
}

/// A value in generated code: zero, a base-field constant, or a variable.
#[derive(Clone, PartialEq)]
enum Val {
    Zero,
    Const(u32),
    Var(String),
}

#[derive(Clone, Copy)]
enum Arith {
    Add,
    Sub,
    Mul,
    Neg,
}

/// A base or an extension expression, emitted into a body.
trait Node {
    fn emit(&self, body: &mut Body<'_>) -> Val;
}

impl Node for BaseExpr {
    fn emit(&self, body: &mut Body<'_>) -> Val {
        body.base(self)
    }
}

impl Node for ExtExpr {
    fn emit(&self, body: &mut Body<'_>) -> Val {
        body.ext(self)
    }
}

/// One generated function's body, in single-assignment form: every input
/// loaded once at the top, then one `let` per operation, so no expression
/// nests and every value lives briefly (CASM's offsets bound a frame).
/// Field identities drop what adds or multiplies zero.
struct Body<'a> {
    em: &'a Emitter<'a>,
    loads: BTreeMap<String, String>,
    lines: Vec<String>,
}

impl<'a> Body<'a> {
    fn new(em: &'a Emitter<'a>) -> Self {
        Body { em, loads: BTreeMap::new(), lines: Vec::new() }
    }

    /// An input, read where it is used: a parameter span lives in the frame
    /// (fp-relative), while a value read early and used late would sit
    /// ap-relative across every call in between.
    fn load(&mut self, _var: String, code: String) -> Val {
        Val::Var(code)
    }

    fn code(v: &Val) -> String {
        match v {
            Val::Zero => "qm31(0, 0, 0, 0)".into(),
            Val::Const(c) => format!("qm31({c}, 0, 0, 0)"),
            Val::Var(n) => n.clone(),
        }
    }

    fn op(&mut self, f: &str, args: &[String]) -> Val {
        let v = format!("t{}", self.lines.len());
        self.lines.push(format!("let {v} = {f}({});", args.join(", ")));
        Val::Var(v)
    }

    fn add(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::Zero, x) | (x, Val::Zero) => x,
            (a, b) => self.op("qm31_add", &[Self::code(&a), Self::code(&b)]),
        }
    }

    fn sub(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (x, Val::Zero) => x,
            (Val::Zero, x) => self.op("qm31_neg", &[Self::code(&x)]),
            (a, b) => self.op("qm31_sub", &[Self::code(&a), Self::code(&b)]),
        }
    }

    fn mul(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::Zero, _) | (_, Val::Zero) => Val::Zero,
            (Val::Const(1), x) | (x, Val::Const(1)) => x,
            (Val::Const(c), x) | (x, Val::Const(c)) => self.op("qm31_scale", &[Self::code(&x), c.to_string()]),
            (a, b) => self.op("qm31_mul", &[Self::code(&a), Self::code(&b)]),
        }
    }

    fn param(&mut self, p: &str, ext: bool) -> Val {
        if let Some(k) = self.em.intermediates.get(p) {
            return self.load(format!("i{k}"), format!("*inter[{k}]"));
        }
        match ext {
            false => {
                let k = self.em.base_params[p];
                self.load(format!("b{k}"), format!("*base[{k}]"))
            }
            true => {
                let k = self.em.ext_params[p];
                self.load(format!("e{k}"), format!("*ext[{k}]"))
            }
        }
    }

    fn base(&mut self, e: &BaseExpr) -> Val {
        match e {
            BaseExpr::Col(_) => {
                let k = self.em.masks[&crate::expr::parse_mask(e)];
                self.load(format!("m{k}"), format!("*masks[{k}]"))
            }
            BaseExpr::Const(c) if c.0 == 0 => Val::Zero,
            BaseExpr::Const(c) => Val::Const(c.0),
            BaseExpr::Param(p) => self.param(p, false),
            BaseExpr::Add(a, b) => self.arith(Arith::Add, &**a, &**b),
            BaseExpr::Sub(a, b) => self.arith(Arith::Sub, &**a, &**b),
            BaseExpr::Mul(a, b) => self.arith(Arith::Mul, &**a, &**b),
            BaseExpr::Neg(a) => self.arith(Arith::Neg, &**a, &**a),
            BaseExpr::Inv(a) => {
                let a = self.base(a);
                self.op("qm31_inv", &[Self::code(&a)])
            }
        }
    }

    fn ext(&mut self, e: &ExtExpr) -> Val {
        match e {
            ExtExpr::SecureCol([a, b, c, d]) => {
                let v: Vec<Val> = [a, b, c, d].iter().map(|x| self.base(x)).collect();
                match &v[..] {
                    [a, Val::Zero, Val::Zero, Val::Zero] => a.clone(),
                    _ => self.op("secure_col", &v.iter().map(Self::code).collect::<Vec<_>>()),
                }
            }
            ExtExpr::Const(q) => {
                let [a, b, c, d] = q.to_m31_array();
                match (a.0, b.0, c.0, d.0) {
                    (0, 0, 0, 0) => Val::Zero,
                    (a, 0, 0, 0) => Val::Const(a),
                    (a, b, c, d) => {
                        let v = format!("t{}", self.lines.len());
                        self.lines.push(format!("let {v} = qm31({a}, {b}, {c}, {d});"));
                        Val::Var(v)
                    }
                }
            }
            ExtExpr::Param(p) => self.param(p, true),
            ExtExpr::Add(a, b) => self.arith(Arith::Add, &**a, &**b),
            ExtExpr::Sub(a, b) => self.arith(Arith::Sub, &**a, &**b),
            ExtExpr::Mul(a, b) => self.arith(Arith::Mul, &**a, &**b),
            ExtExpr::Neg(a) => self.arith(Arith::Neg, &**a, &**a),
        }
    }

    /// One arithmetic node of either expression kind (`Neg` reads `a` only).
    fn arith<N: Node>(&mut self, op: Arith, a: &N, b: &N) -> Val {
        let a = a.emit(self);
        match op {
            Arith::Neg => self.sub(Val::Zero, a),
            Arith::Add => {
                let b = b.emit(self);
                self.add(a, b)
            }
            Arith::Sub => {
                let b = b.emit(self);
                self.sub(a, b)
            }
            Arith::Mul => {
                let b = b.emit(self);
                self.mul(a, b)
            }
        }
    }

    /// The loads that are used (by an operation or as one of `results`),
    /// then the operations, indented.
    fn text(&self, results: &[Val]) -> String {
        let mut s = String::new();
        let used = |var: &str| {
            results.contains(&Val::Var(var.to_string()))
                || self.lines.iter().any(|l| l.split(|c: char| !c.is_alphanumeric() && c != '_').any(|w| w == var))
        };
        for (var, code) in self.loads.iter().filter(|(v, _)| used(v)) {
            let _ = writeln!(s, "    let {var} = {code};");
        }
        for l in &self.lines {
            let _ = writeln!(s, "    {l}");
        }
        s
    }
}

/// A part class of a split component: `{part}`, `{p}`, `{name}` filled in.
const PART_CONTRACT: &str = r#"
// Part {p} of the {name} component's evaluator, a class of its own.
#[starknet::contract]
pub mod {part} {
    use super::super::IAirPart;
    use super::QM31;

    #[storage]
    struct Storage {}

    #[abi(embed_v0)]
    impl {part}Impl of IAirPart<ContractState> {
        fn intermediates(self: @ContractState, masks: Array<QM31>, base: Array<QM31>, ext: Array<QM31>, inter: Array<QM31>) -> Array<QM31> {
            let mut inter = inter;
            super::run_intermediates(masks.span(), base.span(), ext.span(), ref inter);
            inter
        }
        fn constraints(self: @ContractState, masks: Array<QM31>, base: Array<QM31>, ext: Array<QM31>, inter: Array<QM31>, random_coeff: QM31, denom_inverse: QM31, acc: QM31) -> QM31 {
            super::run_constraints(masks.span(), base.span(), ext.span(), inter.span(), random_coeff, denom_inverse, acc)
        }
    }
}
"#;

/// The evaluator of a component in one class.
const EVAL_SINGLE: &str = r#"
// `acc · random_coeff^n + Σ_j random_coeff^(n-1-j) · denom_inverse · C_j` over the
// component's n constraints C_j, in the order it adds them.
pub fn eval(masks: Span<QM31>, base: Span<QM31>, ext: Span<QM31>, random_coeff: QM31, denom_inverse: QM31, acc: QM31) -> QM31 {
    assert(masks.len() == N_MASKS, 'mask count');
    assert(base.len() == {n_base} && ext.len() == {n_ext}, 'parameter count');
    let mut inter: Array<QM31> = array![];
    run_intermediates(masks, base, ext, ref inter);
    run_constraints(masks, base, ext, inter.span(), random_coeff, denom_inverse, acc)
}
"#;

/// The evaluator of a split component: its parts in order, by library calls.
const EVAL_SPLIT: &str = r#"
// `acc · random_coeff^n + Σ_j random_coeff^(n-1-j) · denom_inverse · C_j` over the
// component's n constraints C_j, in the order it adds them. The parts run in
// order, by library calls to their classes (`parts`).
pub fn eval(parts: Span<starknet::ClassHash>, masks: Span<QM31>, base: Span<QM31>, ext: Span<QM31>, random_coeff: QM31, denom_inverse: QM31, acc: QM31) -> QM31 {
    assert(parts.len() == N_PARTS, 'part count');
    assert(masks.len() == N_MASKS, 'mask count');
    assert(base.len() == {n_base} && ext.len() == {n_ext}, 'parameter count');
    let mut inter: Array<QM31> = array![];
    for class_hash in parts {
        let part = super::IAirPartLibraryDispatcher { class_hash: *class_hash };
        inter = part.intermediates(arr(masks), arr(base), arr(ext), inter);
    };
    let mut acc = acc;
    for class_hash in parts {
        let part = super::IAirPartLibraryDispatcher { class_hash: *class_hash };
        acc = part.constraints(arr(masks), arr(base), arr(ext), arr(inter.span()), random_coeff, denom_inverse, acc);
    };
    acc
}

fn arr(s: Span<QM31>) -> Array<QM31> {
    let mut a: Array<QM31> = array![];
    for v in s {
        a.append(*v);
    };
    a
}
"#;

/// A component evaluator's interface.
const CONTRACT_INTERFACE: &str = r#"
#[starknet::interface]
pub trait I{contract}<TContractState> {
    fn eval(self: @TContractState, masks: Array<QM31>, base: Array<QM31>, ext: Array<QM31>, random_coeff: QM31, denom_inverse: QM31) -> QM31;
}
"#;

/// A one-class component's contract.
const CONTRACT_SINGLE: &str = r#"
// The evaluator as a contract.
#[starknet::contract]
pub mod {contract} {
    use super::QM31;

    #[storage]
    struct Storage {}

    #[abi(embed_v0)]
    impl {contract}Impl of super::I{contract}<ContractState> {
        fn eval(self: @ContractState, masks: Array<QM31>, base: Array<QM31>, ext: Array<QM31>, random_coeff: QM31, denom_inverse: QM31) -> QM31 {
            super::eval(masks.span(), base.span(), ext.span(), random_coeff, denom_inverse, super::qm31(0, 0, 0, 0))
        }
    }
}
"#;

/// A split component's contract, deployed with its parts' class hashes.
const CONTRACT_SPLIT: &str = r#"
// The evaluator as a contract, deployed with its parts' class hashes in order.
#[starknet::contract]
pub mod {contract} {
    use starknet::ClassHash;
    use starknet::storage::{Map, StorageMapReadAccess, StorageMapWriteAccess};
    use super::QM31;

    #[storage]
    struct Storage {
        parts: Map<u32, ClassHash>,
    }

    #[constructor]
    fn constructor(ref self: ContractState, parts: Array<ClassHash>) {
        assert(parts.len() == super::N_PARTS, 'part count');
        let mut k: u32 = 0;
        for p in parts {
            self.parts.write(k, p);
            k += 1;
        };
    }

    #[abi(embed_v0)]
    impl {contract}Impl of super::I{contract}<ContractState> {
        fn eval(self: @ContractState, masks: Array<QM31>, base: Array<QM31>, ext: Array<QM31>, random_coeff: QM31, denom_inverse: QM31) -> QM31 {
            let mut parts: Array<ClassHash> = array![];
            let mut k: u32 = 0;
            while k < super::N_PARTS {
                parts.append(self.parts.read(k));
                k += 1;
            };
            super::eval(parts.span(), masks.span(), base.span(), ext.span(), random_coeff, denom_inverse, super::qm31(0, 0, 0, 0))
        }
    }
}
"#;

fn camel(name: &str) -> String {
    let mut c = name.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// Generated lines per contract class. A class holds at most 81,920 felts of
/// CASM (and of Sierra); the generated code compiles to about 35 CASM felts a
/// line, so a component larger than this is split into part classes that its
/// evaluator reaches by library calls.
const LINES_PER_CLASS: usize = 1800;

/// A generated function (an intermediates or a constraints part).
struct Function {
    text: String,
    lines: usize,
}

fn intermediates_fn(k: usize, names: &[String], ev: &ExprEvaluator, em: &Emitter) -> Function {
    let mut body = String::new();
    // Each intermediate reads earlier ones from `inter`: one block each.
    for n in names {
        let mut b = Body::new(em);
        let v = match (ev.intermediates.get(n), ev.ext_intermediates.get(n)) {
            (Some(e), _) => b.base(e),
            (None, Some(x)) => b.ext(x),
            (None, None) => unreachable!("{n} is an intermediate"),
        };
        let _ = writeln!(body, "    {{");
        for l in b.text(std::slice::from_ref(&v)).lines() {
            let _ = writeln!(body, "    {l}");
        }
        let _ = writeln!(body, "        inter.append({});", Body::code(&v));
        let _ = writeln!(body, "    }}");
    }
    let name = |p: &str| if body.contains(&format!("*{p}[")) { p.to_string() } else { format!("_{p}") };
    let text = format!(
        "#[inline(never)]\nfn intermediates_{k}({}: Span<QM31>, {}: Span<QM31>, {}: Span<QM31>, ref inter: Array<QM31>) {{\n{body}}}\n",
        name("masks"),
        name("base"),
        name("ext")
    );
    Function { lines: text.lines().count(), text }
}

fn constraints_fn(k: usize, cs: &[ExtExpr], em: &Emitter) -> Function {
    // Each constraint accumulates as soon as it is computed, so no value
    // outlives its constraint.
    let mut b = Body::new(em);
    for c in cs {
        let v = b.ext(c);
        b.lines
            .push(format!("acc = qm31_add(qm31_mul(acc, random_coeff), qm31_mul(denom_inverse, {}));", Body::code(&v)));
    }
    let body = b.text(&[]);
    let name = |p: &str| if body.contains(&format!("*{p}[")) { p.to_string() } else { format!("_{p}") };
    let text = format!(
        "#[inline(never)]\nfn constraints_{k}({}: Span<QM31>, {}: Span<QM31>, {}: Span<QM31>, {}: Span<QM31>, random_coeff: QM31, denom_inverse: QM31, acc: QM31) -> QM31 {{\n    let mut acc = acc;\n{body}    acc\n}}\n",
        name("masks"),
        name("base"),
        name("ext"),
        name("inter")
    );
    Function { lines: text.lines().count(), text }
}

/// The imports a module's code needs (an unused import fails the build).
fn imports(code: &str) -> String {
    let used: Vec<&str> =
        ["qm31_add", "qm31_from_m31", "qm31_inv", "qm31_mul", "qm31_neg", "qm31_scale", "qm31_sub", "secure_col"]
            .into_iter()
            .filter(|f| code.contains(&format!("{f}(")))
            .collect();
    let mut names = vec!["QM31"];
    if code.contains("qm31(") {
        names.push("qm31");
    }
    names.extend(used);
    format!("use super::super::fields::{{{}}};\n", names.join(", "))
}

/// Loops over functions `lo..hi` of `kind` (`intermediates` or
/// `constraints`) through a dispatcher: one iteration is one frame, so the
/// parts' frames never add up within one function.
fn runner(kind: &str, lo: usize, hi: usize) -> String {
    let accumulates = kind == "constraints";
    let (params, args) = if accumulates {
        (
            "masks: Span<QM31>, base: Span<QM31>, ext: Span<QM31>, inter: Span<QM31>, random_coeff: QM31, denom_inverse: QM31, acc: QM31",
            "masks, base, ext, inter, random_coeff, denom_inverse, acc",
        )
    } else {
        ("masks: Span<QM31>, base: Span<QM31>, ext: Span<QM31>, ref inter: Array<QM31>", "masks, base, ext, ref inter")
    };
    let ret = if accumulates { " -> QM31" } else { "" };
    if lo == hi {
        // Nothing of this kind here: every input unused but the state.
        let params: Vec<String> = params
            .split(", ")
            .map(|p| if p.starts_with("acc") || p.starts_with("ref") { p.to_string() } else { format!("_{p}") })
            .collect();
        let body = if accumulates { "\n    acc\n" } else { "" };
        return format!("fn run_{kind}({}){ret} {{{body}}}\n", params.join(", "));
    }
    let mut s = format!("fn run_{kind}({params}){ret} {{\n");
    if accumulates {
        s.push_str("    let mut acc = acc;\n");
    }
    let _ = writeln!(s, "    let mut k: u32 = {lo};");
    let _ = writeln!(s, "    while k < {hi} {{");
    let _ = writeln!(s, "        {}match k {{", if accumulates { "acc = " } else { "" });
    for k in lo..hi {
        let arm = if k + 1 == hi { "_".to_string() } else { k.to_string() };
        let _ = writeln!(s, "            {arm} => {kind}_{k}({args}),");
    }
    let _ = writeln!(s, "        }};");
    let _ = writeln!(s, "        k += 1;");
    let _ = writeln!(s, "    }}");
    if accumulates {
        s.push_str("    acc\n");
    }
    s.push_str("}\n");
    s
}

/// Generates component `name`'s evaluator from its expression tree: the
/// files under `contracts/src/stwo/` (`air/<name>.cairo`, and
/// `air/<name>_part<p>.cairo` when split).
pub fn generate_component(name: &str, ev: &ExprEvaluator) -> CairoComponent {
    let mut vars = Vars::default();
    ev.intermediates.values().for_each(|e| visit_base(e, &mut vars));
    ev.ext_intermediates.values().for_each(|e| visit_ext(e, &mut vars));
    ev.constraints.iter().for_each(|e| visit_ext(e, &mut vars));
    let intermediates: BTreeSet<String> = ev.intermediates.keys().chain(ev.ext_intermediates.keys()).cloned().collect();
    let masks: Vec<Mask> = vars.masks.into_iter().collect();
    let base_params: Vec<String> = vars.base_params.into_iter().filter(|p| !intermediates.contains(p)).collect();
    let ext_params: Vec<String> = vars.ext_params.into_iter().filter(|p| !intermediates.contains(p)).collect();

    // The framework numbers columns with one counter over all trees; a
    // tree's columns are numbered contiguously, so a column's place in its
    // tree is its number less the tree's first.
    let mut first: BTreeMap<usize, (usize, usize, usize)> = BTreeMap::new();
    for (i, idx) in masks.iter().map(|m| (m.0, m.1)).collect::<BTreeSet<_>>() {
        let e = first.entry(i).or_insert((idx, idx, 0));
        (e.0, e.1, e.2) = (e.0.min(idx), e.1.max(idx), e.2 + 1);
    }
    for (i, (lo, hi, n)) in &first {
        assert_eq!(hi - lo + 1, *n, "{name}: tree {i}'s columns are not all read, so their places are unknown");
    }
    let layout: Vec<Mask> = masks.iter().map(|&(i, idx, off)| (i, idx - first[&i].0, off)).collect();

    let mask_slot: BTreeMap<Mask, usize> = masks.iter().enumerate().map(|(k, m)| (*m, k)).collect();
    let base_slot: BTreeMap<String, usize> = base_params.iter().enumerate().map(|(k, p)| (p.clone(), k)).collect();
    let ext_slot: BTreeMap<String, usize> = ext_params.iter().enumerate().map(|(k, p)| (p.clone(), k)).collect();
    let order = ordered(intermediates.iter().cloned());
    let inter_slot: BTreeMap<String, usize> = order.iter().enumerate().map(|(k, n)| (n.clone(), k)).collect();
    let em = Emitter { masks: &mask_slot, base_params: &base_slot, ext_params: &ext_slot, intermediates: &inter_slot };

    let inter_fns: Vec<Function> =
        order.chunks(PER_FUNCTION).enumerate().map(|(k, names)| intermediates_fn(k, names, ev, &em)).collect();
    let constraint_fns: Vec<Function> =
        ev.constraints.chunks(PER_FUNCTION).enumerate().map(|(k, cs)| constraints_fn(k, cs, &em)).collect();

    let mut head = String::new();
    let _ =
        writeln!(head, "// Generated by `bitsage_air::cairo` from the {name} component's constraints; do not edit.");
    let _ =
        writeln!(head, "// Regenerate: BITSAGE_REGENERATE_CAIRO=1 cargo test -p bitsage-tests --test all onchain::air");

    // Parts: contiguous runs of functions, intermediates first, each within
    // a class's size.
    let mut parts: Vec<(usize, usize, usize, usize)> = Vec::new(); // (inter lo, hi, constraints lo, hi)
    let (mut il, mut cl, mut lines) = (0usize, 0usize, 0usize);
    let (ni, nc) = (inter_fns.len(), constraint_fns.len());
    let mut k = 0usize;
    while k < ni + nc {
        let f = if k < ni { &inter_fns[k] } else { &constraint_fns[k - ni] };
        if lines + f.lines > LINES_PER_CLASS && lines > 0 {
            let (ih, ch) = (k.min(ni), k.saturating_sub(ni));
            parts.push((il, ih, cl, ch));
            (il, cl, lines) = (ih, ch, 0);
        }
        lines += f.lines;
        k += 1;
    }
    parts.push((il, ni, cl, nc));
    let split = parts.len() > 1;

    let mut files: Vec<(String, String)> = Vec::new();
    let contract = format!("Air{}", camel(name));
    let mut main = String::new();
    let _ = writeln!(main);
    let _ = writeln!(main, "pub const N_CONSTRAINTS: u32 = {};", ev.constraints.len());
    let _ = writeln!(main, "pub const N_MASKS: u32 = {};", masks.len());
    let _ = writeln!(main, "pub const N_PARTS: u32 = {};", parts.len());
    if !split {
        for f in inter_fns.iter().chain(&constraint_fns) {
            let _ = writeln!(main);
            main.push_str(&f.text);
        }
        let _ = writeln!(main);
        main.push_str(&runner("intermediates", 0, ni));
        let _ = writeln!(main);
        main.push_str(&runner("constraints", 0, nc));
    } else {
        for (p, &(il, ih, cl, ch)) in parts.iter().enumerate() {
            let mut code = String::new();
            for f in inter_fns[il..ih].iter().chain(&constraint_fns[cl..ch]) {
                let _ = writeln!(code);
                code.push_str(&f.text);
            }
            let _ = writeln!(code);
            code.push_str(&runner("intermediates", il, ih));
            let _ = writeln!(code);
            code.push_str(&runner("constraints", cl, ch));
            code.push_str(
                &PART_CONTRACT
                    .replace("{part}", &format!("{contract}Part{p}"))
                    .replace("{p}", &p.to_string())
                    .replace("{name}", name),
            );
            let text = format!("{head}{}{code}", imports(&code));
            files.push((format!("air/{name}_part{p}.cairo"), text));
        }
    }

    // The evaluator, directly or through the parts' classes, and its contract.
    let (eval, contract_text) = if split { (EVAL_SPLIT, CONTRACT_SPLIT) } else { (EVAL_SINGLE, CONTRACT_SINGLE) };
    let fill = |t: &str| {
        t.replace("{contract}", &contract)
            .replace("{n_base}", &base_params.len().to_string())
            .replace("{n_ext}", &ext_params.len().to_string())
    };
    main.push_str(&fill(eval));
    main.push_str(&layout_code(name, &layout, &base_params, &ext_params));
    main.push_str(&fill(CONTRACT_INTERFACE));
    main.push_str(&fill(contract_text));

    let mut doc = String::new();
    let _ = writeln!(doc, "//");
    let _ = writeln!(doc, "// masks[k], the value sampled at the out-of-domain point for (tree, column, row offset):");
    for (k, (i, c, off)) in layout.iter().enumerate() {
        let _ = writeln!(doc, "//   {k}: ({i}, {c}, {off})");
    }
    let _ = writeln!(doc, "// base params: {}", base_params.join(", "));
    let _ = writeln!(doc, "// ext params: {}", ext_params.join(", "));
    let dispatcher = if split { "use super::IAirPartDispatcherTrait;\n" } else { "" };
    let mut all = format!(
        "{head}{doc}{}use super::super::circle::pow2;\nuse super::super::statement::{{Relations, relation}};\n{dispatcher}",
        imports(&format!("{main} qm31("))
    );
    all.push_str(&main);
    files.insert(0, (format!("air/{name}.cairo"), all));
    CairoComponent {
        name: name.to_string(),
        files,
        n_parts: if split { parts.len() } else { 0 },
        masks: layout,
        base_params,
        ext_params,
        n_constraints: ev.constraints.len(),
    }
}

/// A component's layout for the verifier that feeds its evaluator: how many
/// columns it has in the main and interaction trees, the row offsets each
/// column is sampled at (runs of columns alike), and its parameters from the
/// drawn relations. `masks` is sorted by (tree, column, offset) and every
/// column is read, so the evaluator's `masks` are the component's sampled
/// values in tree, column and sample order, provided each column's samples
/// are in increasing offset order (`onchain::air`'s evaluator test checks the
/// layout against the framework's mask offsets).
fn layout_code(name: &str, layout: &[Mask], base_params: &[String], ext_params: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s);
    let _ = writeln!(s, "// The {name} component's columns: in the main tree (1) and the interaction tree (2),");
    let _ = writeln!(s, "// runs of (columns, the row offsets each is sampled at, in sample order).");
    for (tree, what) in [(1usize, "main"), (2, "interaction")] {
        let mut cols: BTreeMap<usize, Vec<isize>> = BTreeMap::new();
        for &(_, c, off) in layout.iter().filter(|m| m.0 == tree) {
            cols.entry(c).or_default().push(off);
        }
        let mut runs: Vec<(usize, Vec<isize>)> = Vec::new();
        for offs in cols.into_values() {
            match runs.last_mut() {
                Some((n, o)) if *o == offs => *n += 1,
                _ => runs.push((1, offs)),
            }
        }
        let n: usize = runs.iter().map(|r| r.0).sum();
        let _ = writeln!(s, "pub const N_{}_COLUMNS: u32 = {n};", what.to_uppercase());
        let items: Vec<String> = runs
            .iter()
            .map(|(n, offs)| {
                let o: Vec<String> = offs.iter().map(|o| format!("{o}_i32")).collect();
                format!("({n}, array![{}].span())", o.join(", "))
            })
            .collect();
        let _ = writeln!(s, "pub fn {what}_columns() -> Array<(u32, Span<i32>)> {{");
        let _ = writeln!(s, "    array![{}]", items.join(", "));
        let _ = writeln!(s, "}}");
    }
    // Parameters: the column size; each relation element by the relation's
    // place in `relations!` order (`statement::relation`); the claimed sum.
    let names: Vec<String> = Relations::for_layout().elements().into_iter().map(|(n, _, _)| n).collect();
    let base: Vec<String> = base_params
        .iter()
        .map(|p| {
            assert_eq!(p, "column_size", "{name}: base parameter {p} has no on-chain value");
            "qm31_from_m31(pow2(log_size))".to_string()
        })
        .collect();
    let ext: Vec<String> = ext_params
        .iter()
        .map(|p| {
            if p == "claimed_sum" {
                return "claimed_sum".to_string();
            }
            let (rel, elem) = p.rsplit_once('_').unwrap_or_else(|| panic!("{name}: parameter {p}"));
            let r = names.iter().position(|n| n == rel).unwrap_or_else(|| panic!("{name}: relation {rel}"));
            match elem.strip_prefix("alpha") {
                Some(i) => format!("*relation(rels, {r}).alpha_powers[{i}]"),
                None if elem == "z" => format!("*relation(rels, {r}).z"),
                None => panic!("{name}: relation element {p}"),
            }
        })
        .collect();
    let _ = writeln!(s);
    let _ = writeln!(s, "// `eval`'s base and extension parameters for a component of 2^log_size rows.");
    let _ = writeln!(
        s,
        "pub fn params(rels: @Relations, log_size: u32, claimed_sum: QM31) -> (Array<QM31>, Array<QM31>) {{"
    );
    let _ = writeln!(s, "    let base = array![{}];", base.join(", "));
    let _ = writeln!(s, "    let ext = array![");
    for e in &ext {
        let _ = writeln!(s, "        {e},");
    }
    let _ = writeln!(s, "    ];");
    let _ = writeln!(s, "    (base, ext)");
    let _ = writeln!(s, "}}");
    s
}

/// Every component's evaluator.
pub fn generate() -> Vec<CairoComponent> {
    // The expressions are symbolic in the relation elements and the size.
    expressions(crate::MIN_LOG_SIZE, &Relations::for_layout())
        .iter()
        .map(|(name, ev)| generate_component(name, ev))
        .collect()
}

/// `contracts/src/stwo/air.cairo`: the generated modules, and the interface
/// of a split component's part classes.
pub fn module_file(components: &[CairoComponent]) -> String {
    let mut s = String::from(
        "// The AIR's constraints at the out-of-domain point, one module per component,\n// generated by `bitsage_air::cairo`; do not edit.\n",
    );
    for c in components {
        for (f, _) in &c.files {
            let m = f.trim_start_matches("air/").trim_end_matches(".cairo");
            let _ = writeln!(s, "pub mod {m};");
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "use super::fields::QM31;");
    let _ = writeln!(s);
    let _ = writeln!(s, "// One part of a split component's evaluator: its intermediates, appended to");
    let _ = writeln!(s, "// the earlier parts' ones, and its constraints, accumulated into `acc`.");
    let _ = writeln!(s, "#[starknet::interface]");
    let _ = writeln!(s, "pub trait IAirPart<TContractState> {{");
    let _ = writeln!(s, "    fn intermediates(self: @TContractState, masks: Array<QM31>, base: Array<QM31>, ext: Array<QM31>, inter: Array<QM31>) -> Array<QM31>;");
    let _ = writeln!(s, "    fn constraints(self: @TContractState, masks: Array<QM31>, base: Array<QM31>, ext: Array<QM31>, inter: Array<QM31>, random_coeff: QM31, denom_inverse: QM31, acc: QM31) -> QM31;");
    let _ = writeln!(s, "}}");
    s.push_str(&instr_rules());
    s
}

/// What `Program::validate` requires of an instruction, per opcode and
/// immediate mode, as a Cairo table: the statement check on chain reads it
/// instead of a port of the ISA's rules.
fn instr_rules() -> String {
    use obelysk_vm::isa::{operand_use, Instr, Opcode};
    let mut rules = Vec::new();
    for op in Opcode::ALL {
        for imm_mode in [false, true] {
            let u = operand_use(&Instr { op, dst: 0, a: 0, b: 0, imm_mode, imm: obelysk_vm::M31(0) });
            let allowed = !imm_mode || op.allows_imm_operand();
            let bits = [u.dst, u.a, u.b, u.imm, allowed, op.imm_is_target(), op == Opcode::Lookup];
            rules.push(bits.iter().enumerate().map(|(k, &b)| (b as u32) << k).sum::<u32>());
        }
    }
    let list = rules.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ");
    format!(
        "
pub const N_OPCODES: u32 = {n};

// Per opcode and immediate mode, what `Program::validate` requires: bits 0
// to 3, the dst, a, b and imm fields are used (an unused one must be zero);
// bit 4, the mode is allowed; bit 5, imm is a jump target (below the
// program's length); bit 6, imm names a table. Generated from
// `obelysk_vm::isa`.
pub fn instr_rules(op: u32, imm_mode: u32) -> u32 {{
    let rules: [u32; {len}] = [{list}];
    *rules.span()[op * 2 + imm_mode]
}}
",
        n = Opcode::ALL.len(),
        len = rules.len(),
    )
}
