//! The grouped matmul on flex: each group through flex's own matmul, read in place (a
//! narrowed view of the rows, one expert's slice of the weights). The sizes are read from
//! host memory, which on flex is where the tensor lives: no read-back.

use burn::backend::Flex;
use burn::backend::flex::{FlexTensor, ops::cat::cat, ops::matmul::matmul as flex_matmul};
use burn::tensor::{DType, Shape};

use super::GroupedMatmulOps;

impl GroupedMatmulOps for Flex {
    fn grouped_matmul(x: FlexTensor, w: FlexTensor, sizes: FlexTensor) -> FlexTensor {
        let sizes = group_sizes(&sizes);
        let x = contiguous(x);
        let [r, a] = dims2(&x);
        let ws = w.layout().shape();
        assert!(
            ws.num_dims() == 3 && ws[1] == a,
            "grouped_matmul: x is [R, {a}] but w is {ws:?}"
        );
        let (k, b) = (ws[0], ws[2]);
        assert_eq!(
            sizes.len(),
            k,
            "grouped_matmul: {} sizes for {k} experts",
            sizes.len()
        );
        let mut parts = Vec::with_capacity(k + 1);
        let mut offset = 0;
        for (e, &c) in sizes.iter().enumerate() {
            if c == 0 {
                continue;
            }
            assert!(offset + c <= r, "grouped_matmul: sizes sum past {r} rows");
            let xe = x.narrow(0, offset, c).reshape(Shape::from(vec![1, c, a]));
            let ye = flex_matmul(xe, w.narrow(0, e, 1));
            parts.push(contiguous(ye).reshape(Shape::from(vec![c, b])));
            offset += c;
        }
        if offset < r {
            parts.push(FlexTensor::zeros(
                Shape::from(vec![r - offset, b]),
                x.dtype(),
            ));
        }
        cat(parts, 0)
    }

    fn grouped_weight_grad(x: FlexTensor, dy: FlexTensor, sizes: FlexTensor) -> FlexTensor {
        weight_grad(x, dy, &group_sizes(&sizes))
    }
}

/// `dw[e] = x_eᵀ · dy_e` for every expert (zero for an expert without rows) → `[K, a, b]`.
fn weight_grad(x: FlexTensor, dy: FlexTensor, sizes: &[usize]) -> FlexTensor {
    let (x, dy) = (contiguous(x), contiguous(dy));
    let [_, a] = dims2(&x);
    let [_, b] = dims2(&dy);
    let mut offset = 0;
    let parts = sizes
        .iter()
        .map(|&c| {
            let part = if c == 0 {
                FlexTensor::zeros(Shape::from(vec![1, a, b]), x.dtype())
            } else {
                let xe = x
                    .narrow(0, offset, c)
                    .reshape(Shape::from(vec![1, c, a]))
                    .transpose(1, 2);
                let ge = dy.narrow(0, offset, c).reshape(Shape::from(vec![1, c, b]));
                contiguous(flex_matmul(xe, ge))
            };
            offset += c;
            part
        })
        .collect();
    cat(parts, 0)
}

/// The `[K]` row counts, read where they live (f32 or f64 counts of whole rows).
fn group_sizes(sizes: &FlexTensor) -> Vec<usize> {
    let sizes = sizes.to_contiguous();
    let as_count = |v: f64| {
        assert!(
            v >= 0.0 && v.fract() == 0.0,
            "grouped_matmul: size {v} is not a row count"
        );
        v as usize
    };
    match sizes.dtype() {
        DType::F32 => sizes
            .as_slice::<f32>()
            .unwrap()
            .iter()
            .map(|&v| as_count(v as f64))
            .collect(),
        DType::F64 => sizes
            .as_slice::<f64>()
            .unwrap()
            .iter()
            .map(|&v| as_count(v))
            .collect(),
        dtype => panic!("grouped_matmul: sizes must be f32 or f64, got {dtype:?}"),
    }
}

fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() {
        t
    } else {
        t.to_contiguous()
    }
}

fn dims2(t: &FlexTensor) -> [usize; 2] {
    let d = t.layout().shape();
    assert_eq!(
        d.num_dims(),
        2,
        "grouped_matmul: expected a matrix, got {d:?}"
    );
    [d[0], d[1]]
}
