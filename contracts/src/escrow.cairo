// The job escrow. A client deposits payment for a job, keyed by the job's
// spec hash: the Poseidon hash of the statement it pays for (module,
// program and public VM input digests, security level, nonce; see
// `spec_hash`). The deposit checks the hash and stores the spec, so anyone
// can read what the job pays for. The worker submits its result: the receipt's digests and its
// Stark-ECDSA signature over their Poseidon hash, checked against the key it
// registered in the staking contract. Registered validators vote; two thirds
// "valid" pays 80% to the worker, 18% to the treasury and 2% to the stakers'
// pool; two thirds "invalid" slashes the worker and refunds the client. With
// no result by the deadline, the client takes the deposit back. Each state
// change happens once: no replayed result, vote or payment.
use starknet::ContractAddress;

#[derive(Copy, Drop, Serde, PartialEq, starknet::Store)]
pub struct Job {
    pub client: ContractAddress,
    pub worker: ContractAddress,
    pub amount: u256,
    pub deadline: u64,
    // 0 none, 1 open, 2 submitted, 3 paid, 4 rejected, 5 refunded
    pub state: u8,
    pub result_hash: felt252,
    pub valid_votes: u32,
    pub invalid_votes: u32,
}

pub const NONE: u8 = 0;
pub const OPEN: u8 = 1;
pub const SUBMITTED: u8 = 2;
pub const PAID: u8 = 3;
pub const REJECTED: u8 = 4;
pub const REFUNDED: u8 = 5;

// The digests a receipt's attestation binds, each as two 128-bit halves.
#[derive(Copy, Drop, Serde)]
pub struct ResultDigests {
    pub module_hi: felt252,
    pub module_lo: felt252,
    pub program_hi: felt252,
    pub program_lo: felt252,
    pub io_hi: felt252,
    pub io_lo: felt252,
    pub document_hi: felt252,
    pub document_lo: felt252,
    pub proof_hi: felt252,
    pub proof_lo: felt252,
}

// What a paid job commits to (see bitsage_settle::attest::JobSpec): each
// SHA-256 digest as two 128-bit halves, the security bits (96 or 128), and
// the client's nonce as a short string.
#[derive(Copy, Drop, Serde, PartialEq, starknet::Store)]
pub struct JobSpec {
    pub module_hi: felt252,
    pub module_lo: felt252,
    pub program_hi: felt252,
    pub program_lo: felt252,
    pub input_hi: felt252,
    pub input_lo: felt252,
    pub security: felt252,
    pub nonce: felt252,
}

// The job id of a spec.
pub fn spec_hash(spec: JobSpec) -> felt252 {
    core::poseidon::poseidon_hash_span(
        array![
            'bitsage-job-spec-v2', spec.module_hi, spec.module_lo, spec.program_hi, spec.program_lo, spec.input_hi,
            spec.input_lo, spec.security, spec.nonce,
        ]
            .span(),
    )
}

#[starknet::interface]
pub trait IJobEscrow<TContractState> {
    fn deposit(ref self: TContractState, job_id: felt252, spec: JobSpec, amount: u256, deadline: u64);
    fn spec(self: @TContractState, job_id: felt252) -> JobSpec;
    fn submit_result(ref self: TContractState, job_id: felt252, digests: ResultDigests, r: felt252, s: felt252);
    fn vote(ref self: TContractState, job_id: felt252, valid: bool);
    fn refund(ref self: TContractState, job_id: felt252);
    fn job(self: @TContractState, job_id: felt252) -> Job;
    // Pays the caller for a job whose statement, with the output whose
    // digest's halves are given, the verifier recorded as verified by the
    // caller.
    fn claim_verified(ref self: TContractState, job_id: felt252, output_hi: felt252, output_lo: felt252);
    fn verifier(self: @TContractState) -> ContractAddress;
}

// The attestation hash (see bitsage_settle::attest).
pub fn attestation_hash(digests: ResultDigests, job_id: felt252, worker: ContractAddress) -> felt252 {
    let worker_felt: felt252 = worker.into();
    core::poseidon::poseidon_hash_span(
        array![
            'bitsage-attest-v2', digests.module_hi, digests.module_lo, digests.program_hi, digests.program_lo,
            digests.io_hi, digests.io_lo, digests.document_hi, digests.document_lo, digests.proof_hi,
            digests.proof_lo, job_id, worker_felt,
        ]
            .span(),
    )
}

