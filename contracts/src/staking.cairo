// Worker staking: stake an ERC20, unstake into an unbonding period, claim
// after it, tiers from the stake, and slashing that only the slasher (the
// job escrow, acting on a validator verdict) can trigger. The escrow's
// address depends on this contract's, so the deployer names the slasher
// once, after deploying the escrow; it can never change afterwards.
use starknet::ContractAddress;

#[starknet::interface]
pub trait IStaking<TContractState> {
    fn stake(ref self: TContractState, amount: u256);
    fn unstake(ref self: TContractState, amount: u256);
    fn claim(ref self: TContractState) -> u256;
    fn set_public_key(ref self: TContractState, key: felt252);
    fn set_slasher(ref self: TContractState, slasher: ContractAddress);
    fn slasher(self: @TContractState) -> ContractAddress;
    fn slash(ref self: TContractState, worker: ContractAddress, amount: u256, to: ContractAddress) -> u256;
    fn stake_of(self: @TContractState, worker: ContractAddress) -> u256;
    fn unbonding_of(self: @TContractState, worker: ContractAddress) -> (u256, u64);
    fn tier_of(self: @TContractState, worker: ContractAddress) -> u8;
    fn public_key_of(self: @TContractState, worker: ContractAddress) -> felt252;
    fn total_staked(self: @TContractState) -> u256;
}

// Tier thresholds in whole tokens (18 decimals): Consumer, Workstation,
// DataCenter, Enterprise, Frontier.
pub fn tier_for(stake: u256) -> u8 {
    let unit: u256 = 1_000_000_000_000_000_000;
    if stake >= 25_000 * unit {
        5
    } else if stake >= 10_000 * unit {
        4
    } else if stake >= 5_000 * unit {
        3
    } else if stake >= 2_500 * unit {
        2
    } else if stake >= 1_000 * unit {
        1
    } else {
        0
    }
}

#[starknet::contract]
pub mod Staking {
    use starknet::storage::{
        Map, StorageMapReadAccess, StorageMapWriteAccess, StoragePointerReadAccess, StoragePointerWriteAccess,
    };
    use starknet::{ContractAddress, get_block_timestamp, get_caller_address, get_contract_address};
    use crate::erc20::{IERC20Dispatcher, IERC20DispatcherTrait};
    use super::tier_for;

    #[storage]
    struct Storage {
        token: ContractAddress,
        admin: ContractAddress,
        slasher: ContractAddress,
        unbonding_period: u64,
        stakes: Map<ContractAddress, u256>,
        unbonding_amount: Map<ContractAddress, u256>,
        unbonding_until: Map<ContractAddress, u64>,
        public_keys: Map<ContractAddress, felt252>,
        total: u256,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    pub enum Event {
        Staked: Staked,
        Unstaked: Unstaked,
        Claimed: Claimed,
        Slashed: Slashed,
    }

    #[derive(Drop, starknet::Event)]
    pub struct Staked {
        #[key]
        pub worker: ContractAddress,
        pub amount: u256,
        pub stake: u256,
    }

    #[derive(Drop, starknet::Event)]
    pub struct Unstaked {
        #[key]
        pub worker: ContractAddress,
        pub amount: u256,
        pub until: u64,
    }

    #[derive(Drop, starknet::Event)]
    pub struct Claimed {
        #[key]
        pub worker: ContractAddress,
        pub amount: u256,
    }

    #[derive(Drop, starknet::Event)]
    pub struct Slashed {
        #[key]
        pub worker: ContractAddress,
        pub amount: u256,
        pub to: ContractAddress,
    }

    #[constructor]
    fn constructor(ref self: ContractState, token: ContractAddress, admin: ContractAddress, unbonding_period: u64) {
        self.token.write(token);
        self.admin.write(admin);
        self.unbonding_period.write(unbonding_period);
    }

