//! Element-wise kernels compiled for the CPU they run on: [`multiversion!`] compiles a loop
//! for AVX-512 and AVX2 + FMA besides the baseline and calls the best the CPU has, so one
//! binary runs on any x86-64 (and elsewhere on the baseline), and the pieces those loops share
//! (lane-wise sums, a vectorizable [`exp`]). Used by the fused model kernels (`kernels::fused`),
//! the router's softmax (`ffn::router_softmax`) and the fused AdamW update (`kernels::adamw`).
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

/// `e^x` for f32, relative error ≈ 2·10⁻⁷ (Cephes' `expf` polynomial on x − n·ln 2, |x − n·ln 2|
/// ≤ ln 2 / 2, times 2ⁿ built in the exponent bits); inputs clamped to [−87.3, 88.3] (so
/// `exp(−∞)` is ≈ 1.2·10⁻³⁸ rather than 0), NaN kept. Branch-free, so it vectorizes.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2²³: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3); // NaN stays NaN
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // n + 127 in the exponent field (wrapping: no overflow check to stop vectorization; the
    // clamp keeps it in 1..=254).
    let bits = (t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127)) << 23;
    e * f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst = 0.0f64;
        for i in -87_000..88_000 {
            let x = i as f32 / 1000.0 + 0.000_37;
            let (ours, std) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((ours - std) / std).abs());
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
    }
}
