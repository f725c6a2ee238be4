//! Element-wise kernels compiled for the CPU they run on: [`multiversion!`] compiles a loop
//! for AVX-512 and AVX2 + FMA besides the baseline and calls the best the CPU has, so one
//! binary runs on any x86-64 (and elsewhere on the baseline). Used by the fused model kernels
//! (`model::fused`) and the fused AdamW update (`train::adamw`).
//!
//! The compiler never contracts `a * b + c` into a fused multiply-add (Rust does not allow it),
//! so a kernel computes what the same scalar expressions compute, bit for bit.

/// Compiles a kernel for AVX-512 and AVX2 + FMA besides the baseline, and calls the best the
/// CPU has (checked at run time, cached by std).
macro_rules! multiversion {
    ($(fn $name:ident($($p:ident: $t:ty),* $(,)?) $body:block)*) => {$(
        fn $name($($p: $t),*) {
            #[inline(always)]
            fn kernel($($p: $t),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn v4($($p: $t),*) { kernel($($p),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($p: $t),*) { kernel($($p),*) }
                if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") {
                    // SAFETY: the CPU has the features v4 was compiled for.
                    return unsafe { v4($($p),*) };
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features v3 was compiled for.
                    return unsafe { v3($($p),*) };
                }
            }
            kernel($($p),*)
        }
    )*};
}

pub(crate) use multiversion;

/// Accumulators of the lane-wise reductions: independent sums the compiler keeps in one
/// vector register (a single running sum is a serial dependency chain it may not reorder).
pub(crate) const LANES: usize = 16;

/// `Σ x·y` over LANES independent partial sums, added at the end: the order that lets the
/// loop vectorize (not left to right, so not bit-identical to a sequential sum).
#[inline(always)]
pub(crate) fn dot_lanes(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (cx, cy) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let tail: f32 = cx
        .remainder()
        .iter()
        .zip(cy.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in cx.zip(cy) {
        for ((acc, &a), &b) in acc.iter_mut().zip(a).zip(b) {
            *acc += a * b;
        }
    }
    acc.iter().sum::<f32>() + tail
}
