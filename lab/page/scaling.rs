//! The scaling study's figures (`plot::draw_all`), interactive: the same data and the same
//! reductions as the static figures (the helpers are theirs), drawn by Plotly.

use std::collections::BTreeMap;

use serde_json::json;

use super::chart::{Chart, Series, color, linear, log};
use crate::plot::PlotData;
use crate::plot::{
    loss_vs_flops, memory, router_load, router_maxvio, router_state, spike_rate, training_loss,
};
use crate::run::RunStatus;

pub fn charts(d: &PlotData) -> Vec<Chart> {
    vec![
        loss_vs_flops_chart(d),
        paired_diff(d),
        scaling(d),
        training_loss_chart(d),
        spike_rate(d),
        memory(d),
        router_load_chart(d),
        router_maxvio(d),
        router_state(d),
    ]
}

fn series<'a>(d: &PlotData, name: &'a str, arm: &'a str, legend: bool) -> Series<'a> {
    Series {
        name,
        group: arm,
        color: color(&d.manifest.arms, arm, 1.0),
        legend,
    }
}

fn loss_vs_flops_chart(d: &PlotData) -> Chart {
    let title = "Validation loss vs training FLOPs (line: seed mean; band: seeds' range)";
    let mut c = Chart::new(
        "loss_vs_flops",
        title,
        log("training FLOPs"),
        linear("validation loss (nats/token)"),
    );
    for arm in &d.manifest.arms {
        let mut first = true;
        for size in &d.manifest.sizes {
            let band = loss_vs_flops::seed_band(d, arm, size);
            if band.is_empty() {
                continue;
            }
            let col = |f: fn(&(f64, f64, f64, f64)) -> f64| band.iter().map(f).collect::<Vec<_>>();
            let (x, mean, lo, hi) = (col(|p| p.0), col(|p| p.1), col(|p| p.2), col(|p| p.3));
            let name = format!("{arm} {size}");
            let s = series(d, &name, arm, false);
            c.push(s.band(&x, &lo, &hi, color(&d.manifest.arms, arm, 0.18)));
            let mut line = series(d, &name, arm, first).line_markers(&x, &mean);
            line["name"] = json!(if first { arm.as_str() } else { name.as_str() });
            c.push(line);
            first = false;
        }
    }
    c
}

fn paired_diff(d: &PlotData) -> Chart {
    let a = d.analysis;
    let title = format!(
        "Paired difference {} − baseline, final validation loss (grey: ±{} equivalence margin)",
        a.reference_arm, a.equivalence_margin
    );
    let mut c = Chart::new(
        "paired_diff",
        &title,
        linear("size"),
        linear("final validation loss difference (nats)"),
    );
    let mut labels = Vec::new();
    let mut by_base: BTreeMap<&str, Vec<(String, crate::analysis::stats::Paired)>> =
        BTreeMap::new();
    for cmp in &a.comparisons {
        if let Some(p) = cmp.paired {
            if !labels.contains(&cmp.size) {
                labels.push(cmp.size.clone());
            }
            by_base
                .entry(&cmp.baseline)
                .or_default()
                .push((cmp.size.clone(), p));
        }
    }
    for (b, p) in &a.pooled {
        by_base.entry(b).or_default().push(("pooled".into(), *p));
    }
    labels.push("pooled".into());
    if by_base.is_empty() {
        return Chart::empty("paired_diff", &title, "fewer than 2 seed pairs anywhere");
    }
    for (base, rows) in by_base {
        let x: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let pick = |f: fn(&crate::analysis::stats::Paired) -> f64| {
            rows.iter().map(|r| f(&r.1)).collect::<Vec<_>>()
        };
        let name = format!("vs {base}");
        let s = series(d, &name, base, true);
        let mut t = s.points(
            &[],
            &pick(|p| p.mean),
            Some(&pick(|p| p.ci_low)),
            Some(&pick(|p| p.ci_high)),
        );
        t["x"] = json!(x);
        c.push(t);
    }
    c.categories(&labels);
    let m = a.equivalence_margin;
    c.layout["shapes"] = json!([{"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "y0": -m,
        "y1": m, "fillcolor": "rgba(200,200,200,0.4)", "line": {"width": 0}, "layer": "below"}]);
    c.hline(0.0, "solid");
    c
}

