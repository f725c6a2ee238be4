//! `lab bench` puts its tokens/s beside eager PyTorch's only for rows of the same arm, width and
//! shape (layers, sequence length, batch), with their ratio.

use moe_lab::bench::beside_pytorch;

const HEAD: &str = "what,d_model,median_ms,p25_ms,p75_ms,first_ms,tokens_per_s,gflops,mfu,ratio_vs_dense,dropped,layers,seq_len,batch,threads\n";

#[test]
fn only_rows_of_the_same_shape_are_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let (lab, torch) = (tmp.path().join("lab.csv"), tmp.path().join("torch.csv"));
    std::fs::write(
        &lab,
        format!("{HEAD}step dense,64,1,1,1,1,30000,1,1,1,,2,128,16,2\nstep dense,128,1,1,1,1,15000,1,1,1,,2,128,16,2\n"),
    )
    .unwrap();
    // d 64 at the same shape; d 128 at another batch: not comparable.
    std::fs::write(
        &torch,
        format!("{HEAD}step dense,64,1,1,1,1,100000,1,1,1,,2,128,16,2\nstep dense,128,1,1,1,1,40000,1,1,1,,2,128,4,2\n"),
    )
    .unwrap();
    let text = beside_pytorch(&lab, &torch).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("step")).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(
        rows[0].contains("30000") && rows[0].contains("100000") && rows[0].ends_with("0.30"),
        "{text}"
    );
    let missing = beside_pytorch(&lab, &tmp.path().join("none.csv")).unwrap();
    assert!(missing.contains("bench/pytorch_moe.py"), "{missing}");
}
