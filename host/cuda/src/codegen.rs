//! CUDA code for a component's constraints, generated from the constraint
//! framework's expression tree (`ExprEvaluator`), so the GPU evaluates the
//! same AIR description the CPU does, never a hand-written copy.
//!
//! The generated kernel evaluates, for every row of a bit-reversed evaluation
//! domain, `Σ_j powers[j] · C_j(row)` over the component's constraints `C_j`,
//! reading trace columns (with their mask offsets) from device pointers.
//! Formal parameters (`claimed_sum`, `column_size`, relation elements when a
//! component uses `add_to_relation`) are kernel arguments, so one compiled
//! kernel serves every proof.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use stwo::core::fields::qm31::SecureField;
use stwo_constraint_framework::expr::{BaseExpr, ExprEvaluator, ExtExpr};

pub use bitsage_air::expr::Mask;
use bitsage_air::expr::{ordered, parse_mask, visit_base, visit_ext, Vars};

/// The generated kernels and how to feed them.
#[derive(Clone, Debug)]
pub struct ConstraintKernel {
    pub name: String,
    /// `(kernel name, CUDA source)`: launched in order, each adding its
    /// constraints into the same output.
    pub parts: Vec<(String, String)>,
    /// Column pointer `k` of the kernel is this `(interaction, index)`.
    pub columns: Vec<(usize, usize)>,
    /// Every mask read, in the order the kernel loads them.
    pub masks: Vec<Mask>,
    /// Base-field parameters, in `base_params` order.
    pub base_params: Vec<String>,
    /// Extension parameters, in `ext_params` order (4 words each).
    pub ext_params: Vec<String>,
    pub n_constraints: usize,
}

struct Emitter<'a> {
    masks: &'a BTreeMap<Mask, usize>,
    base_params: &'a BTreeMap<String, usize>,
    ext_params: &'a BTreeMap<String, usize>,
    intermediates: &'a BTreeSet<String>,
    cse: std::cell::RefCell<Cse>,
}

/// Common-subexpression elimination for one function's top-level
/// statements. The AIR's expression trees repeat subtrees (Poseidon2's
/// internal layer adds the same 16-term sum into every lane); emitted as is,
/// NVRTC spends minutes on them. A compound base-field subexpression that
/// occurs twice or more among the expressions [`Emitter::count`] saw is
/// defined once as `const u32 cseN` (in [`Cse::lines`], written before the
/// statement that first needs it) and named after that. Exact field
/// arithmetic has no side effects, so the values are the same.
#[derive(Default)]
struct Cse {
    on: bool,
    /// Occurrences of each compound subexpression, by its plain text.
    counts: std::collections::HashMap<String, u32>,
    /// The temporary defined for a subexpression.
    names: std::collections::HashMap<String, String>,
    /// Definitions waiting to be written before the next statement.
    lines: String,
}

impl ConstraintKernel {
    /// The CUDA source of all parts.
    pub fn source(&self) -> String {
        self.parts.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join("\n")
    }
}

/// No parameters: for kernels whose expressions read only columns and
/// named intermediates (the LogUp fractions, the hash rows).
static NO_PARAMS: BTreeMap<String, usize> = BTreeMap::new();

impl<'a> Emitter<'a> {
    /// An emitter for expressions over columns (`masks`, by kernel slot)
    /// and named `intermediates` only.
    fn columns_only(masks: &'a BTreeMap<Mask, usize>, intermediates: &'a BTreeSet<String>) -> Self {
        Emitter { masks, base_params: &NO_PARAMS, ext_params: &NO_PARAMS, intermediates, cse: Default::default() }
    }

    /// Starts CSE for one function: forgets what an earlier function
    /// defined, then counts the subexpressions of `bases` and `exts`, the
    /// expressions its top-level statements will emit.
    fn start_cse<'e>(
        &self,
        bases: impl IntoIterator<Item = &'e BaseExpr>,
        exts: impl IntoIterator<Item = &'e ExtExpr>,
    ) {
        *self.cse.borrow_mut() = Cse { on: false, ..Default::default() };
        bases.into_iter().for_each(|e| {
            self.base_key(e);
        });
        exts.into_iter().for_each(|e| {
            self.ext(e);
        });
        let mut cse = self.cse.borrow_mut();
        cse.counts.retain(|_, n| *n > 1);
        cse.on = true;
    }

    /// Ends CSE: later expressions are emitted whole (inside nested blocks,
    /// where a definition would not reach later statements).
    fn stop_cse(&self) {
        self.cse.borrow_mut().on = false;
    }

    /// The definitions the last expressions need, to write before them.
    fn take_lines(&self) -> String {
        std::mem::take(&mut self.cse.borrow_mut().lines)
    }

    fn base(&self, e: &BaseExpr) -> String {
        self.base_key(e).1
    }

    /// `(plain text, emitted text)` of `e`: while CSE is counting, counts
    /// every compound subexpression; while it is on, names repeated ones.
    fn base_key(&self, e: &BaseExpr) -> (String, String) {
        let leaf = |t: String| (t.clone(), t);
        let (op, args): (&str, Vec<&BaseExpr>) = match e {
            BaseExpr::Col(_) => return leaf(format!("m{}", self.masks[&parse_mask(e)])),
            BaseExpr::Const(c) => return leaf(format!("{}u", c.0)),
            BaseExpr::Param(p) if self.intermediates.contains(p) => return leaf(p.clone()),
            BaseExpr::Param(p) => return leaf(format!("base_params[{}]", self.base_params[p])),
            BaseExpr::Add(a, b) => ("m31_add", vec![a, b]),
            BaseExpr::Sub(a, b) => ("m31_sub", vec![a, b]),
            BaseExpr::Mul(a, b) => ("m31_mul", vec![a, b]),
            BaseExpr::Neg(a) => ("m31_neg", vec![a]),
            BaseExpr::Inv(a) => ("m31_inv", vec![a]),
        };
        let (keys, texts): (Vec<String>, Vec<String>) = args.into_iter().map(|a| self.base_key(a)).unzip();
        let key = format!("{op}({})", keys.join(", "));
        let text = format!("{op}({})", texts.join(", "));
        let mut cse = self.cse.borrow_mut();
        if !cse.on {
            *cse.counts.entry(key.clone()).or_default() += 1;
            return (key, text);
        }
        if !cse.counts.contains_key(&key) {
            return (key, text);
        }
        if let Some(n) = cse.names.get(&key) {
            return (key, n.clone());
        }
        let n = format!("cse{}", cse.names.len());
        let _ = writeln!(cse.lines, "    const u32 {n} = {text};");
        cse.names.insert(key.clone(), n.clone());
        (key, n)
    }

    fn ext(&self, e: &ExtExpr) -> String {
        match e {
            ExtExpr::SecureCol([a, b, c, d]) => {
                format!("qm31_make({}, {}, {}, {})", self.base(a), self.base(b), self.base(c), self.base(d))
            }
            ExtExpr::Const(q) => {
                let [a, b, c, d] = q.to_m31_array();
                format!("qm31_make({}u, {}u, {}u, {}u)", a.0, b.0, c.0, d.0)
            }
            ExtExpr::Param(p) if self.intermediates.contains(p) => p.clone(),
            ExtExpr::Param(p) => {
                let i = 4 * self.ext_params[p];
                format!(
                    "qm31_make(ext_params[{i}], ext_params[{}], ext_params[{}], ext_params[{}])",
                    i + 1,
                    i + 2,
                    i + 3
                )
            }
            ExtExpr::Add(a, b) => format!("qm31_add({}, {})", self.ext(a), self.ext(b)),
            ExtExpr::Sub(a, b) => format!("qm31_sub({}, {})", self.ext(a), self.ext(b)),
            ExtExpr::Mul(a, b) => format!("qm31_mul({}, {})", self.ext(a), self.ext(b)),
            ExtExpr::Neg(a) => format!("qm31_neg({})", self.ext(a)),
        }
    }
}

