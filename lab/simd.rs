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