fn scaling(d: &PlotData) -> Chart {
    let title = "Final validation loss vs compute, with fitted L(C) = E + A·C^−α";
    let mut c = Chart::new(
        "scaling",
        title,
        log("training FLOPs C"),
        linear("final validation loss (nats/token)"),
    );
    for arm in &d.manifest.arms {
        let runs: Vec<_> = (d.runs.iter())
            .filter(|r| &r.cell.arm == arm && r.summary.status == RunStatus::Complete)
            .filter_map(|r| Some((r, r.summary.final_val_loss?)))
            .collect();
        if runs.is_empty() {
            continue;
        }
        let x: Vec<f64> = runs.iter().map(|r| r.0.summary.train_flops).collect();
        let y: Vec<f64> = runs.iter().map(|r| r.1).collect();
        let mut t = series(d, arm, arm, true).points(&x, &y, None, None);
        let names: Vec<&str> = runs.iter().map(|r| r.0.cell.name.as_str()).collect();
        t["text"] = json!(names);
        t["hovertemplate"] = json!("<b>%{text}</b><br>C %{x:.3~e}<br>loss %{y:.4f}<extra></extra>");
        c.push(t);
        if let Some(Some(fit)) = d.analysis.fits.get(arm) {
            let cs: Vec<f64> = (0..=60)
                .map(|i| fit.c_min * (fit.c_max / fit.c_min).powf(i as f64 / 60.0))
                .collect();
            let ys: Vec<f64> = cs.iter().map(|c| fit.predict(*c)).collect();
            let name = format!("{arm} fit");
            c.push(series(d, &name, arm, false).line(&cs, &ys, 2.0));
        }
    }
    c
}

fn training_loss_chart(d: &PlotData) -> Chart {
    let size = d
        .manifest
        .sizes
        .iter()
        .rev()
        .find(|s| (d.runs.iter()).any(|r| &r.cell.size == *s && !r.metrics.is_empty()));
    let Some(size) = size else {
        return Chart::empty("training_loss", "Training loss", "no training metrics yet");
    };
    let title =
        format!("Training loss, size {size}: seed mean smoothed, raw seeds faint (× = spike)");
    let mut c = Chart::new(
        "training_loss",
        &title,
        linear("step"),
        linear("training loss"),
    );
    let runs: Vec<_> = d.runs.iter().filter(|r| &r.cell.size == size).collect();
    for arm in &d.manifest.arms {
        let mine: Vec<_> = runs.iter().filter(|r| &r.cell.arm == arm).collect();
        if mine.is_empty() {
            continue;
        }
        for r in &mine {
            let (x, y) = super::runs::thin(&r.metrics, |m| m.loss);
            let mut s = series(d, &r.cell.name, arm, false);
            s.color = color(&d.manifest.arms, arm, 0.25);
            c.push(s.line(&x, &y, 1.0));
            let spikes: Vec<_> = r.metrics.iter().filter(|m| m.loss_spike == 1).collect();
            if !spikes.is_empty() {
                let sx: Vec<f64> = spikes.iter().map(|m| m.step as f64).collect();
                let sy: Vec<f64> = spikes.iter().map(|m| m.loss).collect();
                let name = format!("{} spikes", r.cell.name);
                let mut t = series(d, &name, arm, false).points(&sx, &sy, None, None);
                t["marker"]["symbol"] = json!("x");
                c.push(t);
            }
        }
        let mean =
            training_loss::smoothed_mean(&mine.iter().map(|r| &r.metrics[..]).collect::<Vec<_>>());
        let (x, y): (Vec<f64>, Vec<f64>) = mean.into_iter().unzip();
        c.push(series(d, arm, arm, true).line(&x, &y, 3.0));
    }
    c
}

fn spike_rate(d: &PlotData) -> Chart {
    let st = &d.analysis.stability;
    let title = spike_rate::CAPTION;
    if st.is_empty() {
        return Chart::empty("spike_rate", title, "no runs yet");
    }
    let mut c = Chart::new(
        "spike_rate",
        title,
        linear("arm"),
        linear("spikes per 1000 steps"),
    );
    for s in st {
        let arms = &d.manifest.arms;
        for (what, v, alpha) in spike_rate::bars(s) {
            c.push(json!({"type": "bar", "name": format!("{}: {what}", s.arm), "legendgroup": s.arm,
                "showlegend": true, "x": [s.arm], "y": [v], "offsetgroup": what,
                "text": [spike_rate::value_label(v)], "textposition": "outside",
                "marker": {"color": color(arms, &s.arm, alpha)},
                "hovertemplate": format!("<b>{}: {what}</b><br>%{{y:.3f}} per 1k steps<br>{} runs, {} steps<extra></extra>", s.arm, s.runs, s.steps)}));
        }
    }
    c.categories(&st.iter().map(|s| s.arm.clone()).collect::<Vec<_>>());
    c.layout["barmode"] = json!("group");
    c
}

