pub mod erc20;
pub mod escrow;
pub mod registry;
pub mod staking;
pub mod stwo;
