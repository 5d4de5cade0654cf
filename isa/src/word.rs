//! Canonical words: the one rule every M31 value from outside must pass.
//!
//! [`M31`], like Stwo's, is a `u32` newtype that can hold any bit pattern,
//! and its arithmetic assumes the value is below `p = 2^31 - 1`. The executor, the
//! transcript and the digests read the raw `u32`, while the LogUp terms
//! reduce it mod `p`, so a word `w >= p` would mean one thing to the proof
//! and another to everyone reading the statement (`p` would "equal" 0). Hence
//! every word that enters from outside — statement input and output,
//! immediates, table keys and values, anything decoded from a receipt or an
//! HTTP body, anything a guest hands over the WIT boundary — goes through
//! [`word`] or [`check_words`] and a word `>= p` is a typed error there.
//!
//! The serde helpers ([`de`]) apply the same rule while decoding, and bound
//! every list by a length cap checked *before* its elements are read, so a
//! hostile encoding cannot make the decoder allocate more than the format
//! allows.

use crate::field::{M31, P};

/// A word that is not a canonical M31 element (it is `>= 2^31 - 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("word {0} is not a canonical field element (words must be below 2^31 - 1 = 2147483647)")]
pub struct NonCanonicalWord(pub u32);

/// `v` as a field element, if it is canonical.
pub fn word(v: u32) -> Result<M31, NonCanonicalWord> {
    if v < P {
        Ok(M31(v))
    } else {
        Err(NonCanonicalWord(v))
    }
}

/// `vs` as field elements, if every one is canonical.
pub fn words(vs: &[u32]) -> Result<Vec<M31>, NonCanonicalWord> {
    vs.iter().map(|&v| word(v)).collect()
}

/// The first non-canonical word of `ws`, with its index.
pub fn check_words(ws: &[M31]) -> Result<(), (usize, NonCanonicalWord)> {
    match ws.iter().position(|w| w.0 >= P) {
        Some(i) => Err((i, NonCanonicalWord(ws[i].0))),
        None => Ok(()),
    }
}

/// Whether `w` is canonical.
pub fn is_canonical(w: M31) -> bool {
    w.0 < P
}

/// Serde helpers that refuse non-canonical words and over-long lists while
/// decoding. Use with `#[serde(deserialize_with = "...")]`.
pub mod de {
    use std::fmt;
    use std::marker::PhantomData;

    use crate::field::M31;
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer};

    use super::word;

    /// One canonical word.
    pub fn canonical<'de, D: Deserializer<'de>>(d: D) -> Result<M31, D::Error> {
        let v = u32::deserialize(d)?;
        word(v).map_err(D::Error::custom)
    }

    /// Something decodable element by element under a cap.
    pub trait Element: Sized {
        fn decode<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Self>, A::Error>;
    }

    /// A canonical word, as a list element.
    pub struct Word(pub M31);
    impl Element for Word {
        fn decode<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Self>, A::Error> {
            match seq.next_element::<u32>()? {
                None => Ok(None),
                Some(v) => word(v).map(|w| Some(Word(w))).map_err(A::Error::custom),
            }
        }
    }

    /// A pair of canonical words (a table entry).
    pub struct WordPair(pub (M31, M31));
    impl Element for WordPair {
        fn decode<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Self>, A::Error> {
            match seq.next_element::<(u32, u32)>()? {
                None => Ok(None),
                Some((k, v)) => {
                    Ok(Some(WordPair((word(k).map_err(A::Error::custom)?, word(v).map_err(A::Error::custom)?))))
                }
            }
        }
    }

    /// Any decodable value, as a list element (its own fields carry their
    /// own checks).
    pub struct Plain<T>(pub T);
    impl<T: for<'a> Deserialize<'a>> Element for Plain<T> {
        fn decode<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Self>, A::Error> {
            Ok(seq.next_element::<T>()?.map(Plain))
        }
    }

    struct Bounded<E> {
        max: usize,
        what: &'static str,
        _e: PhantomData<E>,
    }

    impl<'de, E: Element> Visitor<'de> for Bounded<E> {
        type Value = Vec<E>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "at most {} {}", self.max, self.what)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<E>, A::Error> {
            // Binary formats announce the length first: refuse before reading.
            let hint = seq.size_hint().unwrap_or(0);
            if hint > self.max {
                return Err(A::Error::custom(format_args!("{hint} {} exceed the limit of {}", self.what, self.max)));
            }
            let mut out = Vec::with_capacity(hint.min(4096));
            while let Some(e) = E::decode(&mut seq)? {
                if out.len() == self.max {
                    return Err(A::Error::custom(format_args!("more than {} {}", self.max, self.what)));
                }
                out.push(e);
            }
            Ok(out)
        }
    }

    /// A list of at most `max` elements, each checked as it is decoded.
    pub fn bounded<'de, D: Deserializer<'de>, E: Element>(
        d: D,
        max: usize,
        what: &'static str,
    ) -> Result<Vec<E>, D::Error> {
        d.deserialize_seq(Bounded::<E> { max, what, _e: PhantomData })
    }

    /// A list of at most `max` canonical words.
    pub fn words<'de, D: Deserializer<'de>>(d: D, max: usize, what: &'static str) -> Result<Vec<M31>, D::Error> {
        Ok(bounded::<D, Word>(d, max, what)?.into_iter().map(|w| w.0).collect())
    }

    /// A string of at most `max` bytes.
    pub fn short_string<'de, D: Deserializer<'de>>(d: D, max: usize, what: &'static str) -> Result<String, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() > max {
            return Err(D::Error::custom(format_args!("{what} of {} bytes exceeds the limit of {max}", s.len())));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_at_and_above_p_are_refused() {
        assert_eq!(word(P - 1), Ok(M31(P - 1)));
        assert_eq!(word(P), Err(NonCanonicalWord(P)));
        assert_eq!(word(u32::MAX), Err(NonCanonicalWord(u32::MAX)));
        assert_eq!(words(&[1, P + 42]), Err(NonCanonicalWord(P + 42)));
        assert_eq!(check_words(&[M31(0), M31(P)]), Err((1, NonCanonicalWord(P))));
        assert!(check_words(&[M31(0), M31(P - 1)]).is_ok());
    }
}
