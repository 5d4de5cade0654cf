// M31, CM31 = M31[i]/(i^2 + 1) and QM31 = CM31[u]/(u^2 - 2 - i), as Stwo 2.3
// defines them. Words are canonical (below p); every function returns
// canonical words. The QM31 operations are never inlined: the generated
// constraint evaluators call them thousands of times, and inlined they
// would overflow a function's frame (CASM offsets) and the class size.

pub const P: u32 = 0x7fffffff;
const P128: u128 = 0x7fffffff;

pub fn m31_add(a: u32, b: u32) -> u32 {
    // Both below p < 2^31: the sum fits a u32.
    let s = a + b;
    if s >= P {
        s - P
    } else {
        s
    }
}

pub fn m31_sub(a: u32, b: u32) -> u32 {
    if a >= b {
        a - b
    } else {
        a + P - b
    }
}

pub fn m31_neg(a: u32) -> u32 {
    m31_sub(0, a)
}

pub fn m31_mul(a: u32, b: u32) -> u32 {
    let x: felt252 = a.into() * b.into();
    let v: u128 = x.try_into().unwrap();
    (v % P128).try_into().unwrap()
}

// `x^(2^n)`.
fn m31_sqn(x: u32, n: u32) -> u32 {
    let mut r = x;
    let mut k: u32 = 0;
    while k < n {
        r = m31_mul(r, r);
        k += 1;
    }
    r
}

// `a^(p-2) = a^(2^31 - 3)`, zero for zero: `(a^(2^29 - 1))^4 · a`, with
// `a^(2^k - 1)` built up by doubling `k` (30 squarings and 8 products).
pub fn m31_inv(a: u32) -> u32 {
    let t2 = m31_mul(m31_mul(a, a), a);
    let t4 = m31_mul(m31_sqn(t2, 2), t2);
    let t8 = m31_mul(m31_sqn(t4, 4), t4);
    let t16 = m31_mul(m31_sqn(t8, 8), t8);
    let t24 = m31_mul(m31_sqn(t16, 8), t8);
    let t28 = m31_mul(m31_sqn(t24, 4), t4);
    let t29 = m31_mul(m31_mul(t28, t28), a);
    m31_mul(m31_sqn(t29, 2), a)
}

// The inverses of `values` (all non-zero), with one inversion: prefix
// products, the last inverted, then unwound.
pub fn m31_batch_inv(values: Span<u32>) -> Array<u32> {
    let n = values.len();
    if n == 0 {
        return array![];
    }
    let mut prefix: Array<u32> = array![*values[0]];
    let mut i: u32 = 1;
    while i < n {
        prefix.append(m31_mul(*prefix[i - 1], *values[i]));
        i += 1;
    }
    let mut inv = m31_inv(*prefix[n - 1]);
    // Inverses from the last to the first, then reversed.
    let mut rev: Array<u32> = array![];
    let mut k = n;
    while k > 1 {
        k -= 1;
        rev.append(m31_mul(inv, *prefix[k - 1]));
        inv = m31_mul(inv, *values[k]);
    }
    rev.append(inv);
    let mut out: Array<u32> = array![];
    let mut j = rev.len();
    while j > 0 {
        j -= 1;
        out.append(*rev[j]);
    }
    out
}

#[derive(Copy, Drop, Serde, PartialEq, Debug)]
pub struct CM31 {
    pub a: u32,
    pub b: u32,
}

pub fn cm31_add(x: CM31, y: CM31) -> CM31 {
    CM31 { a: m31_add(x.a, y.a), b: m31_add(x.b, y.b) }
}

pub fn cm31_sub(x: CM31, y: CM31) -> CM31 {
    CM31 { a: m31_sub(x.a, y.a), b: m31_sub(x.b, y.b) }
}

pub fn cm31_mul(x: CM31, y: CM31) -> CM31 {
    let (a, b): (felt252, felt252) = (x.a.into(), x.b.into());
    let (c, d): (felt252, felt252) = (y.a.into(), y.b.into());
    CM31 { a: reduce_lazy(a * c - b * d), b: reduce_lazy(a * d + b * c) }
}

pub fn cm31_scale(x: CM31, s: u32) -> CM31 {
    CM31 { a: m31_mul(x.a, s), b: m31_mul(x.b, s) }
}

pub fn cm31_neg(x: CM31) -> CM31 {
    CM31 { a: m31_neg(x.a), b: m31_neg(x.b) }
}

pub fn cm31_inv(x: CM31) -> CM31 {
    let n = m31_inv(m31_add(m31_mul(x.a, x.a), m31_mul(x.b, x.b)));
    CM31 { a: m31_mul(x.a, n), b: m31_mul(m31_neg(x.b), n) }
}

#[derive(Copy, Drop, Serde, PartialEq, Debug)]
pub struct QM31 {
    pub a: CM31,
    pub b: CM31,
}

