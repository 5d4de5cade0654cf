// M31, CM31 = M31[i]/(i^2 + 1) and QM31 = CM31[u]/(u^2 - 2 - i), as Stwo 2.3
// defines them. Words are canonical (below p); every function returns
// canonical words. The QM31 operations are never inlined: the generated
// constraint evaluators call them thousands of times, and inlined they
// would overflow a function's frame (CASM offsets) and the class size.

pub const P: u32 = 0x7fffffff;
const P64: u64 = 0x7fffffff;

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
    let p: u64 = a.into() * b.into();
    (p % P64).try_into().unwrap()
}

// `a^(p-2)`; zero for zero.
pub fn m31_inv(a: u32) -> u32 {
    let mut result: u32 = 1;
    let mut base = a;
    let mut e: u32 = P - 2;
    while e != 0 {
        if e % 2 == 1 {
            result = m31_mul(result, base);
        }
        base = m31_mul(base, base);
        e /= 2;
    }
    result
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
    // Products below 2^62, sums below 2^63 with `p^2` added to the
    // difference: one reduction per coordinate.
    let (a, b, c, d): (u64, u64, u64, u64) = (x.a.into(), x.b.into(), y.a.into(), y.b.into());
    CM31 { a: ((a * c + P64 * P64 - b * d) % P64).try_into().unwrap(), b: ((a * d + b * c) % P64).try_into().unwrap() }
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

// `(a + bu)(c + du) = ac + (2 + i)bd + (ad + bc)u`.
#[inline(never)]
pub fn qm31_mul(x: QM31, y: QM31) -> QM31 {
    let r = CM31 { a: 2, b: 1 };
    QM31 {
        a: cm31_add(cm31_mul(x.a, y.a), cm31_mul(r, cm31_mul(x.b, y.b))),
        b: cm31_add(cm31_mul(x.a, y.b), cm31_mul(x.b, y.a)),
    }
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
// of a secure column from its four coordinate columns' values.
#[inline(never)]
pub fn secure_col(a: QM31, b: QM31, c: QM31, d: QM31) -> QM31 {
    let mut res = a;
    res = qm31_add(res, qm31_mul(b, qm31(0, 1, 0, 0)));
    res = qm31_add(res, qm31_mul(c, qm31(0, 0, 1, 0)));
    qm31_add(res, qm31_mul(d, qm31(0, 0, 0, 1)))
}
