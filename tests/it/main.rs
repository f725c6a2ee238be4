//! The integration tests, as one binary: each file a module, `common` their shared helpers.
//! One binary links burn once, where one per file linked it 31 times (docs/measurements.md:
//! build and run times of both layouts). The finite-difference gradient tests are the other
//! binary (`tests/f64/`): they run flex in f64, a setting of the process's flex device.

mod common;

mod accounting;
mod adamw;
mod analysis;
mod architecture;
mod audit;
mod bad_input;
mod bench_compare;
mod causality;
mod conformance;
mod corpora;
mod corpus;
mod dispatch;
mod distill;
mod export;
mod faults;
mod figures;
mod final_model;
mod forecast;
mod fused;
mod fuzz;
mod isoflop;
mod kernels_ran;
mod matmul;
mod memory;
mod mix;
mod moe_equivalence;
mod no_readback;
mod page;
mod pairing;
mod probes;
mod recipe;
mod routing;
mod sample;
mod sequential;
mod stages;
mod sweep;
mod training;
mod variants;
mod walkthrough;
mod wgpu_agreement;
