// Stwo 2.3's `Poseidon252Channel`, the Fiat-Shamir transcript of proofs made
// with `Poseidon252MerkleChannel`: the same digest after every mix, the same
// values from every draw, and the same proof-of-work check, so a verifier
// here replays exactly the transcript the prover wrote. Checked against
// Stwo's own channel on a devnet by `tests/all/onchain.rs`.
use core::poseidon::{hades_permutation, poseidon_hash_span};

// The Mersenne-31 prime.
pub const M31_P: u32 = 0x7fffffff;
// `StwoChannel::POW_PREFIX`.
const POW_PREFIX: felt252 = 0x12345678;
const TWO_POW_31: felt252 = 0x80000000;
const TWO_POW_32: felt252 = 0x100000000;
const TWO_POW_248: felt252 = 0x100000000000000000000000000000000000000000000000000000000000000;

#[derive(Copy, Drop, Debug, PartialEq, Serde)]
pub struct Channel {
    pub digest: felt252,
    pub n_draws: u32,
}

// A QM31 element by its four M31 coordinates, as Stwo's `to_m31_array`.
pub type QM31 = [u32; 4];

// `poseidon_hash(a, b)` of starknet-crypto.
pub fn poseidon_hash(a: felt252, b: felt252) -> felt252 {
    let (s, _, _) = hades_permutation(a, b, 2);
    s
}

#[generate_trait]
pub impl ChannelImpl of ChannelTrait {
    fn new() -> Channel {
        Channel { digest: 0, n_draws: 0 }
    }

    fn update_digest(ref self: Channel, digest: felt252) {
        self.digest = digest;
        self.n_draws = 0;
    }

    // `Poseidon252MerkleChannel::mix_root`.
    fn mix_root(ref self: Channel, root: felt252) {
        self.update_digest(poseidon_hash(self.digest, root));
    }

    fn mix_u64(ref self: Channel, value: u64) {
        self.update_digest(poseidon_hash(self.digest, value.into()));
    }

    // Two QM31 elements to a felt: `1`, then each of their eight M31
    // coordinates shifted in 31 bits at a time.
    fn mix_felts(ref self: Channel, felts: Span<QM31>) {
        let mut res: Array<felt252> = array![self.digest];
        let mut i: u32 = 0;
        while i < felts.len() {
            let mut cur: felt252 = 1;
            let end = if i + 2 <= felts.len() {
                i + 2
            } else {
                i + 1
            };
            let mut j = i;
            while j < end {
                let [a, b, c, d] = *felts[j];
                cur = cur * TWO_POW_31 + a.into();
                cur = cur * TWO_POW_31 + b.into();
                cur = cur * TWO_POW_31 + c.into();
                cur = cur * TWO_POW_31 + d.into();
                j += 1;
            }
            res.append(cur);
            i = end;
        }
        self.update_digest(poseidon_hash_span(res.span()));
    }

    // Seven words to a felt, 32 bits each; the last felt, when padded with
    // zero words, carries how many words it holds at bit 248.
    fn mix_u32s(ref self: Channel, data: Span<u32>) {
        let n = data.len();
        let padding = 6 - ((n + 6) % 7);
        let total = n + padding;
        let mut res: Array<felt252> = array![self.digest];
        let mut i: u32 = 0;
        while i < total {
            let mut cur: felt252 = 0;
            let mut k: u32 = 0;
            while k < 7 {
                let w: felt252 = if i + k < n {
                    (*data[i + k]).into()
                } else {
                    0
                };
                cur = cur * TWO_POW_32 + w;
                k += 1;
            }
            if padding != 0 && i + 7 == total {
                cur += (7 - padding).into() * TWO_POW_248;
            }
            res.append(cur);
            i += 7;
        }
        self.update_digest(poseidon_hash_span(res.span()));
    }

    fn draw_secure_felt252(ref self: Channel) -> felt252 {
        let (s, _, _) = hades_permutation(self.digest, self.n_draws.into(), 3);
        self.n_draws += 1;
        s
    }

    // Eight M31 elements, 31 bits at a time from the low end (`2^31 - 1`
    // reduces to 0).
    fn draw_base_felts(ref self: Channel) -> Array<u32> {
        let mut cur: u256 = self.draw_secure_felt252().into();
        let shift: NonZero<u256> = 0x80000000_u256.try_into().unwrap();
        let mut out = array![];
        let mut k: u32 = 0;
        while k < 8 {
            let (next, r) = DivRem::div_rem(cur, shift);
            let v: u32 = r.try_into().unwrap();
            out.append(if v == M31_P {
                0
            } else {
                v
            });
            cur = next;
            k += 1;
        }
        out
    }

    fn draw_secure_felt(ref self: Channel) -> QM31 {
        let b = self.draw_base_felts();
        [*b[0], *b[1], *b[2], *b[3]]
    }

