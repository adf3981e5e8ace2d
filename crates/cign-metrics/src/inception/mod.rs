//! pytorch-fid's FID Inception v3 written with tch (not a TorchScript forward): its
//! convolution list ([`spec`]), its blocks ([`blocks`]) and the network with the four taps
//! ([`network`]).

pub mod blocks;
pub mod network;
pub mod spec;

pub use blocks::{Layout, ParamMap};
pub use network::InceptionNetwork;
