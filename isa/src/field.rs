//! The Mersenne-31 word: the ObelyskVM's only value type.
//!
//! Its representation is the one Stwo's `M31` has (a `u32` below
//! `P = 2^31 - 1`), so the host converts a word into a proof's base field
//! without arithmetic. Arithmetic here assumes canonical operands and
//! returns canonical results. Nothing from outside becomes a word without
//! [`crate::word`] or a decoder from [`crate::word::de`]: that is where the
//! canonical rule is enforced, and `Deserialize` applies it too.

use std::fmt;
use std::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// The field modulus, `2^31 - 1`.
pub const P: u32 = (1 << 31) - 1;

/// An element of the Mersenne-31 field.
///
/// Signed integers map to their field representative: `-1` is `P - 1`.
/// [`M31::signed`] reads a value back as a signed integer in `(-P/2, P/2]`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct M31(pub u32);

impl M31 {
    pub const ZERO: M31 = M31(0);
    pub const ONE: M31 = M31(1);

    /// Reduces any `u32` into the field.
    pub const fn new(v: u32) -> M31 {
        let r = (v & P) + (v >> 31);
        M31(if r >= P { r - P } else { r })
    }

    /// `Some` only for canonical values (`v < P`).
    pub const fn canonical(v: u32) -> Option<M31> {
        if v < P {
            Some(M31(v))
        } else {
            None
        }
    }

    pub const fn value(self) -> u32 {
        self.0
    }

    /// Whether the word is below `P`.
    pub const fn is_canonical(self) -> bool {
        self.0 < P
    }

    /// The value as a signed integer in `(-P/2, P/2]`.
    pub const fn signed(self) -> i64 {
        if self.0 > P / 2 {
            self.0 as i64 - P as i64
        } else {
            self.0 as i64
        }
    }

    const fn reduce_u64(v: u64) -> M31 {
        let lo = (v & P as u64) + (v >> 31);
        M31::new(((lo & P as u64) + (lo >> 31)) as u32)
    }
}

impl From<u32> for M31 {
    fn from(v: u32) -> M31 {
        M31::new(v)
    }
}

impl From<i32> for M31 {
    fn from(v: i32) -> M31 {
        M31::from(v as i64)
    }
}

impl From<i64> for M31 {
    fn from(v: i64) -> M31 {
        M31(v.rem_euclid(P as i64) as u32)
    }
}

impl From<bool> for M31 {
    fn from(v: bool) -> M31 {
        M31(v as u32)
    }
}

impl From<M31> for u32 {
    fn from(v: M31) -> u32 {
        v.0
    }
}

impl serde::Serialize for M31 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for M31 {
    /// Only canonical values (below `P`) decode.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<M31, D::Error> {
        let v = u32::deserialize(d)?;
        crate::word(v).map_err(serde::de::Error::custom)
    }
}

impl Add for M31 {
    type Output = M31;
    fn add(self, o: M31) -> M31 {
        M31::new(self.0 + o.0)
    }
}

impl Sub for M31 {
    type Output = M31;
    fn sub(self, o: M31) -> M31 {
        M31::new(self.0 + P - o.0)
    }
}

impl Mul for M31 {
    type Output = M31;
    fn mul(self, o: M31) -> M31 {
        M31::reduce_u64(self.0 as u64 * o.0 as u64)
    }
}

impl Neg for M31 {
    type Output = M31;
    fn neg(self) -> M31 {
        M31::ZERO - self
    }
}

impl AddAssign for M31 {
    fn add_assign(&mut self, o: M31) {
        *self = *self + o;
    }
}

impl SubAssign for M31 {
    fn sub_assign(&mut self, o: M31) {
        *self = *self - o;
    }
}

impl MulAssign for M31 {
    fn mul_assign(&mut self, o: M31) {
        *self = *self * o;
    }
}

impl fmt::Debug for M31 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for M31 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_wraps_at_p() {
        assert_eq!(M31::new(P), M31::ZERO);
        assert_eq!(M31::new(u32::MAX), M31::new(1));
        assert_eq!(M31::from(-1i32).value(), P - 1);
        assert_eq!((M31::from(-3i32) * M31::from(5u32)).signed(), -15);
        assert_eq!(M31::from(P - 1) + M31::ONE, M31::ZERO);
        assert_eq!(M31::ZERO - M31::ONE, M31::from(-1i32));
        assert_eq!(M31(P - 1) * M31(P - 1), M31::ONE);
        assert_eq!(-M31::ZERO, M31::ZERO);
        assert!(M31::canonical(P).is_none());
    }

    #[test]
    fn decoding_refuses_non_canonical_words() {
        let ok: M31 = serde_json::from_str("2147483646").unwrap();
        assert_eq!(ok, M31(P - 1));
        let e = serde_json::from_str::<M31>("2147483647").unwrap_err();
        assert!(e.to_string().contains("not a canonical field element"), "{e}");
        assert_eq!(serde_json::to_string(&M31(7)).unwrap(), "7");
    }
}
