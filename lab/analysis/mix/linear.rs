//! Least squares for the mixture fits: the normal equations solved by Gaussian elimination with
//! partial pivoting (a handful of unknowns: one per domain and an intercept).

/// `x` minimising `Σ_i (a_i · x − y_i)²`, or `None` when the columns are dependent.
pub fn least_squares(rows: &[Vec<f64>], y: &[f64]) -> Option<Vec<f64>> {
    let p = rows.first()?.len();
    let mut m = vec![vec![0.0; p]; p];
    let mut v = vec![0.0; p];
    for (row, yi) in rows.iter().zip(y) {
        for j in 0..p {
            v[j] += row[j] * yi;
            for k in 0..p {
                m[j][k] += row[j] * row[k];
            }
        }
    }
    solve(m, v)
}

/// `x` with `m · x = v`, or `None` when `m` is singular (relative to its largest entry).
pub fn solve(mut m: Vec<Vec<f64>>, mut v: Vec<f64>) -> Option<Vec<f64>> {
    let n = v.len();
    let scale = m
        .iter()
        .flatten()
        .fold(0.0f64, |a, x| a.max(x.abs()))
        .max(1e-300);
    for col in 0..n {
        let pivot = (col..n).max_by(|a, b| m[*a][col].abs().total_cmp(&m[*b][col].abs()))?;
        if m[pivot][col].abs() < 1e-12 * scale {
            return None;
        }
        m.swap(col, pivot);
        v.swap(col, pivot);
        let (top, rest) = m.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (i, row) in rest.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            v[col + 1 + i] -= f * v[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let rest: f64 = (row + 1..n).map(|k| m[row][k] * x[k]).sum();
        x[row] = (v[row] - rest) / m[row][row];
    }
    Some(x)
}
