//! report.html: written by every sweep, self-contained, and checked in a real headless
//! Chromium (DevTools protocol, `common::browser`): it loads from file:// with no console error
//! and no request, every figure draws its traces, a legend click hides an arm, the run browser
//! lists, filters and overlays runs, and the verdict lines are those of report.md and
//! analysis.json. Without Chromium the browser test prints SKIPPED, unless
//! MOE_LAB_REQUIRE_CHROMIUM=1 (CI), where it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::browser::{self, Browser};
use crate::common::lab_in as lab;

/// The toy sweep, run into a temporary directory (kept for the test's life).
fn toy_sweep() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    // The sweep tests' toy with two seeds, so paired comparisons exist: six short cells.
    let spec = crate::common::toy_experiment(0.05).replace("seeds = 1", "seeds = 2");
    assert!(spec.contains("seeds = 2"));
    std::fs::write(tmp.path().join("toy.toml"), spec).unwrap();
    let out = crate::common::sweep_in("toy.toml", tmp.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = tmp.path().join("results/toy");
    (tmp, results)
}

fn run_names(results: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(results)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("summary.json").exists())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

fn verdicts_of_analysis(results: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(results.join("analysis.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(v["verdicts"].clone()).expect("analysis.json has verdicts")
}

#[test]
fn the_page_is_self_contained_and_states_the_reports_verdicts() {
    let (_tmp, results) = toy_sweep();
    let html = std::fs::read_to_string(results.join("report.html")).unwrap();
    let report = std::fs::read_to_string(results.join("report.md")).unwrap();
    let verdicts = verdicts_of_analysis(&results);
    assert!(!verdicts.is_empty());
    for v in &verdicts {
        assert!(report.contains(v.as_str()), "report.md lacks verdict {v}");
    }
    // No element loads anything: no src= or stylesheet link anywhere in the page.
    assert!(!html.contains(" src="), "the page loads a file");
    assert!(!html.contains("rel=\"stylesheet\""));
    assert!(html.contains("Content-Security-Policy"));
    // The vendored plotly.js cannot end its <script> early.
    assert!(!moe_lab_plotly().to_lowercase().contains("</script"));
    // `lab report` rewrites both reports from results/ alone.
    std::fs::remove_file(results.join("report.html")).unwrap();
    let cwd = results.parent().unwrap().parent().unwrap();
    let out = lab(&["report", "toy.toml"], cwd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(results.join("report.html")).unwrap(),
        html
    );
}

fn moe_lab_plotly() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/page/vendor");
    let file = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".min.js"))
        .unwrap();
    std::fs::read_to_string(file.path()).unwrap()
}

/// Chromium, or None after printing SKIPPED (a failure where CI requires it).
fn chromium() -> Option<PathBuf> {
    let found = browser::find();
    if found.is_none() {
        assert!(
            std::env::var_os("MOE_LAB_REQUIRE_CHROMIUM").is_none(),
            "MOE_LAB_REQUIRE_CHROMIUM is set but no chromium was found"
        );
        eprintln!("SKIPPED: no chromium on PATH (set MOE_LAB_CHROMIUM to one)");
    }
    found
}

#[test]
fn the_page_works_in_headless_chromium() {
    let Some(exe) = chromium() else {
        return;
    };
    let (_tmp, results) = toy_sweep();
    let page = std::path::absolute(results.join("report.html")).unwrap();
    let url = format!("file://{}", page.display());
    let mut b = Browser::launch(&exe);
    b.open(&url);
    b.wait_for("document.body.dataset.ready === 'true'");
    figures_render(&mut b, &results);
    legend_click_hides_an_arm(&mut b);
    run_browser_lists_filters_and_overlays(&mut b, &results);
    verdicts_match(&mut b, &results);
    the_first_verdict_is_the_paired_difference(&mut b, &results);
    b.settle(Duration::from_millis(500));
    let requests: Vec<String> = (b.requests().into_iter())
        .filter(|u| *u != url && !u.starts_with("data:") && !u.starts_with("blob:"))
        .collect();
    assert_eq!(requests, Vec::<String>::new(), "the page made requests");
    assert_eq!(b.errors(), Vec::<String>::new(), "console errors");
}

/// Per figure: [stem, width, height, traces in the data, traces drawn].
const FIGURES: &str = r#"[...document.querySelectorAll('.chart')].map(gd => {
    const r = gd.getBoundingClientRect();
    const drawn = gd.querySelectorAll('.cartesianlayer g.trace, .cartesianlayer g.hm').length;
    return [gd.dataset.stem, r.width, r.height, gd.data.length, drawn];
})"#;