/// Values for a kernel's parameters: relation elements as
/// `Relations::elements` gives them (`<name>_z`, `<name>_alpha<i>`), the
/// component's LogUp `claimed_sum`, and `column_size = 2^log_size`.
/// Returns `(base_params, ext_params)` in the kernel's order, or the name of
/// a parameter it cannot bind.
pub fn bind_params(
    kernel: &ConstraintKernel,
    relations: &[(String, SecureField, Vec<SecureField>)],
    claimed_sum: SecureField,
    log_size: u32,
) -> Result<(Vec<u32>, Vec<u32>), String> {
    let base = kernel
        .base_params
        .iter()
        .map(|p| if p == "column_size" { Ok(1u32 << log_size) } else { Err(p.clone()) })
        .collect::<Result<Vec<u32>, String>>()?;
    Ok((base, bind_ext(&kernel.ext_params, relations, claimed_sum)?))
}

/// Values of extension parameters (4 words each, in order): relation
/// elements `<name>_z` and `<name>_alpha<i>`, and `claimed_sum`. Returns the
/// name of a parameter it cannot bind.
pub fn bind_ext(
    names: &[String],
    relations: &[(String, SecureField, Vec<SecureField>)],
    claimed_sum: SecureField,
) -> Result<Vec<u32>, String> {
    let ext_value = |name: &str| -> Option<SecureField> {
        if name == "claimed_sum" {
            return Some(claimed_sum);
        }
        relations.iter().find_map(|(rel, z, alphas)| {
            let rest = name.strip_prefix(rel.as_str())?;
            if rest == "_z" {
                return Some(*z);
            }
            alphas.get(rest.strip_prefix("_alpha")?.parse::<usize>().ok()?).copied()
        })
    };
    let mut ext = Vec::with_capacity(4 * names.len());
    for p in names {
        let v = ext_value(p).ok_or_else(|| p.clone())?;
        ext.extend(v.to_m31_array().map(|w| w.0));
    }
    Ok(ext)
}

/// A generated LogUp fraction kernel for one component: for every row, the
/// lookups taken in pairs, `m0 / d0 + m1 / d1` with `d = Σ α^i v_i - z`, one
/// QM31 value per pair, exactly the batching `add_lookups` constrains and
/// the CPU trace generator writes. Output columns `4b..4b + 4` (coordinates)
/// hold the sum of batches `0..=b` of the row, as Stwo's generator does.
#[derive(Clone, Debug)]
pub struct LogupKernel {
    pub name: String,
    pub source: String,
    /// Kernel column `k` is main-trace column `columns[k]` of the component.
    pub columns: Vec<usize>,
    /// Extension parameters (relation elements), 4 words each, in order.
    pub ext_params: Vec<String>,
    pub n_batches: usize,
}

