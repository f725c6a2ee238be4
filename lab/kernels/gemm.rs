//! Products on flex written by gemm (the crate flex itself calls, same version and features)
//! straight into an output the lab allocates: operands read in place through their strides,
//! outputs allocated with their element's alignment.
//!
//! Why not flex's own matmul: it allocates every output through `FlexTensor::empty`, which
//! zero-fills a byte buffer and then copies it into a fresh aligned one (`Bytes::from_bytes_vec`):
//! two passes over each output before the product (docs/performance.md, "What the figures depend on"). Used by the matmul ([`super::matmul`]) and the grouped matmul
//! ([`super::grouped_matmul`]); the fused kernels ([`super::fused`]) allocate their
//! outputs here for the same reason. An output a kernel writes whole is not zero-filled either
//! ([`written`]); only one a kernel accumulates into is ([`zeros`]).

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{Bytes, Element, Shape};

/// The element types gemm multiplies here.
pub trait Real: Element + bytemuck::Pod + Default + Send + Sync + 'static {
    const ZERO: Self;
    const ONE: Self;
    const NAN: Self;
}
impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NAN: Self = f32::NAN;
}
impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NAN: Self = f64::NAN;
}

/// `t` as a contiguous f32 tensor, so a kernel reads it as a plain slice ([`f32_slice`]):
/// itself when it already is. f32 only (the lab trains in f32; the tensor-level functions
/// send other dtypes to their composed path); `what` names the kernel in the panic.
pub fn contiguous_f32(t: FlexTensor, what: &str) -> FlexTensor {
    assert_eq!(
        t.dtype(),
        burn::tensor::DType::F32,
        "{what}: f32 only, got {:?}",
        t.dtype()
    );
    if t.is_contiguous() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The elements of a tensor from [`contiguous_f32`].
pub fn f32_slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous f32")
}

/// A tensor read in place: its storage from its first element, and its strides (elements).
pub struct Operand<'a, T> {
    data: &'a [T],
    pub strides: Vec<usize>,
}

impl<'a, T: Real> Operand<'a, T> {
    /// `t`'s elements as shape and strides reach them, checked to lie in its storage.
    pub fn of(t: &'a FlexTensor, what: &str) -> Self {
        let (shape, layout) = (t.layout().shape(), t.layout());
        let strides: Vec<usize> = layout
            .strides()
            .iter()
            .map(|&s| usize::try_from(s).unwrap_or_else(|_| panic!("{what}: a negative stride")))
            .collect();
        let data = &t.storage::<T>()[layout.start_offset()..];
        let last: usize = (0..shape.num_dims())
            .map(|i| shape[i].saturating_sub(1) * strides[i])
            .sum();
        assert!(
            shape.num_elements() == 0 || last < data.len(),
            "{what}: its strides reach past its storage"
        );
        Operand { data, strides }
    }

    /// Pointer to the element `offset` elements from the first (within the storage when the
    /// offset is one that shape and strides reach).
    pub fn at(&self, offset: usize) -> *const T {
        self.data.as_ptr().wrapping_add(offset)
    }
}

/// `out (m × n, row-major) = lhs (m × k) · rhs (k × n)`, operands given as (pointer, column
/// stride, row stride) in elements. Writes every element of `out` and reads none (gemm with
/// `read_dst` false stores its products, or zeros when k is 0, without loading the
/// destination), so `out` may be uninitialised.
///
/// # Safety
/// `lhs` and `rhs` must address m × k and k × n elements through their strides.
pub unsafe fn gemm_into<T: Real>(
    out: &mut [MaybeUninit<T>],
    (m, n, k): (usize, usize, usize),
    (lhs, lhs_cs, lhs_rs): (*const T, usize, usize),
    (rhs, rhs_cs, rhs_rs): (*const T, usize, usize),
    parallelism: gemm::Parallelism,
) {
    assert_eq!(out.len(), m * n, "gemm: output slice size");
    if m * n == 0 {
        return;
    }
    // SAFETY: `out` holds m × n elements at row stride n, written through a raw pointer (never
    // read: `read_dst` is false); the caller vouches for the operands.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr().cast::<T>(),
            1,
            n as isize,
            false,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            T::ZERO,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Multiply-adds from which one product is split over rayon's threads (flex's own threshold,
/// so a product runs as flex would run it).
const PARALLEL_WORK: usize = 192 * 192 * 192;

/// gemm's parallelism for one m × k · k × n product, as flex chooses it.
pub fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_WORK {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// Whether [`written`] fills its buffer with NaN before the kernel writes it (tests: an
/// element a kernel fails to write then shows as NaN instead of a stale value).
static POISON: AtomicBool = AtomicBool::new(false);

/// Makes every later [`written`] output start as NaN (the tests switch it on).
pub fn poison_outputs() {
    POISON.store(true, Ordering::Relaxed);
}

/// A contiguous tensor of `T` whose elements `write` sets, without zero-filling them first (a
/// memset of every output is a pass the kernel's own write makes redundant; docs/performance.md, "What the figures depend on").
///
/// # Safety
/// `write` must initialise every element of the slice it is given.
pub unsafe fn written<T: Real>(
    shape: Shape,
    write: impl FnOnce(&mut [MaybeUninit<T>]),
) -> FlexTensor {
    let n = shape.num_elements();
    let mut v: Vec<T> = Vec::with_capacity(n);
    let out = &mut v.spare_capacity_mut()[..n];
    if POISON.load(Ordering::Relaxed) {
        out.fill(MaybeUninit::new(T::NAN));
    }
    write(out);
    // SAFETY: the caller's `write` initialised all n elements.
    unsafe { v.set_len(n) };
    FlexTensor::new(Bytes::from_elems(v), Layout::contiguous(shape), T::dtype())
}

/// A zero-filled contiguous tensor of `T`, its buffer allocated with `T`'s alignment (not
/// `FlexTensor::empty`, which zero-fills bytes and then copies them to an aligned buffer).
pub fn zeros<T: Real>(shape: Shape) -> FlexTensor {
    let n = shape.num_elements();
    FlexTensor::new(
        Bytes::from_elems(vec![T::ZERO; n]),
        Layout::contiguous(shape),
        T::dtype(),
    )
}
