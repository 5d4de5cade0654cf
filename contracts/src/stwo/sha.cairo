// SHA-256 over a byte stream that arrives across transactions: the state
// (eight words), the whole words not yet a block, the bytes not yet a word
// and the length so far are plain values, carried in a session between
// transactions. Each full block goes through Starknet's
// `sha256_process_block` syscall, the one `core::sha256` uses; the corelib
// keeps the state handle's conversions private to `core`, so they are
// declared here by their libfunc names.
use starknet::SyscallResultTrait;

extern type Sha256StateHandle;
impl Sha256StateHandleCopy of Copy<Sha256StateHandle>;
impl Sha256StateHandleDrop of Drop<Sha256StateHandle>;
extern fn sha256_state_handle_init(state: Box<[u32; 8]>) -> Sha256StateHandle nopanic;
extern fn sha256_state_handle_digest(state: Sha256StateHandle) -> Box<[u32; 8]> nopanic;
extern fn sha256_process_block_syscall(
    state: Sha256StateHandle, input: Box<[u32; 16]>,
) -> starknet::SyscallResult<Sha256StateHandle> implicits(core::gas::GasBuiltin, starknet::System) nopanic;

// FIPS 180-4's initial hash value.
const INITIAL: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

#[derive(Drop, Clone, Serde, Debug, PartialEq)]
pub struct ShaStream {
    pub state: [u32; 8],
    // Whole big-endian words of the current block (fewer than 16).
    pub words: Array<u32>,
    // The bytes of the current word so far (fewer than 4), big-endian.
    pub partial: u32,
    pub partial_len: u32,
    // Bytes absorbed in all.
    pub len: u64,
}

#[generate_trait]
pub impl ShaStreamImpl of ShaStreamTrait {
    fn new() -> ShaStream {
        ShaStream { state: INITIAL, words: array![], partial: 0, partial_len: 0, len: 0 }
    }

    fn byte(ref self: ShaStream, b: u32) {
        self.partial = self.partial * 256 + b;
        self.partial_len += 1;
        self.len += 1;
        if self.partial_len == 4 {
            self.words.append(self.partial);
            self.partial = 0;
            self.partial_len = 0;
            if self.words.len() == 16 {
                let mut block = self.words.span();
                let b16 = block.multi_pop_front::<16>().unwrap();
                let h = sha256_state_handle_init(BoxTrait::new(self.state));
                let h = sha256_process_block_syscall(h, *b16).unwrap_syscall();
                self.state = sha256_state_handle_digest(h).unbox();
                self.words = array![];
            }
        }
    }

    fn u32_le(ref self: ShaStream, v: u32) {
        self.byte(v % 256);
        self.byte((v / 256) % 256);
        self.byte((v / 65536) % 256);
        self.byte(v / 16777216);
    }

    fn u64_le(ref self: ShaStream, v: u64) {
        let lo: u32 = (v % 0x100000000).try_into().unwrap();
        let hi: u32 = (v / 0x100000000).try_into().unwrap();
        self.u32_le(lo);
        self.u32_le(hi);
    }

    fn bytes(ref self: ShaStream, b: @ByteArray) {
        let mut i: usize = 0;
        while i < b.len() {
            self.byte(b.at(i).unwrap().into());
            i += 1;
        }
    }

    // The digest: `0x80`, zeros to 56 bytes mod 64, the length in bits as
    // a big-endian u64.
    fn finish(self: ShaStream) -> [u32; 8] {
        let mut s = self;
        let bits = s.len * 8;
        s.byte(0x80);
        while s.len % 64 != 56 {
            s.byte(0);
        }
        let hi: u32 = (bits / 0x100000000).try_into().unwrap();
        let lo: u32 = (bits % 0x100000000).try_into().unwrap();
        let (b0, b1, b2, b3) = (hi / 16777216, (hi / 65536) % 256, (hi / 256) % 256, hi % 256);
        let (b4, b5, b6, b7) = (lo / 16777216, (lo / 65536) % 256, (lo / 256) % 256, lo % 256);
        for b in array![b0, b1, b2, b3, b4, b5, b6, b7] {
            s.byte(b);
        }
        s.state
    }
}
