//! Integer index tensors on flex read as `usize`s. flex tensors live in host memory, so reading
//! them inside a backend operation copies nothing back from a device. Shared by the fused
//! cross-entropy (class targets), the slot kernels (rows) and the routing loops (experts); and
//! indices the loops make, written in the integer type of the ones they were made from.

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape, TensorData};

/// `t`'s values in logical order, each checked to lie in `0..bound` (a panic names `what`).
pub fn indices_below(t: &FlexTensor, bound: usize, what: &str) -> Vec<usize> {
    let t = t.to_contiguous();
    let index = |i: i64| match usize::try_from(i) {
        Ok(i) if i < bound => i,
        _ => panic!("{what} {i} outside 0..{bound}"),
    };
    match t.dtype() {
        DType::I64 => values::<i64>(&t).map(index).collect(),
        DType::I32 => values::<i32>(&t).map(|i| index(i.into())).collect(),
        DType::U32 => values::<u32>(&t).map(|i| index(i.into())).collect(),
        other => panic!("{what}: integer indices expected, got {other:?}"),
    }
}

fn values<E: burn::tensor::Element + bytemuck::Pod>(
    t: &FlexTensor,
) -> impl Iterator<Item = E> + '_ {
    t.as_slice::<E>()
        .expect("contiguous integers")
        .iter()
        .copied()
}

/// `values` as an integer tensor of `shape` in `dtype` (that of the indices they came from, so
/// they mix with them without a cast).
pub fn indices_as(values: &[usize], shape: Shape, dtype: DType) -> FlexTensor {
    let data = match dtype {
        DType::I64 => TensorData::new(values.iter().map(|&i| i as i64).collect(), shape),
        DType::I32 => TensorData::new(values.iter().map(|&i| i as i32).collect(), shape),
        DType::U32 => TensorData::new(values.iter().map(|&i| i as u32).collect(), shape),
        other => panic!("integer indices expected, got {other:?}"),
    };
    FlexTensor::from_data(data)
}
