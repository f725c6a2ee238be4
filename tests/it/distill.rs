//! Distillation (`[distill]`): the KL term against a host computation, a student driven
//! towards its teacher at w = 1, the plain run reproduced exactly at w = 0, and bad teachers
//! refused before anything is written.

use crate::common;

use std::path::Path;

use burn::prelude::*;
use common::{DENSE, MOE, config, flex_options, tiny_spec, to_vec};
use moe_lab::train::distill::{DistillTarget, kl_to_teacher};
use moe_lab::train::train;

fn logits(seed: u64, device: &Device) -> Tensor<3> {
    let v: Vec<f32> = (0..2 * 3 * 256)
        .map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f32 / 1000.0 - 0.5) * 6.0)
        .collect();
    Tensor::from_data(TensorData::new(v, [2, 3, 256]), device)
}

/// KL(q ‖ p) per row on the host, in f64; with `k > 0`, over k + 1 outcomes: the teacher's
/// top k bytes and the rest as one (the tail bucket).
fn host_kl(student: &[f32], teacher: &[f32], temp: f64, k: usize) -> f64 {
    let rows = student.len() / 256;
    let mut total = 0.0;
    for r in 0..rows {
        let probs = |x: &[f32]| -> Vec<f64> {
            let x: Vec<f64> = x.iter().map(|v| *v as f64 / temp).collect();
            let m = x.iter().cloned().fold(f64::MIN, f64::max);
            let z: f64 = x.iter().map(|v| (v - m).exp()).sum();
            x.iter().map(|v| (v - m).exp() / z).collect()
        };
        let (p, q) = (
            probs(&student[r * 256..][..256]),
            probs(&teacher[r * 256..][..256]),
        );
        let mut order: Vec<usize> = (0..256).collect();
        order.sort_by(|a, b| q[*b].total_cmp(&q[*a]));
        let kept = if k == 0 { 256 } else { k };
        let (top, rest) = order.split_at(kept);
        total += top.iter().map(|&i| q[i] * (q[i] / p[i]).ln()).sum::<f64>();
        if !rest.is_empty() {
            let q_tail: f64 = rest.iter().map(|&i| q[i]).sum();
            let p_tail: f64 = rest.iter().map(|&i| p[i]).sum();
            total += q_tail * (q_tail / p_tail).ln();
        }
    }
    total / rows as f64
}

#[test]
fn kl_to_teacher_matches_the_host_formula() {
    let device = crate::common::flex();
    let (student, teacher) = (logits(1, &device), logits(2, &device));
    let (s, t) = (to_vec(student.clone()), to_vec(teacher.clone()));
    for (temp, k) in [(1.0, 0), (2.0, 0), (1.0, 5), (0.5, 40)] {
        let target = DistillTarget {
            logits: teacher.clone(),
            weight: 1.0,
            temperature: temp,
            top_k: k,
        };
        let got = to_vec(kl_to_teacher(student.clone(), &target))[0] as f64;
        let want = host_kl(&s, &t, temp, k);
        assert!(
            (got - want).abs() < 1e-4 * want.abs().max(1.0),
            "T {temp} k {k}: {got} vs {want}"
        );
        assert!(want > 0.01, "the example must not be trivial: {want}");
    }
    // A model's KL to itself is 0.
    let target = DistillTarget {
        logits: student.clone(),
        weight: 1.0,
        temperature: 1.0,
        top_k: 0,
    };
    assert!(to_vec(kl_to_teacher(student, &target))[0].abs() < 1e-5);
}

/// The top-k KL's minimiser keeps the teacher's tail mass: free student logits driven down the
/// KL's gradient (k = 5 of 256) end with the teacher's mass outside its top 5 and on each of
/// the top 5. (The renormalised top-k KL, without the tail bucket, is minimised by a student
/// with no mass outside the top k: there this test's tail ends far below the teacher's.)
#[test]
fn top_k_distillation_keeps_the_teachers_tail_mass() {
    let device = crate::common::flex().autodiff();
    let teacher = logits(2, &device).mul_scalar(1.5);
    let (k, shape) = (5, [2, 3, 256]);
    let target = DistillTarget {
        logits: teacher.clone(),
        weight: 1.0,
        temperature: 1.0,
        top_k: k,
    };
    let mut s = vec![0f32; 2 * 3 * 256];
    for _ in 0..400 {
        let x = Tensor::<3>::from_data(TensorData::new(s.clone(), shape), &device).require_grad();
        let grads = kl_to_teacher(x.clone(), &target).backward();
        let g = to_vec(x.grad(&grads).unwrap());
        // × 6: the mean over the 6 positions scales each row's gradient by 1/6.
        s.iter_mut().zip(&g).for_each(|(v, g)| *v -= 6.0 * 2.0 * g);
    }
    let softmax = |x: &[f32]| -> Vec<f64> {
        let m = x.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let z: f64 = x.iter().map(|v| (*v as f64 - m).exp()).sum();
        x.iter().map(|v| (*v as f64 - m).exp() / z).collect()
    };
    let t = to_vec(teacher);
    for r in 0..6 {
        let (p, q) = (softmax(&s[r * 256..][..256]), softmax(&t[r * 256..][..256]));
        let mut order: Vec<usize> = (0..256).collect();
        order.sort_by(|a, b| q[*b].total_cmp(&q[*a]));
        let tail = |x: &[f64]| order[k..].iter().map(|&i| x[i]).sum::<f64>();
        assert!(tail(&q) > 0.3, "the teacher's tail matters: {}", tail(&q));
        assert!(
            (tail(&p) - tail(&q)).abs() < 1e-3,
            "row {r}: student tail {} vs teacher {}",
            tail(&p),
            tail(&q)
        );
        for &i in &order[..k] {
            assert!(
                (p[i] - q[i]).abs() < 1e-3,
                "row {r} byte {i}: {} vs {}",
                p[i],
                q[i]
            );
        }
    }
}

