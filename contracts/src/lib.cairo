pub mod erc20;
pub mod staking;
