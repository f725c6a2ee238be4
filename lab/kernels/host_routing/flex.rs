//! The two loops on flex's host-memory tensors.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape, TensorData};

use super::HostRoutingOps;
use crate::kernels::flex_ints::{indices_as, indices_below};

impl HostRoutingOps for Flex {
    fn top_k_indices(x: FlexTensor, k: usize) -> FlexTensor {
        crate::kernels::entries::enter("top_k_indices");
        assert_eq!(
            x.dtype(),
            DType::F32,
            "top-k: f32 scores, got {:?}",
            x.dtype()
        );
        let shape = x.layout().shape();
        assert_eq!(shape.num_dims(), 2, "top-k: [N, K] scores, got {shape:?}");
        let (n, experts) = (shape[0], shape[1]);
        assert!(k <= experts, "top-k: k = {k} of {experts} experts");
        let x = x.to_contiguous();
        let values = x.as_slice::<f32>().expect("contiguous f32");
        let mut chosen = vec![0i64; n * k];
        for (row, best) in values
            .chunks_exact(experts)
            .zip(chosen.chunks_exact_mut(k.max(1)))
        {
            // Insertion into the row's best so far (largest first; an equal value stays after).
            let mut filled = 0;
            for (e, v) in row.iter().enumerate() {
                let mut at = filled;
                while at > 0 && row[best[at - 1] as usize].total_cmp(v).is_lt() {
                    at -= 1;
                }
                if at < k {
                    best.copy_within(at..k - 1, at + 1);
                    best[at] = e as i64;
                    filled = (filled + 1).min(k);
                }
            }
        }
        FlexTensor::from_data(TensorData::new(chosen, [n, k]))
    }

    fn grouped_plan(
        slot_expert: FlexTensor,
        experts: usize,
        capacity: usize,
    ) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
        crate::kernels::entries::enter("grouped_plan");
        let ids = indices_below(&slot_expert, experts, "dispatch: expert id");
        let s = ids.len();
        let mut load = vec![0usize; experts];
        let position: Vec<usize> = (ids.iter())
            .map(|&e| {
                load[e] += 1;
                load[e] - 1
            })
            .collect();
        let sizes: Vec<usize> = load.iter().map(|&l| l.min(capacity)).collect();
        let offsets: Vec<usize> = (sizes.iter())
            .scan(0, |before, &size| {
                *before += size;
                Some(*before - size)
            })
            .collect();
        // Kept slots at their expert's offset plus their position; dropped ones after all
        // kept rows, in slot order.
        let mut next_dropped: usize = sizes.iter().sum();
        let slot_row: Vec<usize> = (ids.iter().zip(&position))
            .map(|(&e, &p)| match p < capacity {
                true => offsets[e] + p,
                false => {
                    next_dropped += 1;
                    next_dropped - 1
                }
            })
            .collect();
        let kept: Vec<f32> = (position.iter())
            .map(|&p| f32::from(u8::from(p < capacity)))
            .collect();
        let floats = |v: &[usize]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        (
            FlexTensor::from_data(TensorData::new(floats(&load), [experts])),
            indices_as(&slot_row, Shape::new([s]), slot_expert.dtype()),
            FlexTensor::from_data(TensorData::new(floats(&sizes), [experts])),
            FlexTensor::from_data(TensorData::new(kept, [s, 1])),
        )
    }
}
