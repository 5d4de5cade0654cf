// The circle group over M31 (`x^2 + y^2 = 1`, order 2^31, generator
// (2, 1268011823)), point indices (`i` names `gen^i`), cosets, Stwo's
// canonic circle domains and line domains, and bit reversal, as Stwo 2.3
// defines them.
use super::fields::{m31_add, m31_mul, m31_neg, m31_sub};

const LOG_ORDER: u32 = 31;
const ORDER: u64 = 0x80000000;
const GEN_X: u32 = 2;
const GEN_Y: u32 = 1268011823;

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

// `gen^index`, by doubling and adding.
pub fn index_to_point(index: u32) -> Point {
    let mut acc = Point { x: 1, y: 0 };
    let mut base = Point { x: GEN_X, y: GEN_Y };
    let mut i = index;
    let mut k: u32 = 0;
    while k < LOG_ORDER {
        if i % 2 == 1 {
            acc = point_add(acc, base);
        }
        base = point_add(base, base);
        i /= 2;
        k += 1;
    }
    acc
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