    #[abi(embed_v0)]
    impl StakingImpl of super::IStaking<ContractState> {
        fn stake(ref self: ContractState, amount: u256) {
            assert(amount > 0, 'amount is zero');
            let worker = get_caller_address();
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            assert(token.transfer_from(worker, get_contract_address(), amount), 'transfer failed');
            let stake = self.stakes.read(worker) + amount;
            self.stakes.write(worker, stake);
            self.total.write(self.total.read() + amount);
            self.emit(Staked { worker, amount, stake });
        }

        fn unstake(ref self: ContractState, amount: u256) {
            assert(amount > 0, 'amount is zero');
            let worker = get_caller_address();
            let stake = self.stakes.read(worker);
            assert(stake >= amount, 'insufficient stake');
            self.stakes.write(worker, stake - amount);
            self.total.write(self.total.read() - amount);
            let until = get_block_timestamp() + self.unbonding_period.read();
            self.unbonding_amount.write(worker, self.unbonding_amount.read(worker) + amount);
            self.unbonding_until.write(worker, until);
            self.emit(Unstaked { worker, amount, until });
        }

        fn claim(ref self: ContractState) -> u256 {
            let worker = get_caller_address();
            let amount = self.unbonding_amount.read(worker);
            assert(amount > 0, 'nothing unbonding');
            assert(get_block_timestamp() >= self.unbonding_until.read(worker), 'still unbonding');
            self.unbonding_amount.write(worker, 0);
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            assert(token.transfer(worker, amount), 'transfer failed');
            self.emit(Claimed { worker, amount });
            amount
        }

        fn set_slasher(ref self: ContractState, slasher: ContractAddress) {
            assert(get_caller_address() == self.admin.read(), 'only the admin');
            let unset: ContractAddress = 0.try_into().unwrap();
            assert(self.slasher.read() == unset, 'slasher already set');
            assert(slasher != unset, 'slasher is zero');
            self.slasher.write(slasher);
        }

        fn slasher(self: @ContractState) -> ContractAddress {
            self.slasher.read()
        }

        fn set_public_key(ref self: ContractState, key: felt252) {
            self.public_keys.write(get_caller_address(), key);
        }

        // Takes up to `amount` from the worker's stake, then from its
        // unbonding balance, and sends it to `to`. Only the slasher.
        fn slash(ref self: ContractState, worker: ContractAddress, amount: u256, to: ContractAddress) -> u256 {
            let slasher = self.slasher.read();
            let unset: ContractAddress = 0.try_into().unwrap();
            assert(slasher != unset && get_caller_address() == slasher, 'only the slasher');
            let stake = self.stakes.read(worker);
            let from_stake = if stake >= amount {
                amount
            } else {
                stake
            };
            self.stakes.write(worker, stake - from_stake);
            self.total.write(self.total.read() - from_stake);
            let unbonding = self.unbonding_amount.read(worker);
            let rest = amount - from_stake;
            let from_unbonding = if unbonding >= rest {
                rest
            } else {
                unbonding
            };
            self.unbonding_amount.write(worker, unbonding - from_unbonding);
            let taken = from_stake + from_unbonding;
            if taken > 0 {
                let token = IERC20Dispatcher { contract_address: self.token.read() };
                assert(token.transfer(to, taken), 'transfer failed');
            }
            self.emit(Slashed { worker, amount: taken, to });
            taken
        }

        fn stake_of(self: @ContractState, worker: ContractAddress) -> u256 {
            self.stakes.read(worker)
        }

        fn unbonding_of(self: @ContractState, worker: ContractAddress) -> (u256, u64) {
            (self.unbonding_amount.read(worker), self.unbonding_until.read(worker))
        }

        fn tier_of(self: @ContractState, worker: ContractAddress) -> u8 {
            tier_for(self.stakes.read(worker))
        }

        fn public_key_of(self: @ContractState, worker: ContractAddress) -> felt252 {
            self.public_keys.read(worker)
        }

        fn total_staked(self: @ContractState) -> u256 {
            self.total.read()
        }
    }
}
