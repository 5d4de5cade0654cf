// The circle group over M31 (`x^2 + y^2 = 1`, order 2^31, generator
// (2, 1268011823)), point indices (`i` names `gen^i`), cosets, Stwo's
// canonic circle domains and line domains, and bit reversal, as Stwo 2.3
// defines them.
use super::fields::{m31_add, m31_mul, m31_neg, m31_sub};

const LOG_ORDER: u32 = 31;
const ORDER: u64 = 0x80000000;

#[derive(Copy, Drop, Serde, PartialEq, Debug)]
pub struct Point {
    pub x: u32,
    pub y: u32,
}

pub fn point_add(p: Point, q: Point) -> Point {
    Point {
        x: m31_sub(m31_mul(p.x, q.x), m31_mul(p.y, q.y)), y: m31_add(m31_mul(p.x, q.y), m31_mul(p.y, q.x)),
    }
}

// `gen^(2^k)` for `k` in `0..31`.
fn gen_pow2(k: u32) -> Point {
    match k {
        0 => Point { x: 2, y: 1268011823 },
        1 => Point { x: 7, y: 777079998 },
        2 => Point { x: 97, y: 141701737 },
        3 => Point { x: 18817, y: 1720333214 },
        4 => Point { x: 708158977, y: 683185920 },
        5 => Point { x: 334835419, y: 1444967316 },
        6 => Point { x: 2042371533, y: 1362265296 },
        7 => Point { x: 212706801, y: 1223819887 },
        8 => Point { x: 421007138, y: 256177860 },
        9 => Point { x: 6346213, y: 905523693 },
        10 => Point { x: 1022251061, y: 788094511 },
        11 => Point { x: 1633461177, y: 574296567 },
        12 => Point { x: 595037635, y: 2111542451 },
        13 => Point { x: 1799120754, y: 343598868 },
        14 => Point { x: 438833264, y: 1327019128 },
        15 => Point { x: 1389168750, y: 838891026 },
        16 => Point { x: 1543902459, y: 1632329423 },
        17 => Point { x: 1330239767, y: 1446369578 },
        18 => Point { x: 1420207432, y: 2023238517 },
        19 => Point { x: 2015554631, y: 1088093947 },
        20 => Point { x: 996212859, y: 1140996376 },
        21 => Point { x: 1434706457, y: 1835793811 },
        22 => Point { x: 13610297, y: 1064696601 },
        23 => Point { x: 785043271, y: 1260750973 },
        24 => Point { x: 838195206, y: 1774253895 },
        25 => Point { x: 579625837, y: 1690787918 },
        26 => Point { x: 1179735656, y: 1241207368 },
        27 => Point { x: 590768354, y: 978592373 },
        28 => Point { x: 32768, y: 2147450879 },
        29 => Point { x: 0, y: 2147483646 },
        _ => Point { x: 2147483646, y: 0 },
    }
}

// `gen^index`: the table's points for the index's set bits, added.
pub fn index_to_point(index: u32) -> Point {
    let mut acc = Point { x: 1, y: 0 };
    let mut i = index % 0x80000000;
    let mut k: u32 = 0;
    while i != 0 {
        if i % 2 == 1 {
            acc = point_add(acc, gen_pow2(k));
        }
        i /= 2;
        k += 1;
    }
    acc
}

// The coset's points in natural order, by stepping from the first.
pub fn coset_points(coset: Coset) -> Array<Point> {
    let step = index_to_point(coset.step_size);
    let mut cur = index_to_point(coset.initial_index);
    let mut out = array![cur];
    let n = pow2(coset.log_size);
    let mut i: u32 = 1;
    while i < n {
        cur = point_add(cur, step);
        out.append(cur);
        i += 1;
    }
    out
}

pub fn index_add(a: u32, b: u32) -> u32 {
    let s: u64 = a.into() + b.into();
    (s % ORDER).try_into().unwrap()
}

pub fn index_mul(a: u32, k: u32) -> u32 {
    let s: u64 = a.into() * k.into();
    (s % ORDER).try_into().unwrap()
}

pub fn index_neg(a: u32) -> u32 {
    let s: u64 = ORDER - a.into();
    (s % ORDER).try_into().unwrap()
}

pub fn pow2(n: u32) -> u32 {
    let mut r: u32 = 1;
    let mut k: u32 = 0;
    while k < n {
        r *= 2;
        k += 1;
    }
    r
}

// The index of a generator of the subgroup of order `2^log_size`.
pub fn subgroup_gen(log_size: u32) -> u32 {
    pow2(LOG_ORDER - log_size)
}

// `initial + <step>` of `2^log_size` points, by indices.
#[derive(Copy, Drop, Serde, PartialEq, Debug)]
pub struct Coset {
    pub initial_index: u32,
    pub step_size: u32,
    pub log_size: u32,
}

#[generate_trait]
pub impl CosetImpl of CosetTrait {
    fn new(initial_index: u32, log_size: u32) -> Coset {
        Coset { initial_index, step_size: subgroup_gen(log_size), log_size }
    }

    fn half_odds(log_size: u32) -> Coset {
        Self::new(subgroup_gen(log_size + 2), log_size)
    }

    fn index_at(self: @Coset, i: u32) -> u32 {
        index_add(*self.initial_index, index_mul(*self.step_size, i))
    }

    fn at(self: @Coset, i: u32) -> Point {
        index_to_point(self.index_at(i))
    }

    fn double(self: @Coset) -> Coset {
        Coset {
            initial_index: index_mul(*self.initial_index, 2),
            step_size: index_mul(*self.step_size, 2),
            log_size: if *self.log_size == 0 {
                0
            } else {
                *self.log_size - 1
            },
        }
    }

    fn repeated_double(self: @Coset, n: u32) -> Coset {
        let mut c = *self;
        let mut k: u32 = 0;
        while k < n {
            c = c.double();
            k += 1;
        }
        c
    }
}

// A circle domain: a half coset and its conjugate, `2^(log_size + 1)` points.
#[derive(Copy, Drop, Serde, PartialEq, Debug)]
pub struct CircleDomain {
    pub half_coset: Coset,
}

#[generate_trait]
pub impl CircleDomainImpl of CircleDomainTrait {
    // `CanonicCoset::new(log_size).circle_domain()`.
    fn canonic(log_size: u32) -> CircleDomain {
        CircleDomain { half_coset: CosetTrait::half_odds(log_size - 1) }
    }

    fn log_size(self: @CircleDomain) -> u32 {
        *self.half_coset.log_size + 1
    }

    fn index_at(self: @CircleDomain, i: u32) -> u32 {
        let half = pow2(*self.half_coset.log_size);
        if i < half {
            self.half_coset.index_at(i)
        } else {
            index_neg(self.half_coset.index_at(i - half))
        }
    }

    fn at(self: @CircleDomain, i: u32) -> Point {
        index_to_point(self.index_at(i))
    }
}

// The low `log_size` bits of `i`, reversed.
pub fn bit_reverse_index(i: u32, log_size: u32) -> u32 {
    if log_size == 0 {
        return i;
    }
    let mut r: u32 = 0;
    let mut v = i;
    let mut k: u32 = 0;
    while k < log_size {
        r = r * 2 + v % 2;
        v /= 2;
        k += 1;
    }
    r
}

// `2x^2 - 1`, the x-coordinate of a doubled point.
pub fn double_x(x: u32) -> u32 {
    let sx = m31_mul(x, x);
    m31_sub(m31_add(sx, sx), 1)
}

pub fn neg_y(p: Point) -> Point {
    Point { x: p.x, y: m31_neg(p.y) }
}
