//! No host read-back inside a training step. The step's code (model forward, losses, clipping)
//! must not call what copies device data to the host or sorts on the host: a source scan (of
//! `lab/model/` and the kernels it calls, `lab/kernels/`) that
//! fails on any such call outside the one documented read of the step's four logged scalars
//! in `train_step` (`lab/train/step.rs`).
//!
//! The grouped matmul (`lab/kernels/grouped_matmul/`) reads its per-expert row counts
//! inside the kernel, from the memory the tensors live in: on flex that memory is the host's,
//! so nothing is copied or synchronised; its cubecl kernels read them from device memory. It
//! uses none of the calls below.

use std::path::Path;

/// Calls that read tensor data back to the host (or, for sort/argsort/nonzero/one_hot, do so
/// inside burn).
const FORBIDDEN: &[&str] = &[
    ".into_data(",
    ".to_data(",
    ".into_scalar",
    ".try_into_scalar",
    ".sort(",
    ".sort_with_indices(",
    ".argsort(",
    ".nonzero(",
    ".one_hot(",
    ".to_vec(",
];

fn scan(path: &Path, allowed: &[&str], hits: &mut Vec<String>) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            scan(&e.unwrap().path(), allowed, hits);
        }
        return;
    }
    let text = std::fs::read_to_string(path).unwrap();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap();
        for f in FORBIDDEN {
            if code.contains(f) && !allowed.iter().any(|a| line.contains(a)) {
                hits.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
            }
        }
    }
}

#[test]
fn model_and_step_code_never_read_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab");
    let mut hits = Vec::new();
    scan(&root.join("model"), &[], &mut hits);
    scan(&root.join("kernels"), &[], &mut hits);
    assert!(
        hits.is_empty(),
        "host read-back in step code:\n{}",
        hits.join("\n")
    );
}

/// step.rs reads back in one place (`ReadBack::read`: one `.into_data()`, then the host
/// data's `.try_to_vec`), and `train_step` calls it once.
#[test]
fn train_step_reads_back_once() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/train/step.rs"))
            .unwrap();
    let reads: usize = FORBIDDEN.iter().map(|f| text.matches(f).count()).sum();
    assert_eq!(
        text.matches(".into_data(").count(),
        1,
        "one read-back in step.rs"
    );
    assert_eq!(reads, 1, "nothing else reads back in step.rs");
    let start = text.find("pub fn train_step(").expect("train_step exists");
    let body = &text[start..start + text[start..].find("\n}\n").unwrap()];
    assert_eq!(
        body.matches(".read()").count(),
        1,
        "train_step reads back once"
    );
}