#[starknet::contract]
pub mod JobEscrow {
    use starknet::storage::{
        Map, StorageMapReadAccess, StorageMapWriteAccess, StoragePointerReadAccess, StoragePointerWriteAccess,
    };
    use starknet::{ContractAddress, get_block_timestamp, get_caller_address, get_contract_address};
    use crate::erc20::{IERC20Dispatcher, IERC20DispatcherTrait};
    use crate::registry::{IValidatorRegistryDispatcher, IValidatorRegistryDispatcherTrait};
    use crate::staking::{IStakingDispatcher, IStakingDispatcherTrait};
    use crate::stwo::statement::statement_key;
    use crate::stwo::verifier::{IBitsageVerifierDispatcher, IBitsageVerifierDispatcherTrait};
    use super::{
        Job, JobSpec, NONE, OPEN, PAID, REFUNDED, REJECTED, ResultDigests, SUBMITTED, attestation_hash, spec_hash,
    };

    #[storage]
    struct Storage {
        token: ContractAddress,
        staking: ContractAddress,
        registry: ContractAddress,
        treasury: ContractAddress,
        stakers_pool: ContractAddress,
        slash_amount: u256,
        verifier: ContractAddress,
        jobs: Map<felt252, Job>,
        specs: Map<felt252, JobSpec>,
        voted: Map<(felt252, ContractAddress), bool>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    pub enum Event {
        Deposited: Deposited,
        ResultSubmitted: ResultSubmitted,
        Voted: Voted,
        Paid: Paid,
        Rejected: Rejected,
        Refunded: Refunded,
        ProofAccepted: ProofAccepted,
    }

    #[derive(Drop, starknet::Event)]
    pub struct Deposited {
        #[key]
        pub job_id: felt252,
        pub client: ContractAddress,
        pub amount: u256,
        pub deadline: u64,
    }

    #[derive(Drop, starknet::Event)]
    pub struct ResultSubmitted {
        #[key]
        pub job_id: felt252,
        pub worker: ContractAddress,
        pub result_hash: felt252,
    }

    #[derive(Drop, starknet::Event)]
    pub struct Voted {
        #[key]
        pub job_id: felt252,
        pub validator: ContractAddress,
        pub valid: bool,
    }

    #[derive(Drop, starknet::Event)]
    pub struct Paid {
        #[key]
        pub job_id: felt252,
        pub worker: ContractAddress,
        pub to_worker: u256,
        pub to_treasury: u256,
        pub to_stakers: u256,
    }

    #[derive(Drop, starknet::Event)]
    pub struct Rejected {
        #[key]
        pub job_id: felt252,
        pub worker: ContractAddress,
        pub slashed: u256,
    }

    #[derive(Drop, starknet::Event)]
    pub struct ProofAccepted {
        #[key]
        pub job_id: felt252,
        pub worker: ContractAddress,
        pub statement: felt252,
        pub proof_hash: felt252,
    }

    #[derive(Drop, starknet::Event)]
    pub struct Refunded {
        #[key]
        pub job_id: felt252,
        pub client: ContractAddress,
        pub amount: u256,
    }

    #[constructor]
    fn constructor(
        ref self: ContractState,
        token: ContractAddress,
        staking: ContractAddress,
        registry: ContractAddress,
        treasury: ContractAddress,
        stakers_pool: ContractAddress,
        slash_amount: u256,
        verifier: ContractAddress,
    ) {
        self.verifier.write(verifier);
        self.token.write(token);
        self.staking.write(staking);
        self.registry.write(registry);
        self.treasury.write(treasury);
        self.stakers_pool.write(stakers_pool);
        self.slash_amount.write(slash_amount);
    }

    fn pay(self: @ContractState, to: ContractAddress, amount: u256) {
        if amount > 0 {
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            assert(token.transfer(to, amount), 'transfer failed');
        }
    }

    #[abi(embed_v0)]
    impl EscrowImpl of super::IJobEscrow<ContractState> {
        fn deposit(ref self: ContractState, job_id: felt252, spec: JobSpec, amount: u256, deadline: u64) {
            assert(spec_hash(spec) == job_id, 'job id is not its spec hash');
            assert(spec.security == 96 || spec.security == 128, 'bad security level');
            assert(amount > 0, 'amount is zero');
            assert(deadline > get_block_timestamp(), 'deadline passed');
            let mut job = self.jobs.read(job_id);
            assert(job.state == NONE, 'job exists');
            let client = get_caller_address();
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            assert(token.transfer_from(client, get_contract_address(), amount), 'transfer failed');
            job.client = client;
            job.amount = amount;
            job.deadline = deadline;
            job.state = OPEN;
            self.jobs.write(job_id, job);
            self.specs.write(job_id, spec);
            self.emit(Deposited { job_id, client, amount, deadline });
        }