fn figures_render(b: &mut Browser, results: &Path) {
    let figures = b.eval(FIGURES);
    let figures = figures.as_array().unwrap();
    let stems: Vec<&str> = figures.iter().map(|f| f[0].as_str().unwrap()).collect();
    // Every static figure has its interactive twin.
    let plots = results
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("plots/toy");
    for png in std::fs::read_dir(plots).unwrap().flatten() {
        let name = png.file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".png") {
            assert!(stems.contains(&stem), "no interactive {stem}: {stems:?}");
        }
    }
    // Nothing keeps router state in this sweep: that figure alone says so instead.
    let empty_expected = ["router_state"];
    for f in figures {
        let stem = f[0].as_str().unwrap();
        assert!(
            f[1].as_f64().unwrap() > 100.0 && f[2].as_f64().unwrap() > 100.0,
            "{f}"
        );
        let (traces, drawn) = (f[3].as_u64().unwrap(), f[4].as_u64().unwrap());
        assert_eq!(traces, drawn, "{stem}: traces in the data vs drawn");
        assert_eq!(
            traces == 0,
            empty_expected.contains(&stem),
            "{stem}: {traces} traces"
        );
    }
    // The training-loss figure draws every run of the size (names from the run folders).
    let names = b.eval("document.getElementById('chart-training_loss').data.map(t => t.name)");
    for run in run_names(results) {
        assert!(
            names.as_array().unwrap().contains(&json!(run)),
            "{run} not in {names}"
        );
    }
}

fn legend_click_hides_an_arm(b: &mut Browser) {
    let gd = "document.getElementById('chart-loss_vs_flops')";
    let drawn = |b: &mut Browser| b.eval(&format!("{gd}.querySelectorAll('g.trace').length"));
    let before = drawn(b).as_u64().unwrap();
    let dense = b.eval(&format!(
        "{gd}.data.filter(t => t.legendgroup === 'dense').length"
    ));
    assert!(dense.as_u64().unwrap() > 0);
    b.eval(&format!(
        "{gd}.querySelectorAll('.legend .traces').forEach(t => {{ \
         if (t.textContent.trim() === 'dense') t.querySelector('.legendtoggle').id = 'toggle-dense'; }})"
    ));
    b.click_selector("#toggle-dense");
    // Plotly waits out its double-click delay (300 ms) before acting on a single click.
    b.settle(Duration::from_millis(800));
    let hidden = b.eval(&format!(
        "{gd}._fullData.filter(t => t.legendgroup === 'dense').every(t => t.visible === 'legendonly')"
    ));
    assert_eq!(
        hidden,
        json!(true),
        "clicking dense in the legend did not hide it"
    );
    let after = drawn(b).as_u64().unwrap();
    assert_eq!(
        after,
        before - dense.as_u64().unwrap(),
        "drawn traces after the click"
    );
}

fn run_browser_lists_filters_and_overlays(b: &mut Browser, results: &Path) {
    let rows = "[...document.querySelectorAll('#run-table tbody tr')].map(r => r.dataset.run)";
    let listed: Vec<String> = serde_json::from_value(b.eval(rows)).unwrap();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        run_names(results),
        "the run browser lists every run"
    );
    b.eval(
        "(() => { const s = document.getElementById('filter-arm'); s.value = 'moe'; \
         s.dispatchEvent(new Event('change')); })()",
    );
    let arms = b.eval(
        "[...document.querySelectorAll('#run-table tbody tr')].map(r => r.children[3].textContent)",
    );
    let arms: Vec<String> = serde_json::from_value(arms).unwrap();
    assert!(
        !arms.is_empty() && arms.iter().all(|a| a == "moe"),
        "{arms:?}"
    );
    let moe: Vec<String> = run_names(results)
        .into_iter()
        .filter(|r| r.contains("-moe-"))
        .collect();
    assert_eq!(arms.len(), moe.len());
    let dense = run_names(results)
        .into_iter()
        .find(|r| r.contains("-dense-"))
        .unwrap();
    b.click_selector(&format!("input[data-run='{}']", moe[0]));
    b.eval(
        "(() => { const s = document.getElementById('filter-arm'); s.value = ''; \
         s.dispatchEvent(new Event('change')); })()",
    );
    b.click_selector(&format!("input[data-run='{dense}']"));
    let curves = b.eval(
        "document.getElementById('run-curves').data.filter(t => t.name.endsWith(' train')).map(t => t.meta)",
    );
    assert_eq!(
        curves,
        json!([moe[0], dense]),
        "two selected runs, two training curves"
    );
    let drawn = b.eval("document.querySelectorAll('#run-curves g.trace').length");
    assert_eq!(
        drawn,
        json!(4),
        "two runs × (training, validation) curves drawn"
    );
    let router = b.eval("document.getElementById('run-router').data.length");
    assert_eq!(router, json!(1), "the MoE run's router heatmap");
    overlay_axis_and_paired_difference(b, &moe[0], &dense);
}