/// A teacher: a tiny dense run trained for 60 steps, with its final model.
fn teacher(dir: &Path) -> std::path::PathBuf {
    let text = tiny_spec("teacher", DENSE, "").replace("steps = 20", "steps = 60");
    train(&config(&text), flex_options(dir, false, None)).unwrap();
    dir.to_path_buf()
}

fn distilled(name: &str, ffn: &str, teacher: &Path, weight: f64) -> String {
    let extra = format!(
        "\n[distill]\nteacher = \"{}\"\nweight = {weight}\n",
        teacher.display()
    );
    tiny_spec(name, ffn, &extra).replace("steps = 20", "steps = 40")
}

fn losses(dir: &Path) -> Vec<f64> {
    common::losses(dir)
}

#[test]
fn weight_one_drives_the_student_to_its_teacher_and_weight_zero_is_the_plain_run() {
    let tmp = tempfile::tempdir().unwrap();
    let t = teacher(&tmp.path().join("teacher"));
    let run = |name: &str, text: &str| {
        let dir = tmp.path().join(name);
        let s = train(&config(text), flex_options(&dir, false, None)).unwrap();
        (dir, s)
    };
    let (plain, _) = run(
        "plain",
        &tiny_spec("s", MOE, "").replace("steps = 20", "steps = 40"),
    );
    let (w0, s0) = run("w0", &distilled("s", MOE, &t, 0.0));
    let (_, s1) = run("w1", &distilled("s", MOE, &t, 1.0));
    // w = 0: the teacher is loaded and its KL logged, but the student learns exactly as
    // without it.
    assert_eq!(losses(&w0), losses(&plain));
    let (d0, d1) = (s0.distill.unwrap(), s1.distill.unwrap());
    // w = 1, T = 1: the KL to the teacher falls far, and far below the plain run's.
    let (start, end) = (d1.initial_kl.unwrap(), d1.final_kl.unwrap());
    assert!(end < 0.5 * start, "KL {start} → {end}");
    assert!(
        end < 0.7 * d0.final_kl.unwrap(),
        "w1 {end} vs w0 {:?}",
        d0.final_kl
    );
    // The teacher's forward FLOPs are counted, and not charged by default.
    assert!(d1.teacher_forward_flops > 0.0 && !d1.teacher_flops_charged);
}

/// `lab train` on `text` (written to a file in `dir`): exit code and stderr.
fn lab_train(dir: &Path, text: &str) -> (i32, String) {
    let spec = dir.join("student.toml");
    std::fs::write(&spec, text).unwrap();
    let out = common::lab_train_flex(&spec)
        .arg("--out")
        .arg(dir.join("results"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn bad_teachers_and_distill_fields_exit_2_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = teacher(&tmp.path().join("teacher"));
    let empty = tmp.path().join("no-model");
    std::fs::create_dir(&empty).unwrap();
    let short = tmp.path().join("short");
    let text = tiny_spec("short", DENSE, "").replace("seq_len = 16", "seq_len = 8");
    train(&config(&text), flex_options(&short, false, None)).unwrap();
    let cases = [
        (
            distilled("a", MOE, &empty, 0.5),
            "distill.teacher",
            "no final model",
        ),
        (
            distilled("b", MOE, &short, 0.5),
            "distill.teacher",
            "seq_len 8",
        ),
        (distilled("c", MOE, &t, 1.5), "distill.weight", "[0, 1]"),
        (
            distilled("d", MOE, &t, 0.5).replace("weight = 0.5", "weight = 0.5\ntemperature = 0"),
            "distill.temperature",
            "positive",
        ),
        (
            distilled("e", MOE, &t, 0.5).replace("weight = 0.5", "weight = 0.5\ntop_k = 300"),
            "distill.top_k",
            "256",
        ),
    ];
    for (text, field, why) in cases {
        let (code, err) = lab_train(tmp.path(), &text);
        assert_eq!(code, 2, "{field}: {err}");
        assert!(err.contains(field) && err.contains(why), "{field}: {err}");
        assert!(
            !tmp.path().join("results").exists(),
            "{field}: wrote results"
        );
    }
}