        fn submit_result(ref self: ContractState, job_id: felt252, digests: ResultDigests, r: felt252, s: felt252) {
            let mut job = self.jobs.read(job_id);
            assert(job.state == OPEN, 'job not open');
            assert(get_block_timestamp() <= job.deadline, 'deadline passed');
            let worker = get_caller_address();
            let staking = IStakingDispatcher { contract_address: self.staking.read() };
            assert(staking.stake_of(worker) > 0, 'worker not staked');
            let key = staking.public_key_of(worker);
            assert(key != 0, 'worker has no key');
            let result_hash = attestation_hash(digests, job_id, worker);
            assert(core::ecdsa::check_ecdsa_signature(result_hash, key, r, s), 'bad attestation');
            job.worker = worker;
            job.result_hash = result_hash;
            job.state = SUBMITTED;
            self.jobs.write(job_id, job);
            self.emit(ResultSubmitted { job_id, worker, result_hash });
        }

        fn vote(ref self: ContractState, job_id: felt252, valid: bool) {
            let validator = get_caller_address();
            let registry = IValidatorRegistryDispatcher { contract_address: self.registry.read() };
            assert(registry.is_validator(validator), 'not a validator');
            let mut job = self.jobs.read(job_id);
            assert(job.state == SUBMITTED, 'no result to judge');
            assert(!self.voted.read((job_id, validator)), 'already voted');
            self.voted.write((job_id, validator), true);
            self.emit(Voted { job_id, validator, valid });
            if valid {
                job.valid_votes += 1;
            } else {
                job.invalid_votes += 1;
            }
            if valid && registry.is_quorum(job.valid_votes) {
                let to_worker = job.amount * 80 / 100;
                let to_treasury = job.amount * 18 / 100;
                let to_stakers = job.amount - to_worker - to_treasury;
                job.state = PAID;
                self.jobs.write(job_id, job);
                pay(@self, job.worker, to_worker);
                pay(@self, self.treasury.read(), to_treasury);
                pay(@self, self.stakers_pool.read(), to_stakers);
                self.emit(Paid { job_id, worker: job.worker, to_worker, to_treasury, to_stakers });
            } else if !valid && registry.is_quorum(job.invalid_votes) {
                job.state = REJECTED;
                self.jobs.write(job_id, job);
                let staking = IStakingDispatcher { contract_address: self.staking.read() };
                let slashed = staking.slash(job.worker, self.slash_amount.read(), job.client);
                pay(@self, job.client, job.amount);
                self.emit(Rejected { job_id, worker: job.worker, slashed });
                self.emit(Refunded { job_id, client: job.client, amount: job.amount });
            } else {
                self.jobs.write(job_id, job);
            }
        }

        fn refund(ref self: ContractState, job_id: felt252) {
            let mut job = self.jobs.read(job_id);
            assert(job.state == OPEN, 'job not open');
            assert(get_block_timestamp() > job.deadline, 'deadline not reached');
            job.state = REFUNDED;
            self.jobs.write(job_id, job);
            pay(@self, job.client, job.amount);
            self.emit(Refunded { job_id, client: job.client, amount: job.amount });
        }

        fn claim_verified(ref self: ContractState, job_id: felt252, output_hi: felt252, output_lo: felt252) {
            let mut job = self.jobs.read(job_id);
            assert(job.state == OPEN || job.state == SUBMITTED, 'job not open');
            assert(get_block_timestamp() <= job.deadline, 'deadline passed');
            let worker = get_caller_address();
            let staking = IStakingDispatcher { contract_address: self.staking.read() };
            assert(staking.stake_of(worker) > 0, 'worker not staked');
            let spec = self.specs.read(job_id);
            let security: u32 = spec.security.try_into().unwrap();
            let statement = statement_key(
                (spec.program_hi, spec.program_lo), (spec.input_hi, spec.input_lo), (output_hi, output_lo), security,
            );
            let verifier = IBitsageVerifierDispatcher { contract_address: self.verifier.read() };
            let (prover, proof_hash) = verifier.verified_by(statement);
            assert(prover == worker, 'no proof verified by caller');
            let to_worker = job.amount * 80 / 100;
            let to_treasury = job.amount * 18 / 100;
            let to_stakers = job.amount - to_worker - to_treasury;
            job.worker = worker;
            job.result_hash = statement;
            job.state = PAID;
            self.jobs.write(job_id, job);
            self.emit(ProofAccepted { job_id, worker, statement, proof_hash });
            pay(@self, worker, to_worker);
            pay(@self, self.treasury.read(), to_treasury);
            pay(@self, self.stakers_pool.read(), to_stakers);
            self.emit(Paid { job_id, worker, to_worker, to_treasury, to_stakers });
        }

        fn verifier(self: @ContractState) -> ContractAddress {
            self.verifier.read()
        }

        fn job(self: @ContractState, job_id: felt252) -> Job {
            self.jobs.read(job_id)
        }

        fn spec(self: @ContractState, job_id: felt252) -> JobSpec {
            self.specs.read(job_id)
        }
    }
}