pub fn qm31(w0: u32, w1: u32, w2: u32, w3: u32) -> QM31 {
    QM31 { a: CM31 { a: w0, b: w1 }, b: CM31 { a: w2, b: w3 } }
}

pub fn qm31_from_m31(v: u32) -> QM31 {
    qm31(v, 0, 0, 0)
}

#[inline(never)]
pub fn qm31_add(x: QM31, y: QM31) -> QM31 {
    QM31 { a: cm31_add(x.a, y.a), b: cm31_add(x.b, y.b) }
}

#[inline(never)]
pub fn qm31_sub(x: QM31, y: QM31) -> QM31 {
    QM31 { a: cm31_sub(x.a, y.a), b: cm31_sub(x.b, y.b) }
}

// A coordinate computed lazily in felts (products of canonical words, a few
// added or subtracted: below 2^66 in absolute value), reduced once. Adding
// `2^36 p` makes it a nonnegative integer below 2^68 with the same residue.
const LAZY_OFFSET: felt252 = 0x7fffffff000000000;

fn reduce_lazy(x: felt252) -> u32 {
    let v: u128 = (x + LAZY_OFFSET).try_into().unwrap();
    (v % P128).try_into().unwrap()
}

fn felts(x: QM31) -> (felt252, felt252, felt252, felt252) {
    (x.a.a.into(), x.a.b.into(), x.b.a.into(), x.b.b.into())
}

fn qm31_reduce(r0: felt252, r1: felt252, r2: felt252, r3: felt252) -> QM31 {
    QM31 { a: CM31 { a: reduce_lazy(r0), b: reduce_lazy(r1) }, b: CM31 { a: reduce_lazy(r2), b: reduce_lazy(r3) } }
}

// `(a + bu)(c + du) = ac + (2 + i)bd + (ad + bc)u`, each coordinate summed
// in felts and reduced once.
#[inline(never)]
pub fn qm31_mul(x: QM31, y: QM31) -> QM31 {
    let (a0, a1, b0, b1) = felts(x);
    let (c0, c1, d0, d1) = felts(y);
    let (ac0, ac1) = (a0 * c0 - a1 * c1, a0 * c1 + a1 * c0);
    let (bd0, bd1) = (b0 * d0 - b1 * d1, b0 * d1 + b1 * d0);
    qm31_reduce(
        ac0 + 2 * bd0 - bd1,
        ac1 + bd0 + 2 * bd1,
        a0 * d0 - a1 * d1 + b0 * c0 - b1 * c1,
        a0 * d1 + a1 * d0 + b0 * c1 + b1 * c0,
    )
}

#[inline(never)]
pub fn qm31_scale(x: QM31, s: u32) -> QM31 {
    QM31 { a: cm31_scale(x.a, s), b: cm31_scale(x.b, s) }
}

// `(a + bu)^-1 = (a - bu) / (a^2 - (2 + i)b^2)`.
#[inline(never)]
pub fn qm31_inv(x: QM31) -> QM31 {
    let b2 = cm31_mul(x.b, x.b);
    let ib2 = CM31 { a: m31_neg(b2.b), b: b2.a };
    let denom = cm31_sub(cm31_mul(x.a, x.a), cm31_add(cm31_add(b2, b2), ib2));
    let d = cm31_inv(denom);
    QM31 { a: cm31_mul(x.a, d), b: cm31_mul(cm31_neg(x.b), d) }
}

// Stwo's `to_m31_array` order.
pub fn qm31_words(x: QM31) -> [u32; 4] {
    [x.a.a, x.a.b, x.b.a, x.b.b]
}

#[inline(never)]
pub fn qm31_neg(x: QM31) -> QM31 {
    QM31 { a: cm31_neg(x.a), b: cm31_neg(x.b) }
}

// `QM31::from_partial_evals([a, b, c, d])`: `a + b·i + c·u + d·iu`, the value
// of a secure column from its four coordinate columns' values. With `X =
// (x0 + x1 i) + (x2 + x3 i)u`: `iX = (-x1, x0, -x3, x2)`, `uX = (2x2 - x3,
// x2 + 2x3, x0, x1)` (as `u^2 = 2 + i`) and `iuX = (-x2 - 2x3, 2x2 - x3,
// -x1, x0)`.
#[inline(never)]
pub fn secure_col(a: QM31, b: QM31, c: QM31, d: QM31) -> QM31 {
    let (a0, a1, a2, a3) = felts(a);
    let (b0, b1, b2, b3) = felts(b);
    let (c0, c1, c2, c3) = felts(c);
    let (d0, d1, d2, d3) = felts(d);
    qm31_reduce(
        a0 - b1 + 2 * c2 - c3 - d2 - 2 * d3,
        a1 + b0 + c2 + 2 * c3 + 2 * d2 - d3,
        a2 - b3 + c0 - d1,
        a3 + b2 + c1 + d0,
    )
}
