//! Σ x² on flex: the lane-wise dot product of a gradient with itself, in chunks whose sums
//! are added in order (the same total on any number of threads).

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::SumSquaresOps;
use crate::simd::{dot_lanes, multiversion};

/// Elements per parallel task.
const CHUNK: usize = 1 << 15;

impl SumSquaresOps for Flex {
    fn sum_squares(x: FlexTensor) -> FlexTensor {
        crate::kernels::entries::enter("sum_squares");
        assert_eq!(
            x.dtype(),
            DType::F32,
            "sum of squares: f32 only, got {:?}",
            x.dtype()
        );
        let x = if x.is_contiguous() {
            x
        } else {
            x.to_contiguous()
        };
        let values = x.as_slice::<f32>().expect("contiguous f32");
        let parts: Vec<f32> = values
            .par_chunks(CHUNK)
            .map(|c| {
                let mut s = 0.0;
                squares(c, &mut s);
                s
            })
            .collect();
        FlexTensor::from_data(TensorData::new(vec![parts.iter().sum::<f32>()], [1]))
    }
}

multiversion! {
    fn squares(x: &[f32], total: &mut f32) {
        *total = dot_lanes(x, x);
    }
}
