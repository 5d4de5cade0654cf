// The validator registry: accounts with at least `min_stake` staked may
// register as validators; the quorum is two thirds of the registered ones.
use starknet::ContractAddress;

#[starknet::interface]
pub trait IValidatorRegistry<TContractState> {
    fn register(ref self: TContractState);
    fn deregister(ref self: TContractState);
    fn is_validator(self: @TContractState, account: ContractAddress) -> bool;
    fn validator_count(self: @TContractState) -> u32;
    fn is_quorum(self: @TContractState, votes: u32) -> bool;
}

// Two thirds of `count`, and at least one validator.
pub fn quorum_reached(votes: u32, count: u32) -> bool {
    count > 0 && votes * 3 >= count * 2
}

#[starknet::contract]
pub mod ValidatorRegistry {
    use starknet::storage::{
        Map, StorageMapReadAccess, StorageMapWriteAccess, StoragePointerReadAccess, StoragePointerWriteAccess,
    };
    use starknet::{ContractAddress, get_caller_address};
    use crate::staking::{IStakingDispatcher, IStakingDispatcherTrait};
    use super::quorum_reached;

    #[storage]
    struct Storage {
        staking: ContractAddress,
        min_stake: u256,
        validators: Map<ContractAddress, bool>,
        count: u32,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    pub enum Event {
        Registered: Registered,
        Deregistered: Deregistered,
    }

    #[derive(Drop, starknet::Event)]
    pub struct Registered {
        #[key]
        pub validator: ContractAddress,
    }

    #[derive(Drop, starknet::Event)]
    pub struct Deregistered {
        #[key]
        pub validator: ContractAddress,
    }

    #[constructor]
    fn constructor(ref self: ContractState, staking: ContractAddress, min_stake: u256) {
        self.staking.write(staking);
        self.min_stake.write(min_stake);
    }

    #[abi(embed_v0)]
    impl RegistryImpl of super::IValidatorRegistry<ContractState> {
        fn register(ref self: ContractState) {
            let validator = get_caller_address();
            assert(!self.validators.read(validator), 'already a validator');
            let staking = IStakingDispatcher { contract_address: self.staking.read() };
            assert(staking.stake_of(validator) >= self.min_stake.read(), 'stake below minimum');
            self.validators.write(validator, true);
            self.count.write(self.count.read() + 1);
            self.emit(Registered { validator });
        }

        fn deregister(ref self: ContractState) {
            let validator = get_caller_address();
            assert(self.validators.read(validator), 'not a validator');
            self.validators.write(validator, false);
            self.count.write(self.count.read() - 1);
            self.emit(Deregistered { validator });
        }

        fn is_validator(self: @ContractState, account: ContractAddress) -> bool {
            self.validators.read(account)
        }

        fn validator_count(self: @ContractState) -> u32 {
            self.count.read()
        }

        fn is_quorum(self: @ContractState, votes: u32) -> bool {
            quorum_reached(votes, self.count.read())
        }
    }
}