fn memory(d: &PlotData) -> Chart {
    let rows = &d.analysis.memory;
    let title =
        "Memory per size and arm: parameters, gradients, AdamW state, rest of the measured peak";
    if rows.is_empty() {
        return Chart::empty("memory", title, "no runs yet");
    }
    let kind = &rows[0].measured_kind;
    let mut c = Chart::new(
        "memory",
        title,
        linear("size / arm"),
        linear(&format!("MiB (measured: {kind})")),
    );
    let x: Vec<String> = rows
        .iter()
        .map(|m| format!("{} {}", m.size, m.arm))
        .collect();
    let stacks: Vec<[f64; 4]> = rows.iter().map(memory::stack).collect();
    for (i, (name, rgb)) in memory::PARTS.iter().enumerate() {
        let y: Vec<f64> = stacks.iter().map(|s| s[i]).collect();
        let col = format!("rgb({}, {}, {})", rgb.0, rgb.1, rgb.2);
        c.push(
            json!({"type": "bar", "name": name, "x": x, "y": y, "marker": {"color": col},
            "hovertemplate": format!("<b>%{{x}}</b><br>{name}: %{{y:.2f}} MiB<extra></extra>")}),
        );
    }
    c.categories(&x);
    c.layout["barmode"] = json!("stack");
    c
}

fn router_load_chart(d: &PlotData) -> Chart {
    let arm = &d.manifest.reference_arm;
    let title = "Expert load share at the last evaluation (mean over seeds)";
    let size = d.manifest.sizes.iter().rev().find(|s| {
        (d.runs.iter()).any(|r| &r.cell.size == *s && &r.cell.arm == arm && !r.router.is_empty())
    });
    let Some(size) = size else {
        return Chart::empty("router_load", title, "no MoE router statistics");
    };
    let cells = router_load::last_shares(d, size, arm);
    let mut layers: Vec<usize> = cells.keys().map(|k| k.0).collect();
    layers.dedup();
    let experts = cells.keys().map(|k| k.1).max().unwrap_or(0) + 1;
    let z: Vec<Vec<f64>> = (layers.iter())
        .map(|l| {
            (0..experts)
                .map(|e| {
                    cells
                        .get(&(*l, e))
                        .map_or(0.0, |s| s.iter().sum::<f64>() / s.len() as f64)
                })
                .collect()
        })
        .collect();
    let title = format!(
        "{title}: {arm} at size {size} (uniform = {:.3})",
        1.0 / experts as f64
    );
    let mut c = Chart::new("router_load", &title, linear("expert"), linear("layer"));
    c.layout["xaxis"]["type"] = json!("category");
    c.layout["yaxis"]["type"] = json!("category");
    c.push(
        json!({"type": "heatmap", "name": arm, "z": z, "x": (0..experts).collect::<Vec<_>>(),
        "y": layers.iter().map(|l| format!("block {l}")).collect::<Vec<_>>(),
        "colorscale": "Blues", "reversescale": true, "zmin": 0,
        "hovertemplate": "expert %{x}, %{y}<br>load share %{z:.3f}<extra></extra>"}),
    );
    c
}

fn router_maxvio(d: &PlotData) -> Chart {
    let title = router_maxvio::CAPTION;
    let mut c = Chart::new(
        "router_maxvio",
        title,
        linear("step"),
        linear("MaxVio = max load / mean load − 1"),
    );
    for b in router_maxvio::seed_bands(d) {
        let name = b.label();
        let s = series(d, &name, &b.arm, true);
        let x: Vec<f64> = b.points.iter().map(|p| p.0).collect();
        let at = |i: usize| {
            b.points
                .iter()
                .map(|p| [p.1, p.2, p.3][i])
                .collect::<Vec<_>>()
        };
        c.push(s.band(&x, &at(1), &at(2), color(&d.manifest.arms, &b.arm, 0.15)));
        c.push(s.line(&x, &at(0), 1.5 + b.size_rank as f64));
    }
    if c.data.is_empty() {
        return Chart::empty("router_maxvio", title, "no MoE router statistics");
    }
    c
}

fn router_state(d: &PlotData) -> Chart {
    let title = "Router state over training (first MoE layer, one run per arm)";
    let mut c = Chart::new(
        "router_state",
        title,
        linear("step"),
        linear("value per expert"),
    );
    for run in router_state::shown_runs(d) {
        let arm = &run.cell.arm;
        let (_, rows) = router_state::first_layer(run);
        let experts = rows.iter().map(|x| x.expert).max().unwrap_or(0) + 1;
        for e in 0..experts {
            let mine = rows.iter().filter(|x| x.expert == e);
            let x: Vec<f64> = mine.clone().map(|x| x.step as f64).collect();
            let y: Vec<f64> = mine.map(|x| x.value).collect();
            let name = format!("{} expert {e} ({})", run.cell.name, rows[0].quantity);
            let mut s = series(d, &name, arm, true);
            s.color = format!("hsl({}, 75%, 45%)", 360 * e / experts);
            c.push(s.line(&x, &y, 2.0));
        }
    }
    if c.data.is_empty() {
        return Chart::empty(
            "router_state",
            title,
            "no run keeps router state (e.g. loss-free balancing's bias)",
        );
    }
    c
}