/// Generates the LogUp fraction kernel `name` from a component's lookups,
/// written over its main-trace columns (`BaseExpr` columns of interaction 1,
/// offset 0). `relation_names[r]` is the name of relation `Rel` index `r`
/// (`Relations::elements` order).
pub fn generate_logup(name: &str, sym: &crate::logup::SymbolicLookups, relation_names: &[String]) -> LogupKernel {
    let lookups = &sym.lookups;
    let intermediates: BTreeSet<String> = sym.intermediates.iter().map(|(n, _)| n.clone()).collect();
    let mut vars = Vars::default();
    for l in lookups {
        visit_base(&l.mult, &mut vars);
        l.values.iter().for_each(|v| visit_base(v, &mut vars));
    }
    // Only the intermediates the lookups reach (the hash component's written
    // words need the last round's state, not every round's): a smaller
    // kernel, and a much faster compile.
    let by_name: BTreeMap<&str, &BaseExpr> = sym.intermediates.iter().map(|(n, e)| (n.as_str(), e)).collect();
    let mut needed: BTreeSet<String> = BTreeSet::new();
    loop {
        let fresh: Vec<String> =
            vars.base_params.iter().filter(|p| intermediates.contains(*p) && !needed.contains(*p)).cloned().collect();
        if fresh.is_empty() {
            break;
        }
        for n in fresh {
            if let Some(e) = by_name.get(n.as_str()) {
                visit_base(e, &mut vars);
            }
            needed.insert(n);
        }
    }
    assert!(
        vars.masks.iter().all(|m| m.0 == 1 && m.2 == 0) && vars.base_params.iter().all(|p| intermediates.contains(p)),
        "{name}: lookups may read only the component's own main-trace row"
    );
    let masks: Vec<Mask> = vars.masks.into_iter().collect();
    let columns: Vec<usize> = masks.iter().map(|m| m.1).collect();
    let mut ext_params: Vec<String> = Vec::new();
    let mut param = |p: String| -> String {
        let i = ext_params.iter().position(|q| *q == p).unwrap_or_else(|| {
            ext_params.push(p);
            ext_params.len() - 1
        });
        format!(
            "qm31_make(ext_params[{}], ext_params[{}], ext_params[{}], ext_params[{}])",
            4 * i,
            4 * i + 1,
            4 * i + 2,
            4 * i + 3
        )
    };
    let mask_slot: BTreeMap<Mask, usize> = masks.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let em = Emitter::columns_only(&mask_slot, &intermediates);

    let mut s = String::new();
    let _ = writeln!(
        s,
        "extern \"C\" __global__ void {name}(const u64* cols, const u32* ext_params, u32 log_n, const u64* outs) {{"
    );
    let _ = writeln!(s, "    u32 row = blockIdx.x * blockDim.x + threadIdx.x;");
    let _ = writeln!(s, "    if (row >= (1u << log_n)) return;");
    for (k, _) in masks.iter().enumerate() {
        let _ = writeln!(s, "    const u32 m{k} = ((const u32*)cols[{k}])[row];");
    }
    let used: Vec<&(String, BaseExpr)> = sym.intermediates.iter().filter(|(n, _)| needed.contains(n)).collect();
    em.start_cse(used.iter().map(|(_, e)| e), []);
    for (n, e) in used {
        let v = em.base(e);
        let _ = writeln!(s, "{}    const u32 {n} = {v};", em.take_lines());
    }
    em.stop_cse();
    // As Stwo's `LogupColGenerator`, each column holds the running sum of
    // the row's batches so far; the last one's running sum over rows comes after.
    let _ = writeln!(s, "    qm31 acc = qm31_make(0, 0, 0, 0);");
    let n_batches = lookups.len().div_ceil(2);
    for (b, pair) in lookups.chunks(2).enumerate() {
        let _ = writeln!(s, "    {{");
        for (j, l) in pair.iter().enumerate() {
            let rel = &relation_names[l.rel.index()];
            let mut d = String::from("qm31_neg(") + &param(format!("{rel}_z")) + ")";
            for (i, v) in l.values.iter().enumerate() {
                d = format!("qm31_add({d}, qm31_mul_m31({}, {}))", param(format!("{rel}_alpha{i}")), em.base(v));
            }
            let _ = writeln!(s, "        const u32 n{j} = {};", em.base(&l.mult));
            let _ = writeln!(s, "        const qm31 d{j} = {d};");
        }
        if pair.len() == 2 {
            let _ = writeln!(s, "        const qm31 num = qm31_add(qm31_mul_m31(d1, n0), qm31_mul_m31(d0, n1));");
            let _ = writeln!(s, "        const qm31 den = qm31_mul(d0, d1);");
        } else {
            let _ = writeln!(s, "        const qm31 num = qm31_from_m31(n0);");
            let _ = writeln!(s, "        const qm31 den = d0;");
        }
        let _ = writeln!(s, "        acc = qm31_add(acc, qm31_mul(num, qm31_inv(den)));");
        for (c, w) in ["a", "b", "c", "d"].iter().enumerate() {
            let _ = writeln!(s, "        ((u32*)outs[{}])[row] = acc.{w};", 4 * b + c);
        }
        let _ = writeln!(s, "    }}");
    }
    let _ = writeln!(s, "}}");
    LogupKernel { name: name.to_string(), source: s, columns, ext_params, n_batches }
}

/// A device function `{name}(cols, row, hist, range_cols, range_size)` that
/// counts a row's range checks into the range table, generated from the
/// AIR's `(multiplicity, value)` list over the component's main-trace
/// columns (for the CPU, `CpuCols::range_checks`). It reads the columns the
/// row kernel has just written, so the kernel's counts and the host's come
/// from the one list the constraints use. A check with multiplicity `-n`
/// adds `n` at its value through `count_range_n`, which the including
/// kernel defines.
pub fn generate_range_counts(name: &str, checks: &[(BaseExpr, BaseExpr)]) -> String {
    let mut vars = Vars::default();
    for (m, v) in checks {
        visit_base(m, &mut vars);
        visit_base(v, &mut vars);
    }
    assert!(
        vars.masks.iter().all(|m| m.0 == 1 && m.2 == 0) && vars.base_params.is_empty(),
        "{name}: range checks may read only the component's own main-trace row"
    );
    let masks: Vec<Mask> = vars.masks.into_iter().collect();
    let mask_slot: BTreeMap<Mask, usize> = masks.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let none = BTreeSet::new();
    let em = Emitter::columns_only(&mask_slot, &none);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "__device__ __forceinline__ void {name}(const u64* cols, u32 row, u32* hist, const u64* range_cols, u32 range_size) {{"
    );
    for (k, m) in masks.iter().enumerate() {
        let _ = writeln!(s, "    const u32 m{k} = ((const u32*)cols[{}])[row];", m.1);
    }
    for (mult, value) in checks {
        let _ = writeln!(
            s,
            "    count_range_n(hist, range_cols, range_size, {}, m31_neg({}));",
            em.base(value),
            em.base(mult)
        );
    }
    let _ = writeln!(s, "}}");
    s
}