    fn draw_secure_felts(ref self: Channel, n: u32) -> Array<QM31> {
        let mut base: Array<u32> = array![];
        while base.len() < 4 * n {
            let b = self.draw_base_felts();
            for v in b {
                base.append(v);
            }
        }
        let mut out = array![];
        let mut i: u32 = 0;
        while i < n {
            out.append([*base[4 * i], *base[4 * i + 1], *base[4 * i + 2], *base[4 * i + 3]]);
            i += 1;
        }
        out
    }

    // Seven words, 32 bits at a time from the low end.
    fn draw_u32s(ref self: Channel) -> Array<u32> {
        let mut cur: u256 = self.draw_secure_felt252().into();
        let shift: NonZero<u256> = 0x100000000_u256.try_into().unwrap();
        let mut out = array![];
        let mut k: u32 = 0;
        while k < 7 {
            let (next, r) = DivRem::div_rem(cur, shift);
            out.append(r.try_into().unwrap());
            cur = next;
            k += 1;
        }
        out
    }

    // Whether `nonce` grinds `n_bits` (below 128) zero bits: the low 128
    // bits of `H(H(prefix, digest, n_bits), nonce)` end in `n_bits` zeros.
    fn verify_pow_nonce(self: @Channel, n_bits: u32, nonce: u64) -> bool {
        let prefixed = poseidon_hash_span(array![POW_PREFIX, *self.digest, n_bits.into()].span());
        let h: u256 = poseidon_hash(prefixed, nonce.into()).into();
        if n_bits >= 128 {
            return false;
        }
        let mut mask: u128 = 1;
        let mut k: u32 = 0;
        while k < n_bits {
            mask *= 2;
            k += 1;
        }
        h.low % mask == 0
    }
}

// Replays a script of channel operations and returns what the draws gave,
// so that a test can hold the whole transcript against Stwo's. Each
// operation is its code and its arguments:
//   0 root: mix_root             1 v: mix_u64
//   2 n, 4n words: mix_felts     3 n, n words: mix_u32s
//   4 n: draw_secure_felts(n), 4n words out
//   5: draw_u32s, 7 words out    6 bits nonce: verify_pow_nonce, 0 or 1 out
//   7: the digest out
pub fn run_script(mut ops: Span<felt252>) -> Array<felt252> {
    let mut ch = ChannelTrait::new();
    let mut out: Array<felt252> = array![];
    while let Option::Some(op) = ops.pop_front() {
        let op: u32 = (*op).try_into().expect('op');
        if op == 0 {
            ch.mix_root(*ops.pop_front().expect('root'));
        } else if op == 1 {
            ch.mix_u64((*ops.pop_front().expect('u64')).try_into().expect('u64'));
        } else if op == 2 {
            let n: u32 = (*ops.pop_front().expect('n')).try_into().expect('n');
            let mut felts: Array<QM31> = array![];
            let mut i: u32 = 0;
            while i < n {
                let mut w: Array<u32> = array![];
                let mut k: u32 = 0;
                while k < 4 {
                    w.append((*ops.pop_front().expect('m31')).try_into().expect('m31'));
                    k += 1;
                }
                felts.append([*w[0], *w[1], *w[2], *w[3]]);
                i += 1;
            }
            ch.mix_felts(felts.span());
        } else if op == 3 {
            let n: u32 = (*ops.pop_front().expect('n')).try_into().expect('n');
            let mut words: Array<u32> = array![];
            let mut i: u32 = 0;
            while i < n {
                words.append((*ops.pop_front().expect('u32')).try_into().expect('u32'));
                i += 1;
            }
            ch.mix_u32s(words.span());
        } else if op == 4 {
            let n: u32 = (*ops.pop_front().expect('n')).try_into().expect('n');
            for f in ch.draw_secure_felts(n) {
                let [a, b, c, d] = f;
                out.append(a.into());
                out.append(b.into());
                out.append(c.into());
                out.append(d.into());
            }
        } else if op == 5 {
            for w in ch.draw_u32s() {
                out.append(w.into());
            }
        } else if op == 6 {
            let bits: u32 = (*ops.pop_front().expect('bits')).try_into().expect('bits');
            let nonce: u64 = (*ops.pop_front().expect('nonce')).try_into().expect('nonce');
            out.append(if ch.verify_pow_nonce(bits, nonce) {
                1
            } else {
                0
            });
        } else if op == 7 {
            out.append(ch.digest);
        } else {
            panic!("unknown channel operation {}", op);
        }
    }
    out
}

#[starknet::interface]
pub trait IStwoChannel<TContractState> {
    fn run(self: @TContractState, ops: Array<felt252>) -> Array<felt252>;
}

// The channel as a contract, for tests on a chain.
#[starknet::contract]
pub mod StwoChannel {
    #[storage]
    struct Storage {}

    #[abi(embed_v0)]
    impl StwoChannelImpl of super::IStwoChannel<ContractState> {
        fn run(self: @ContractState, ops: Array<felt252>) -> Array<felt252> {
            super::run_script(ops.span())
        }
    }
}
