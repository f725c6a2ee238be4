//! `matmul-probe [n] [threads]`: the FMA peak of one core (AVX-512, else AVX2) and gemm's
//! f32 `n×n · n×n` product (median of 5 after one warm-up), in GFLOP/s.

use std::time::Instant;

/// FLOPs per second of independent fused multiply-adds on 16-lane (AVX-512) or 8-lane (AVX2)
/// vectors: 12 accumulators, more than the FMA latency × units, so the units never wait.
fn fma_peak() -> f64 {
    let iters = 20_000_000usize;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        if is_x86_feature_detected!("avx512f") {
            #[target_feature(enable = "avx512f")]
            unsafe fn run(iters: usize) -> f32 {
                let mut acc = [_mm512_set1_ps(0.0); 12];
                let (a, b) = (_mm512_set1_ps(1.000_000_1), _mm512_set1_ps(0.999_999_9));
                for _ in 0..iters {
                    for x in acc.iter_mut() {
                        *x = _mm512_fmadd_ps(*x, a, b);
                    }
                }
                acc.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
            }
            let t = Instant::now();
            let s = unsafe { run(iters) };
            std::hint::black_box(s);
            return (iters * 12 * 16 * 2) as f64 / t.elapsed().as_secs_f64();
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn run(iters: usize) -> f32 {
                let mut acc = [_mm256_set1_ps(0.0); 12];
                let (a, b) = (_mm256_set1_ps(1.000_000_1), _mm256_set1_ps(0.999_999_9));
                for _ in 0..iters {
                    for x in acc.iter_mut() {
                        *x = _mm256_fmadd_ps(*x, a, b);
                    }
                }
                let mut out = [0f32; 8];
                let sum = acc
                    .iter()
                    .fold(_mm256_set1_ps(0.0), |s, &x| _mm256_add_ps(s, x));
                _mm256_storeu_ps(out.as_mut_ptr(), sum);
                out.iter().sum()
            }
            let t = Instant::now();
            let s = unsafe { run(iters) };
            std::hint::black_box(s);
            return (iters * 12 * 8 * 2) as f64 / t.elapsed().as_secs_f64();
        }
    }
    let _ = iters;
    f64::NAN
}

fn gemm_rate(n: usize, threads: usize) -> f64 {
    let a: Vec<f32> = (0..n * n).map(|i| (i % 13) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..n * n).map(|i| (i % 11) as f32 * 0.1).collect();
    let mut c = vec![0f32; n * n];
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let mut times: Vec<f64> = (0..6)
        .map(|_| {
            let t = Instant::now();
            // SAFETY: row-major n×n buffers of the lengths gemm reads and writes.
            unsafe {
                gemm::gemm(
                    n,
                    n,
                    n,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    n as isize,
                    b.as_ptr(),
                    1,
                    n as isize,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    par,
                );
            }
            t.elapsed().as_secs_f64()
        })
        .skip(1)
        .collect();
    times.sort_by(f64::total_cmp);
    2.0 * (n as f64).powi(3) / times[2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n = args
        .next()
        .map_or(2048, |s| s.parse().expect("n: an integer"));
    let threads = args
        .next()
        .map_or(1, |s| s.parse().expect("threads: an integer"));
    let peak = fma_peak();
    let rate = gemm_rate(n, threads);
    println!("FMA peak, one core: {:.1} GFLOP/s", peak / 1e9);
    println!(
        "gemm f32 {n}³, {threads} thread(s): {:.1} GFLOP/s ({:.0}% of {threads} × the FMA peak)",
        rate / 1e9,
        100.0 * rate / (peak * threads as f64)
    );
}
