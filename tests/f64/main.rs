//! The finite-difference gradient tests, in a binary of their own: they configure the
//! process's flex device for f64 (exact enough to compare at 1e-5), which every other test
//! (`tests/it/`) needs in f32, and a device's float type is set once per process.

#[path = "../it/common/mod.rs"]
mod common;

mod conformance_gradients;
mod gradients;

use burn::prelude::*;
use burn::tensor::FloatDType;

/// Flex in f64, configured once for the process, so finite differences are exact enough to
/// compare at 1e-5 (central differences accurate to ~1e-9).
pub fn f64_device() -> Device {
    static DEVICE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let mut d = Device::flex();
            d.configure(FloatDType::F64).expect("flex supports f64");
            d
        })
        .clone()
}