/// A kernel that builds the hash component's rows (see
/// [`generate_hash_rows`]).
pub struct HashRowsKernel {
    pub name: String,
    pub source: String,
    /// Leading columns copied from the uploaded rows; the rest are computed.
    pub given: usize,
    pub n_columns: usize,
}

/// The hash component's witness kernel, generated from the same symbolic
/// Poseidon2 permutation the constraints run (`permute_with_layers` over
/// the component's columns, the state after each linear layer named, as the
/// constraint evaluator names it): one thread per row reads the row's
/// `given` leading columns (`is_real`, `base`, `clk`, `input`, `ts_lo`,
/// `ts_hi`; zero on padding rows), then computes every S-box in order,
/// `x2 = s^2` and `out = x2^2 * s`, writing both columns.
pub fn generate_hash_rows(name: &str) -> HashRowsKernel {
    use bitsage_air::hash::HashCols;
    use obelysk_vm::poseidon2::permute_with_layers;

    enum Event {
        Named(String, BaseExpr),
        Sbox { s: BaseExpr, x2: usize, out: usize },
    }
    let mut next = 0usize;
    let idx = HashCols::<usize>::read(|| {
        next += 1;
        next - 1
    });
    let n_columns = next;
    let given = idx.full_x2[0];
    assert!(
        idx.is_real == 0 && idx.input[0] == 3 && idx.ts_hi[idx.ts_hi.len() - 1] + 1 == given,
        "{name}: the given columns must lead the row"
    );
    let cols = HashCols::<BaseExpr>::read({
        let mut i = 0;
        move || {
            i += 1;
            BaseExpr::Col((1, i - 1, 0).into())
        }
    });
    let events = std::cell::RefCell::new(Vec::new());
    let mut k = 0usize;
    permute_with_layers(
        &cols.input,
        |s, which| {
            let (x2, out) = idx.sbox(which);
            events.borrow_mut().push(Event::Sbox { s, x2: *x2, out: *out });
            cols.sbox(which).1.clone()
        },
        |st| {
            for v in st.iter_mut() {
                let n = format!("t{k}");
                k += 1;
                events.borrow_mut().push(Event::Named(n.clone(), v.clone()));
                *v = BaseExpr::Param(n);
            }
        },
    );
    let events = events.into_inner();
    let intermediates: BTreeSet<String> =
        events.iter().filter_map(|e| if let Event::Named(n, _) = e { Some(n.clone()) } else { None }).collect();
    let masks: BTreeMap<Mask, usize> = (0..n_columns).map(|i| ((1, i, 0), i)).collect();
    let em = Emitter::columns_only(&masks, &intermediates);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "extern \"C\" __global__ void {name}(const u32* given, u32 n_given, u32 n_rows, const u64* cols) {{"
    );
    let _ = writeln!(s, "    u32 row = blockIdx.x * blockDim.x + threadIdx.x;");
    let _ = writeln!(s, "    if (row >= n_rows) return;");
    let _ = writeln!(s, "    const bool real = row < n_given;");
    let _ = writeln!(s, "    const u32* g = given + (u64)(real ? row : 0) * {given}u;");
    let _ = writeln!(s, "#define W(c, v) (((u32*)cols[(c)])[row] = (v))");
    for c in 0..given {
        let _ = writeln!(s, "    const u32 m{c} = real ? g[{c}] : 0u;");
        let _ = writeln!(s, "    W({c}, m{c});");
    }
    em.start_cse(
        events.iter().map(|e| match e {
            Event::Named(_, v) | Event::Sbox { s: v, .. } => v,
        }),
        [],
    );
    for (j, e) in events.iter().enumerate() {
        match e {
            Event::Named(n, v) => {
                let v = em.base(v);
                let _ = writeln!(s, "{}    const u32 {n} = {v};", em.take_lines());
            }
            Event::Sbox { s: v, x2, out } => {
                let v = em.base(v);
                let _ = writeln!(s, "{}    const u32 s{j} = {v};", em.take_lines());
                let _ = writeln!(s, "    const u32 m{x2} = m31_mul(s{j}, s{j});");
                let _ = writeln!(s, "    const u32 m{out} = m31_mul(m31_mul(m{x2}, m{x2}), s{j});");
                let _ = writeln!(s, "    W({x2}, m{x2});");
                let _ = writeln!(s, "    W({out}, m{out});");
            }
        }
    }
    let _ = writeln!(s, "#undef W");
    let _ = writeln!(s, "}}");
    HashRowsKernel { name: name.to_string(), source: s, given, n_columns }
}

/// Constraints per generated kernel. NVRTC's compile time grows faster than
/// linearly with a function's size (7 s for the 60-constraint CPU component,
/// 389 s for the 318-constraint Poseidon2 one as a single function), so a
/// component becomes several kernels that accumulate into one output.
pub const CONSTRAINTS_PER_KERNEL: usize = 32;

/// The masks and intermediates that constraints `lo..hi` need, transitively.
fn closure(
    ev: &ExprEvaluator,
    lo: usize,
    hi: usize,
    intermediates: &BTreeSet<String>,
) -> (BTreeSet<Mask>, BTreeSet<String>) {
    let mut vars = Vars::default();
    ev.constraints[lo..hi].iter().for_each(|e| visit_ext(e, &mut vars));
    let mut needed: BTreeSet<String> = BTreeSet::new();
    loop {
        let fresh: Vec<String> = vars
            .base_params
            .iter()
            .chain(&vars.ext_params)
            .filter(|p| intermediates.contains(*p) && !needed.contains(*p))
            .cloned()
            .collect();
        if fresh.is_empty() {
            break;
        }
        for n in fresh {
            if let Some(b) = ev.intermediates.get(&n) {
                visit_base(b, &mut vars);
            }
            if let Some(x) = ev.ext_intermediates.get(&n) {
                visit_ext(x, &mut vars);
            }
            needed.insert(n);
        }
    }
    (vars.masks, needed)
}