/// The overlay's log axis, and its difference to the paired run: the ticked MoE run's
/// validation curve less its dense twin's (same size and seed) at the same fraction of
/// training, checked against the page's own curves; the dense run, being the baseline, has no
/// pair and no curve.
fn overlay_axis_and_paired_difference(b: &mut Browser, moe: &str, dense: &str) {
    fn set(b: &mut Browser, id: &str, js: &str) {
        b.eval(&format!(
            "(() => {{ const e = document.getElementById('{id}'); {js}; \
             e.dispatchEvent(new Event('change')); }})()"
        ));
    }
    set(b, "curves-scale", "e.value = 'log'");
    let axis = b.eval("document.getElementById('run-curves').layout.yaxis.type");
    assert_eq!(axis, json!("log"));
    set(b, "curves-diff", "e.checked = true");
    let shown = b.eval("document.getElementById('run-curves').data.map(t => [t.name, t.x, t.y])");
    let shown: Vec<(String, Vec<f64>, Vec<f64>)> = serde_json::from_value(shown).unwrap();
    let names: Vec<&str> = shown.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        names,
        [format!("{moe} train"), format!("{moe} val")],
        "only the MoE run is paired"
    );
    fn curve(b: &mut Browser, run: &str) -> (Vec<f64>, Vec<f64>) {
        let v = b.eval(&format!(
            "JSON.parse(document.getElementById('lab-data').textContent).curves['{run}'].val"
        ));
        serde_json::from_value(v).unwrap()
    }
    let ((mx, my), (dx, dy)) = (curve(b, moe), curve(b, dense));
    // At the same fraction of training: the paired curve interpolated at step × its length /
    // this run's length (the arms' lengths differ by a step at matched compute).
    let (end, dend) = (mx[mx.len() - 1], dx[dx.len() - 1]);
    let at = |s: f64| {
        let t = s / end * dend;
        match dx.iter().position(|p| *p >= t) {
            Some(0) => dy[0],
            None => dy[dy.len() - 1],
            Some(j) => dy[j - 1] + (dy[j] - dy[j - 1]) * (t - dx[j - 1]) / (dx[j] - dx[j - 1]),
        }
    };
    let want: Vec<f64> = mx.iter().zip(&my).map(|(s, m)| m - at(*s)).collect();
    assert_eq!(
        *want.last().unwrap(),
        my[my.len() - 1] - dy[dy.len() - 1],
        "final pairs with final"
    );
    let (x, y) = (&shown[1].1, &shown[1].2);
    assert_eq!(x, &mx);
    for (got, want) in y.iter().zip(&want) {
        assert!((got - want).abs() < 1e-9, "{y:?} vs {want:?}");
    }
    let axis = b.eval("document.getElementById('run-curves').layout.yaxis.type");
    assert_eq!(
        axis,
        json!("linear"),
        "a difference is drawn on a linear axis"
    );
    set(b, "curves-diff", "e.checked = false");
}

fn verdicts_match(b: &mut Browser, results: &Path) {
    let shown = b.eval("[...document.querySelectorAll('ul.verdicts li')].map(li => [li.dataset.md, li.textContent])");
    let shown: Vec<(String, String)> = serde_json::from_value(shown).unwrap();
    let expected = verdicts_of_analysis(results);
    let md: Vec<&String> = shown.iter().map(|s| &s.0).collect();
    assert_eq!(md, expected.iter().collect::<Vec<_>>());
    for (line, text) in &shown {
        let plain = line.replace("**", "").replace('`', "");
        assert_eq!(
            text.trim(),
            plain.trim(),
            "the rendered verdict reads as its Markdown"
        );
    }
}

