//! MobileNetV2: Table 2 as data ([`block_setting`]), the config ([`config`]), the inverted residual
//! block of Table 1 ([`inverted_residual`]), the network and its forward pass ([`mobilenet_v2`]),
//! seeded initialisation ([`init`]), weights I/O ([`weights`]) and cost accounting ([`cost`]).

pub mod block_setting;
pub mod block_steps;
pub mod config;
pub mod cost;
pub mod hooked;
pub mod init;
pub mod inverted_residual;
pub mod keras;
pub mod mobilenet_v2;
pub mod network;
pub mod split;
pub mod ssd;
pub mod weights;
pub mod workspace;

pub use block_setting::{make_divisible, BlockPlan, BlockSetting, MOBILENET_V2_TABLE2};
pub use config::{Arch, BottleneckActivation, HiddenActivation, ModelConfig, Shortcut};
pub use cost::{LayerCost, ModelCost};
pub use inverted_residual::InvertedResidual;
pub use mobilenet_v2::MobileNetV2;
pub use network::Network;
pub use weights::WeightsFile;