/// Generates the constraint kernels `name_0`, `name_1`, ... for an evaluated
/// expression tree, [`CONSTRAINTS_PER_KERNEL`] constraints to a kernel.
pub fn generate(name: &str, ev: &ExprEvaluator) -> ConstraintKernel {
    generate_split(name, ev, CONSTRAINTS_PER_KERNEL)
}

/// [`generate`] with `per_kernel` constraints to a kernel (at least one).
pub fn generate_split(name: &str, ev: &ExprEvaluator, per_kernel: usize) -> ConstraintKernel {
    let per_kernel = per_kernel.max(1);
    let mut vars = Vars::default();
    ev.intermediates.values().for_each(|e| visit_base(e, &mut vars));
    ev.ext_intermediates.values().for_each(|e| visit_ext(e, &mut vars));
    ev.constraints.iter().for_each(|e| visit_ext(e, &mut vars));
    let intermediates: BTreeSet<String> = ev.intermediates.keys().chain(ev.ext_intermediates.keys()).cloned().collect();
    let masks: Vec<Mask> = vars.masks.into_iter().collect();
    let columns: Vec<(usize, usize)> = masks.iter().map(|m| (m.0, m.1)).collect::<BTreeSet<_>>().into_iter().collect();
    let base_params: Vec<String> = vars.base_params.into_iter().filter(|p| !intermediates.contains(p)).collect();
    let ext_params: Vec<String> = vars.ext_params.into_iter().filter(|p| !intermediates.contains(p)).collect();

    let mask_slot: BTreeMap<Mask, usize> = masks.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let base_slot: BTreeMap<String, usize> = base_params.iter().enumerate().map(|(i, p)| (p.clone(), i)).collect();
    let ext_slot: BTreeMap<String, usize> = ext_params.iter().enumerate().map(|(i, p)| (p.clone(), i)).collect();
    let em = Emitter {
        masks: &mask_slot,
        base_params: &base_slot,
        ext_params: &ext_slot,
        intermediates: &intermediates,
        cse: Default::default(),
    };
    let order = ordered(intermediates.iter().cloned());

    let n = ev.constraints.len();
    let mut parts = Vec::new();
    for (part, lo) in (0..n.max(1)).step_by(per_kernel).enumerate() {
        let hi = (lo + per_kernel).min(n);
        let (part_masks, needed) = closure(ev, lo, hi, &intermediates);
        let kname = format!("{name}_{part}");
        let mut s = String::new();
        let _ = writeln!(
            s,
            "extern \"C\" __global__ void {kname}(const u64* cols, const u32* base_params, const u32* ext_params, \
             const u32* powers, u32 trace_log, u32 eval_log, u32* out) {{"
        );
        let _ = writeln!(s, "    u32 row = blockIdx.x * blockDim.x + threadIdx.x;");
        let _ = writeln!(s, "    if (row >= (1u << eval_log)) return;");
        for m in &part_masks {
            let slot = mask_slot[m];
            let col = columns.iter().position(|c| *c == (m.0, m.1)).unwrap_or_default();
            let at =
                if m.2 == 0 { "row".to_string() } else { format!("offset_row(row, trace_log, eval_log, {})", m.2) };
            let _ = writeln!(s, "    const u32 m{slot} = ((const u32*)cols[{col}])[{at}];");
        }
        let used: Vec<&String> = order.iter().filter(|n| needed.contains(*n)).collect();
        em.start_cse(
            used.iter().filter_map(|n| ev.intermediates.get(*n)),
            used.iter().filter_map(|n| ev.ext_intermediates.get(*n)).chain(&ev.constraints[lo..hi]),
        );
        for n in used {
            match (ev.intermediates.get(n), ev.ext_intermediates.get(n)) {
                (Some(b), _) => {
                    let v = em.base(b);
                    let _ = writeln!(s, "{}    const u32 {n} = {v};", em.take_lines());
                }
                (None, Some(x)) => {
                    let v = em.ext(x);
                    let _ = writeln!(s, "{}    const qm31 {n} = {v};", em.take_lines());
                }
                (None, None) => {}
            }
        }
        let init = if part == 0 {
            "qm31_make(0, 0, 0, 0)".to_string()
        } else {
            "qm31_make(out[4 * row], out[4 * row + 1], out[4 * row + 2], out[4 * row + 3])".to_string()
        };
        let _ = writeln!(s, "    qm31 acc = {init};");
        for (j, c) in ev.constraints.iter().enumerate().take(hi).skip(lo) {
            let p = 4 * j;
            let v = em.ext(c);
            let _ = writeln!(
                s,
                "{}    acc = qm31_add(acc, qm31_mul(qm31_make(powers[{p}], powers[{}], powers[{}], powers[{}]), {v}));",
                em.take_lines(),
                p + 1,
                p + 2,
                p + 3,
            );
        }
        let _ = writeln!(
            s,
            "    out[4 * row] = acc.a; out[4 * row + 1] = acc.b; out[4 * row + 2] = acc.c; out[4 * row + 3] = acc.d;"
        );
        let _ = writeln!(s, "}}");
        parts.push((kname, s));
    }
    ConstraintKernel { name: name.to_string(), parts, columns, masks, base_params, ext_params, n_constraints: n }
}

