//! The mixture that minimises a target: projected gradient descent on the simplex with a floor
//! on every weight (`r_j ≥ floor`, `Σ r_j = 1`), from the uniform mixture and from each corner,
//! the best end kept. A sum of mixing laws is convex in `r`, so the starts agree there; they
//! guard a target that is not.

/// The point of `{r : r_j ≥ floor, Σ r_j = 1}` nearest to `y` (Euclidean): the simplex
/// projection of Held, Wolfe and Crowder (sort, then threshold) on `y − floor`.
pub fn project(y: &[f64], floor: f64) -> Vec<f64> {
    let k = y.len();
    let total = 1.0 - floor * k as f64;
    let shifted: Vec<f64> = y.iter().map(|v| v - floor).collect();
    let mut sorted = shifted.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let (mut sum, mut theta) = (0.0, 0.0);
    for (i, v) in sorted.iter().enumerate() {
        sum += v;
        let t = (sum - total) / (i + 1) as f64;
        if v - t > 0.0 {
            theta = t;
        }
    }
    shifted
        .iter()
        .map(|v| floor + (v - theta).max(0.0))
        .collect()
}

/// The minimiser of `f` over k weights with `floor` each, and `f` there.
pub fn minimize(f: impl Fn(&[f64]) -> f64, k: usize, floor: f64) -> (Vec<f64>, f64) {
    let uniform = vec![1.0 / k as f64; k];
    let corners = (0..k).map(|j| {
        let mut r = vec![floor; k];
        r[j] = 1.0 - floor * (k - 1) as f64;
        r
    });
    let ends = [uniform]
        .into_iter()
        .chain(corners)
        .map(|r| descend(&f, project(&r, floor), floor));
    ends.min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("k ≥ 1 starts")
}

/// Projected gradient descent from `r` with a backtracking step; central differences for the
/// gradient.
fn descend(f: &impl Fn(&[f64]) -> f64, mut r: Vec<f64>, floor: f64) -> (Vec<f64>, f64) {
    let mut value = f(&r);
    let mut step = 0.1;
    for _ in 0..5000 {
        let g = gradient(f, &r);
        let mut moved = false;
        while step > 1e-12 {
            let trial: Vec<f64> = r.iter().zip(&g).map(|(x, d)| x - step * d).collect();
            let next = project(&trial, floor);
            let next_value = f(&next);
            if next_value < value {
                let change: f64 = next.iter().zip(&r).map(|(a, b)| (a - b).abs()).sum();
                (r, value, moved) = (next, next_value, change > 1e-13);
                step *= 2.0;
                break;
            }
            step /= 2.0;
        }
        if !moved {
            break;
        }
    }
    (r, value)
}

fn gradient(f: &impl Fn(&[f64]) -> f64, r: &[f64]) -> Vec<f64> {
    let h = 1e-6;
    (0..r.len())
        .map(|j| {
            let mut up = r.to_vec();
            let mut down = r.to_vec();
            up[j] += h;
            down[j] -= h;
            (f(&up) - f(&down)) / (2.0 * h)
        })
        .collect()
}
