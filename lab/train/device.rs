//! Device choice: `auto` (a hardware adapter through wgpu if one exists, else flex), `wgpu`
//! (burn's default wgpu adapter), `wgpu-cpu` (the software Vulkan adapter, e.g. Mesa's
//! lavapipe) and `flex` (burn's pure-Rust CPU backend).
//!
//! The wgpu backend is compiled only with the `wgpu` cargo feature (Cargo.toml). Without it
//! wgpu sees no adapter, `auto` is flex, and asking for `wgpu` or `wgpu-cpu` is an error that
//! says how to build it.

use burn::prelude::*;
#[cfg(feature = "wgpu")]
use burn::tensor::DeviceKind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    Auto,
    Wgpu,
    WgpuCpu,
    Flex,
}

/// A device the lab trains on, with what the run summary records about it.
#[derive(Clone)]
pub struct LabDevice {
    pub device: Device,
    /// `flex` or `wgpu`.
    pub backend: String,
    /// The adapter's name and type, or `cpu (flex)`.
    pub adapter: String,
    /// wgpu on a software adapter: slow, and worth a warning.
    pub software: bool,
    /// The largest buffer the adapter binds for a kernel (wgpu: the smaller of its buffer and
    /// storage-binding limits); `None` on flex. Every tensor must fit in one.
    pub max_buffer_bytes: Option<u64>,
}

/// One graphics adapter wgpu can see.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterInfo {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub is_hardware: bool,
    /// min(max_buffer_size, max_storage_buffer_binding_size) of the adapter's limits.
    pub max_buffer_bytes: u64,
}

/// Whether this build has the wgpu backend (the `wgpu` cargo feature).
pub const WGPU_BUILT: bool = cfg!(feature = "wgpu");

/// What to do to get the wgpu backend into a build that lacks it.
pub const WGPU_HOWTO: &str = "this lab was built without its wgpu backend: rebuild with \
     `cargo build --features wgpu`, or run through `just` with LAB_WGPU=1 (just turns it on \
     where it finds a GPU)";

/// Every adapter wgpu can see through its primary APIs (Vulkan, Metal, DX12, WebGPU): the
/// ones burn's wgpu runtime uses. None in a build without the wgpu backend.
#[cfg(not(feature = "wgpu"))]
pub fn adapters() -> Vec<AdapterInfo> {
    Vec::new()
}

/// Every adapter wgpu can see through its primary APIs (Vulkan, Metal, DX12, WebGPU): the
/// ones burn's wgpu runtime uses.
#[cfg(feature = "wgpu")]
pub fn adapters() -> Vec<AdapterInfo> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let list = futures_lite::future::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    list.into_iter()
        .map(|a| {
            let info = a.get_info();
            let limits = a.limits();
            AdapterInfo {
                max_buffer_bytes: limits
                    .max_buffer_size
                    .min(limits.max_storage_buffer_binding_size),
                name: info.name.clone(),
                backend: format!("{:?}", info.backend),
                device_type: format!("{:?}", info.device_type),
                is_hardware: !matches!(
                    info.device_type,
                    wgpu::DeviceType::Cpu | wgpu::DeviceType::Other
                ),
            }
        })
        .collect()
}

impl DeviceChoice {
    /// The name `--device` / `--devices` take for it (what child `lab` processes are given).
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Wgpu => "wgpu",
            DeviceChoice::WgpuCpu => "wgpu-cpu",
            DeviceChoice::Flex => "flex",
        }
    }

    pub fn open(self) -> anyhow::Result<LabDevice> {
        let flex = || LabDevice {
            device: Device::flex(),
            backend: "flex".into(),
            adapter: "cpu (flex)".into(),
            software: false,
            max_buffer_bytes: None,
        };
        match self {
            DeviceChoice::Flex => Ok(flex()),
            DeviceChoice::Wgpu | DeviceChoice::WgpuCpu if !WGPU_BUILT => {
                anyhow::bail!("--device {}: {WGPU_HOWTO}", self.name())
            }
            DeviceChoice::Auto => {
                let found = adapters();
                match found.iter().find(|a| a.is_hardware) {
                    Some(hw) => Ok(wgpu_device(false, hw)),
                    None => Ok(flex()),
                }
            }
            DeviceChoice::Wgpu => {
                let found = adapters();
                let pick = found
                    .iter()
                    .find(|a| a.is_hardware)
                    .or(found.first())
                    .cloned();
                match pick {
                    Some(a) => Ok(wgpu_device(false, &a)),
                    None => anyhow::bail!("--device wgpu: no wgpu adapter on this machine"),
                }
            }
            DeviceChoice::WgpuCpu => {
                let found = adapters();
                match found.iter().find(|a| a.device_type == "Cpu") {
                    Some(a) => Ok(wgpu_device(true, a)),
                    None => anyhow::bail!(
                        "--device wgpu-cpu: no software (CPU) wgpu adapter; on Debian install \
                         mesa-vulkan-drivers"
                    ),
                }
            }
        }
    }
}

/// burn's wgpu device on `adapter`: its default device, or its software one (`cpu`).
#[cfg(not(feature = "wgpu"))]
fn wgpu_device(_cpu: bool, _: &AdapterInfo) -> LabDevice {
    unreachable!("adapters() lists none without the wgpu backend")
}

/// burn's wgpu device on `adapter`: its default device, or its software one (`cpu`).
#[cfg(feature = "wgpu")]
fn wgpu_device(cpu: bool, adapter: &AdapterInfo) -> LabDevice {
    let kind = if cpu {
        DeviceKind::Cpu
    } else {
        DeviceKind::DefaultDevice
    };
    LabDevice {
        device: Device::wgpu(kind),
        backend: "wgpu".into(),
        adapter: format!(
            "{} ({}, {})",
            adapter.name, adapter.backend, adapter.device_type
        ),
        software: !adapter.is_hardware,
        max_buffer_bytes: Some(adapter.max_buffer_bytes),
    }
}