/// What a component's constraint kernels must write at `row` of a
/// bit-reversed evaluation domain: the framework's own value of
/// `Σ_j powers[j] · C_j(row)` for the expression tree `ev` that generated
/// `kernel`, with kernel column `k` holding `cols[k]` (`2^eval_log` values)
/// and the parameters `base`, `ext` as [`bind_params`] gives them. The host
/// reference for the GPU checks and the host-compiled kernel test.
#[allow(clippy::too_many_arguments)]
pub fn host_row_value(
    ev: &ExprEvaluator,
    kernel: &ConstraintKernel,
    cols: &[Vec<u32>],
    base: &[u32],
    ext: &[u32],
    powers: &[u32],
    trace_log: u32,
    eval_log: u32,
    row: usize,
) -> SecureField {
    use std::collections::HashMap;
    use stwo::core::fields::m31::{BaseField, M31};
    use stwo::core::utils::offset_bit_reversed_circle_domain_index;
    type Ev = stwo_constraint_framework::AssertEvaluator<'static>;
    let qm = |w: &[u32]| SecureField::from_m31_array([M31(w[0]), M31(w[1]), M31(w[2]), M31(w[3])]);
    let mut masks: HashMap<Mask, BaseField> = HashMap::new();
    for m in &kernel.masks {
        let c = kernel.columns.iter().position(|c| *c == (m.0, m.1)).unwrap_or_default();
        let at = if m.2 == 0 { row } else { offset_bit_reversed_circle_domain_index(row, trace_log, eval_log, m.2) };
        masks.insert(*m, M31(cols[c][at]));
    }
    let mut vars: HashMap<String, BaseField> =
        kernel.base_params.iter().zip(base).map(|(p, v)| (p.clone(), M31(*v))).collect();
    let mut ext_vars: HashMap<String, SecureField> =
        kernel.ext_params.iter().enumerate().map(|(i, p)| (p.clone(), qm(&ext[4 * i..4 * i + 4]))).collect();
    for name in ordered(ev.intermediates.keys().chain(ev.ext_intermediates.keys()).cloned()) {
        if let Some(b) = ev.intermediates.get(&name) {
            let v = b.eval_expr::<Ev, _, _>(&masks, &vars);
            vars.insert(name, v);
        } else if let Some(x) = ev.ext_intermediates.get(&name) {
            let v = x.eval_expr::<Ev, _, _, _>(&masks, &vars, &ext_vars);
            ext_vars.insert(name, v);
        }
    }
    ev.constraints.iter().enumerate().fold(SecureField::default(), |acc, (j, c)| {
        acc + qm(&powers[4 * j..4 * j + 4]) * c.eval_expr::<Ev, _, _, _>(&masks, &vars, &ext_vars)
    })
}

/// The host-compiler stand-ins for CUDA's built-ins the kernels use, so
/// tests can run a kernel on the host (one "thread" at a time).
#[cfg(test)]
pub(crate) const HOST_SHIM: &str = "#define __device__\n#define __forceinline__ inline\n#define __global__\n\
    #define __constant__\n#define __shared__ static\n#define __align__(n) alignas(n)\n#define __syncthreads()\nstruct dim3 { unsigned x, y, z; };\n\
    static dim3 blockIdx, blockDim, threadIdx;\nstatic inline unsigned __brev(unsigned x) { unsigned r = 0; \
    for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i); return r; }\n";

/// A host C++ program's source: the shim, the M31 and QM31 headers, the
/// kernels of `kernels/fri.cu`, then `main_src`.
#[cfg(test)]
pub(crate) fn fri_host_source(main_src: &str) -> String {
    format!(
        "{HOST_SHIM}static dim3 gridDim;\n{}\n{}\n{}\n{main_src}",
        crate::M31_H,
        crate::QM31_H,
        crate::FIXED_SOURCES[2].1
    )
}

/// A C++ program built from a kernel source for the host by `c++` (in a
/// temporary folder, removed on drop), for tests that run kernels there.
#[cfg(test)]
pub(crate) struct HostProgram {
    dir: std::path::PathBuf,
    pub exe: std::path::PathBuf,
}

#[cfg(test)]
impl HostProgram {
    pub(crate) fn build(name: &str, src: &str, opt: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("bitsage-host-kernel-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (cpp, exe) = (dir.join("k.cpp"), dir.join("k"));
        std::fs::write(&cpp, src).expect("write");
        let built =
            std::process::Command::new("c++").args([opt, "-w", "-x", "c++"]).arg(&cpp).arg("-o").arg(&exe).output();
        let built = built.expect("a C++ compiler (c++) on PATH");
        assert!(built.status.success(), "{name}: {}", String::from_utf8_lossy(&built.stderr));
        HostProgram { dir, exe }
    }
}

#[cfg(test)]
impl Drop for HostProgram {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use bitsage_air::relations::Relations;
    use stwo::core::channel::Blake2sChannel;

    use super::*;

    #[test]
    fn the_cpu_row_kernel_counts_exactly_the_air_s_range_checks() {
        use bitsage_air::cpu::{CpuCols, N_RANGE_CHECKS};
        use bitsage_air::relations::Rel;
        let row = CpuCols::read(crate::logup::columns());
        let src = generate_range_counts("cpu_range_counts", &row.range_checks());
        // One count per check the AIR's lookups make, in the same order.
        let calls: Vec<&str> = src.lines().filter(|l| l.contains("count_range_n(")).collect();
        assert_eq!(calls.len(), N_RANGE_CHECKS);
        let from_lookups = CpuCols::read(crate::logup::columns()).lookups();
        let range: Vec<_> = from_lookups.iter().filter(|l| l.rel == Rel::Range).collect();
        assert_eq!(range.len(), N_RANGE_CHECKS);
        let slots: BTreeMap<Mask, usize> = {
            let mut vars = Vars::default();
            row.range_checks().iter().for_each(|(m, v)| {
                visit_base(m, &mut vars);
                visit_base(v, &mut vars);
            });
            vars.masks.into_iter().enumerate().map(|(i, m)| (m, i)).collect()
        };
        let none = BTreeSet::new();
        let em = Emitter::columns_only(&slots, &none);
        for (call, l) in calls.iter().zip(&range) {
            let want = format!(
                "count_range_n(hist, range_cols, range_size, {}, m31_neg({}));",
                em.base(&l.values[0]),
                em.base(&l.mult)
            );
            assert_eq!(call.trim(), want);
        }
    }