/// The page's first verdict, as the browser shows it, states the moe − dense difference and
/// its 95% interval computed here from the runs' own summaries: the seed pairs' mean
/// difference of final validation loss, ± t(0.975, n − 1) × sd / √n.
fn the_first_verdict_is_the_paired_difference(b: &mut Browser, results: &Path) {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let loss = |name: &str| -> f64 {
        let s = std::fs::read_to_string(results.join(name).join("summary.json")).unwrap();
        let v: Value = serde_json::from_str(&s).unwrap();
        v["final_val_loss"].as_f64().unwrap()
    };
    let d: Vec<f64> = (0..2)
        .map(|s| loss(&format!("xs-moe-s{s}")) - loss(&format!("xs-dense-s{s}")))
        .collect();
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let sd = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let t = StudentsT::new(0.0, 1.0, n - 1.0)
        .unwrap()
        .inverse_cdf(0.975);
    let (lo, hi) = (mean - t * sd / n.sqrt(), mean + t * sd / n.sqrt());
    let first = b.eval("document.querySelector('ul.verdicts li').textContent");
    let first = first.as_str().unwrap();
    let want = format!("moe − dense = {mean:+.4} nats");
    assert!(
        first.contains(&want),
        "{want} not in the page's verdict: {first}"
    );
    let ci = format!("95% CI [{lo:+.4}, {hi:+.4}]");
    assert!(
        first.contains(&ci),
        "{ci} not in the page's verdict: {first}"
    );
}

/// Any page, in the same browser checks: `MOE_LAB_PAGE=results/NAME/report.html cargo test
/// --test it page::a_given_page -- --ignored --nocapture`. Prints its size and render time
/// (docs/measurements.md).
#[test]
#[ignore = "needs MOE_LAB_PAGE"]
fn a_given_page_loads_cleanly_and_draws_every_figure() {
    let (Some(exe), Some(page)) = (chromium(), std::env::var_os("MOE_LAB_PAGE")) else {
        return;
    };
    let page = std::path::absolute(PathBuf::from(page)).unwrap();
    let url = format!("file://{}", page.display());
    let mut b = Browser::launch(&exe);
    // MOE_LAB_PAGE_RUNS=NAME,NAME opens the page with those runs ticked.
    let runs = std::env::var("MOE_LAB_PAGE_RUNS").unwrap_or_default();
    b.open(&format!("{url}#runs={runs}"));
    b.wait_for("document.body.dataset.ready === 'true'");
    // MOE_LAB_SCREENSHOTS=DIR: the top of the page and its run browser as PNGs (README).
    if let Some(dir) = std::env::var_os("MOE_LAB_SCREENSHOTS").map(PathBuf::from) {
        b.screenshot("body", ".figure:nth-child(5)", &dir.join("report-page.png"));
        b.screenshot("#runs", "#report", &dir.join("report-page-runs.png"));
    }
    let figures = b.eval(FIGURES);
    for f in figures.as_array().unwrap() {
        assert_eq!(f[3], f[4], "{f}: traces in the data vs drawn");
        assert!(
            f[1].as_f64().unwrap() > 100.0 && f[2].as_f64().unwrap() > 100.0,
            "{f}"
        );
    }
    b.settle(Duration::from_millis(500));
    let requests: Vec<String> = (b.requests().into_iter())
        .filter(|u| !u.starts_with(&url) && !u.starts_with("data:") && !u.starts_with("blob:"))
        .collect();
    assert_eq!(requests, Vec::<String>::new(), "the page made requests");
    assert_eq!(b.errors(), Vec::<String>::new(), "console errors");
    // The page states the verdicts of the analysis.json and report.md beside it.
    verdicts_match(&mut b, page.parent().unwrap());
    let report = std::fs::read_to_string(page.with_file_name("report.md")).unwrap();
    for v in verdicts_of_analysis(page.parent().unwrap()) {
        assert!(report.contains(&v), "report.md lacks verdict {v}");
    }
    let ms = b.eval("document.body.dataset.renderMs");
    let runs = b.eval("document.querySelectorAll('#run-table tbody tr').length");
    let bytes = std::fs::metadata(&page).unwrap().len();
    println!(
        "{}: {:.2} MB, {} figures, {runs} runs, rendered in {} ms",
        page.display(),
        bytes as f64 / 1e6,
        figures.as_array().unwrap().len(),
        ms.as_str().unwrap_or("?")
    );
}