    #[test]
    fn every_component_generates_a_logup_kernel_pairing_its_lookups() {
        let rels = Relations::draw(&mut Blake2sChannel::default());
        let names: Vec<String> = rels.elements().into_iter().map(|e| e.0).collect();
        for (i, name) in crate::logup::COMPONENTS.iter().enumerate() {
            let sym = crate::logup::lookups_of(i);
            let lookups = &sym.lookups;
            let k = generate_logup(&format!("logup_{name}"), &sym, &names);
            assert_eq!(k.n_batches, lookups.len().div_ceil(2), "{name}");
            // One store per coordinate of every batch, into outputs 0..4B.
            for out in 0..4 * k.n_batches {
                assert!(k.source.contains(&format!("outs[{out}]")), "{name}: output {out} never written");
            }
            assert!(!k.source.contains(&format!("outs[{}]", 4 * k.n_batches)), "{name}: writes past its outputs");
            // Every relation element the lookups use binds, z of each used relation among them.
            let ext = bind_ext(&k.ext_params, &rels.elements(), SecureField::default()).unwrap();
            assert_eq!(ext.len(), 4 * k.ext_params.len());
            for l in lookups {
                assert!(k.ext_params.contains(&format!("{}_z", names[l.rel.index()])), "{name}");
            }
            // Columns are distinct main-trace columns, in order.
            assert!(k.columns.windows(2).all(|w| w[0] < w[1]), "{name}");
            eprintln!(
                "{name}: {} lookups, {} batches, {} columns read, {} intermediates, {} bytes",
                lookups.len(),
                k.n_batches,
                k.columns.len(),
                sym.intermediates.len(),
                k.source.len()
            );
        }
    }

    #[test]
    fn the_hash_rows_kernel_writes_every_column_once() {
        let k = generate_hash_rows("hash_rows");
        assert_eq!(k.n_columns, bitsage_air::hash::HashCols::<u32>::N_COLUMNS);
        for c in 0..k.n_columns {
            assert_eq!(k.source.matches(&format!("    W({c}, ")).count(), 1, "column {c}");
        }
        // Every S-box of the permutation, in order.
        let sboxes = k.source.matches("m31_mul(m31_mul(").count();
        let (full, partial) = (obelysk_vm::poseidon2::FULL_ROUNDS, obelysk_vm::poseidon2::PARTIAL_ROUNDS);
        assert_eq!(sboxes, full * obelysk_vm::poseidon2::WIDTH + partial);
    }

    #[test]
    fn every_component_generates_a_kernel_reading_every_column() {
        let rels = Relations::draw(&mut Blake2sChannel::default());
        let evs = crate::constraints::obelysk_expressions(5, &rels);
        for (name, ev) in evs {
            let k = generate(name, &ev);
            assert_eq!(k.n_constraints, ev.constraints.len());
            // Every trace column the component declared is read by some mask.
            let main: BTreeSet<usize> = k.columns.iter().filter(|c| c.0 == 1).map(|c| c.1).collect();
            assert_eq!(main.len(), main.iter().max().map_or(0, |m| m + 1), "{name}: main columns not contiguous");
            assert!(
                k.masks.iter().any(|m| m.0 == 2 && m.2 == -1),
                "{name}: the LogUp running sum reads the previous row"
            );
            assert!(k.source().contains(&format!("void {name}_0(")));
            assert_eq!(k.parts.len(), k.n_constraints.div_ceil(CONSTRAINTS_PER_KERNEL));
            // Every parameter binds: relation elements, claimed sum, column size.
            let (base, ext) = bind_params(&k, &rels.elements(), SecureField::from(7u32), 5).unwrap();
            assert_eq!((base.len(), ext.len()), (k.base_params.len(), 4 * k.ext_params.len()));
            assert!(k.ext_params.iter().any(|p| p.ends_with("_z")), "{name}: relation elements are parameters");
            eprintln!(
                "{name}: {} constraints, {} columns, {} kernels, {} bytes",
                k.n_constraints,
                k.columns.len(),
                k.parts.len(),
                k.source().len()
            );
        }
    }

    /// Every `cseN` temporary in `src` is defined once, before any use.
    fn assert_temporaries_defined_once_before_use(name: &str, src: &str) {
        let mut defined = BTreeSet::new();
        for line in src.lines() {
            let def = line.trim_start().strip_prefix("const u32 ").and_then(|r| r.split(" = ").next());
            for (i, _) in line.match_indices("cse") {
                let digits: String = line[i + 3..].chars().take_while(|c| c.is_ascii_digit()).collect();
                if digits.is_empty() || line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let t = format!("cse{digits}");
                if def == Some(t.as_str()) && line.trim_start().starts_with(&format!("const u32 {t} ")) {
                    assert!(defined.insert(t.clone()), "{name}: {t} defined twice");
                } else {
                    assert!(defined.contains(&t), "{name}: {t} used before its definition: {line}");
                }
            }
        }
    }

    #[test]
    fn repeated_subexpressions_are_computed_once() {
        let rels = Relations::draw(&mut Blake2sChannel::default());
        // The hash rows: Poseidon2's internal layer adds one 16-term sum into every lane.
        let rows = generate_hash_rows("hash_rows");
        assert!(rows.source.contains("const u32 cse"), "no common subexpression found");
        assert!(rows.source.len() < 128 << 10, "hash_rows is {} bytes", rows.source.len());
        assert_temporaries_defined_once_before_use("hash_rows", &rows.source);
        for (name, ev) in crate::constraints::obelysk_expressions(5, &rels) {
            let k = generate(name, &ev);
            for (part, src) in &k.parts {
                assert_temporaries_defined_once_before_use(part, src);
                assert!(src.len() < 64 << 10, "{part} is {} bytes of CUDA", src.len());
            }
        }
        let names: Vec<String> = rels.elements().into_iter().map(|e| e.0).collect();
        for c in 0..crate::logup::COMPONENTS.len() {
            let k = generate_logup("logup", &crate::logup::lookups_of(c), &names);
            assert_temporaries_defined_once_before_use(&k.name, &k.source);
        }
    }

    /// The generated kernels are C++ a host compiler accepts (with a few
    /// lines standing in for CUDA's built-ins), so a scoping or syntax slip
    /// in the generator fails here, on machines without a GPU.
    #[test]
    fn every_generated_kernel_compiles_as_host_cpp() {
        let dir = std::env::temp_dir().join(format!("bitsage-codegen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let sources: Vec<crate::compile::Source> = crate::compile::sources(crate::compile::Needs::default())
            .expect("sources")
            .into_iter()
            .chain(crate::compile::sources(crate::compile::Needs { hash: true, poseidon252: false }).expect("sources"))
            .filter(|s| s.name != "cpu_trace")
            .collect();
        for s in &sources {
            let path = dir.join(format!("{}.cpp", s.name));
            std::fs::write(&path, format!("{}{}", super::HOST_SHIM, s.text)).expect("write");
            let out = std::process::Command::new("c++")
                .args(["-fsyntax-only", "-w", "-x", "c++"])
                .arg(&path)
                .output()
                .expect("a C++ compiler (c++) on PATH");
            assert!(out.status.success(), "{}:\n{}", s.name, String::from_utf8_lossy(&out.stderr));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    use super::HOST_SHIM;

    /// Runs a component's generated constraint kernels on the host (compiled
    /// by `c++`, one "thread" per row) over random columns and parameters,
    /// and requires every row to equal the framework's own evaluation of the
    /// same expressions: the check `bitsage-cuda-check` makes on a GPU, for
    /// the generator's output (common subexpressions included) in CI.
    fn run_on_host(name: &str, ev: &ExprEvaluator, rels: &Relations) {
        use stwo::core::fields::m31::M31;
        let k = generate(&format!("constraints_{name}"), ev);
        let (trace_log, eval_log) = (4u32, 5u32);
        let n = 1usize << eval_log;
        let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ name.len() as u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as u32) % ((1 << 31) - 1)
        };
        let cols: Vec<Vec<u32>> = k.columns.iter().map(|_| (0..n).map(|_| rnd()).collect()).collect();
        let claimed = SecureField::from_m31_array([M31(rnd()), M31(rnd()), M31(rnd()), M31(rnd())]);
        let (base, ext) = bind_params(&k, &rels.elements(), claimed, trace_log).expect("parameters bind");
        let powers: Vec<u32> = (0..4 * k.n_constraints).map(|_| rnd()).collect();

        let mut src = format!("{HOST_SHIM}{}\n{}\n{}\n", crate::M31_H, crate::QM31_H, k.source());
        src.push_str("#include <cstdio>\n#include <vector>\nint main() {\n  unsigned h[6];\n");
        src.push_str("  if (fread(h, 4, 6, stdin) != 6) return 1;\n  size_t n = (size_t)1 << h[2];\n");
        src.push_str("  std::vector<std::vector<u32>> cols(h[0], std::vector<u32>(n));\n");
        src.push_str("  std::vector<u64> ptrs(h[0] + 1);\n");
        src.push_str("  for (unsigned c = 0; c < h[0]; c++) { if (fread(cols[c].data(), 4, n, stdin) != n) return 1; ptrs[c] = (u64)cols[c].data(); }\n");
        src.push_str("  std::vector<u32> base(h[3] + 1), ext(h[4] + 1), pw(h[5] + 1), out(4 * n);\n");
        src.push_str("  if (fread(base.data(), 4, h[3], stdin) != h[3] || fread(ext.data(), 4, h[4], stdin) != h[4] || fread(pw.data(), 4, h[5], stdin) != h[5]) return 1;\n");
        src.push_str("  blockIdx.x = 0; blockDim.x = 1;\n");
        for (part, _) in &k.parts {
            src.push_str(&format!(
                "  for (size_t r = 0; r < n; r++) {{ threadIdx.x = (unsigned)r; {part}(ptrs.data(), base.data(), ext.data(), pw.data(), h[1], h[2], out.data()); }}\n"
            ));
        }
        src.push_str("  fwrite(out.data(), 4, 4 * n, stdout);\n  return 0;\n}\n");
        let program = super::HostProgram::build(name, &src, "-O0");
        let mut input: Vec<u32> =
            vec![k.columns.len() as u32, trace_log, eval_log, base.len() as u32, ext.len() as u32, powers.len() as u32];
        cols.iter().for_each(|c| input.extend(c));
        input.extend(&base);
        input.extend(&ext);
        input.extend(&powers);
        let bytes: Vec<u8> = input.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut child = std::process::Command::new(&program.exe)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("runs");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &bytes).expect("input");
        let out = child.wait_with_output().expect("output");
        assert!(out.status.success(), "{name}: the host kernel failed");
        let got: Vec<u32> = out.stdout.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        assert_eq!(got.len(), 4 * n);
        drop(program);

        let qm = |w: &[u32]| SecureField::from_m31_array([M31(w[0]), M31(w[1]), M31(w[2]), M31(w[3])]);
        for row in 0..n {
            let want = host_row_value(ev, &k, &cols, &base, &ext, &powers, trace_log, eval_log, row);
            assert_eq!(qm(&got[4 * row..4 * row + 4]), want, "{name}: row {row}");
        }
    }

    #[test]
    fn generated_constraint_kernels_equal_the_framework_s_evaluation_on_the_host() {
        let rels = Relations::draw(&mut Blake2sChannel::default());
        for (name, ev) in crate::constraints::obelysk_expressions(4, &rels) {
            run_on_host(name, &ev, &rels);
        }
    }
}
