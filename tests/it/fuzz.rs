//! No spec input crashes the lab: a deterministic mutation loop over the shipped specs (one
//! field at a time: zero, negative, huge, NaN, empty string, dropped, duplicated, renamed, the
//! file cut off), each mutant run through `lab flops` (run specs) or `lab sweep --dry-run`
//! (experiments). Every mutant must exit 0 or 2 within a time bound, and a 2 must name the
//! file and the field (or, for text the TOML parser refuses, the line and column). By default every field of every shipped spec set to 0, a huge number and NaN in
//! turn, then 300 random mutants; `MOE_LAB_FUZZ_MUTANTS=3000` for the full loop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Per mutant: far above the ≈ 10 ms a healthy one takes, far below "never returns".
const TIME_BOUND: Duration = Duration::from_secs(10);

fn shipped_specs() -> Vec<(PathBuf, bool)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut specs = Vec::new();
    for (dir, experiment) in [("experiments", true), ("experiments/examples", false)] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        specs.extend(files.into_iter().map(|f| (f, experiment)));
    }
    specs
}

/// The indices of the `key = value` lines.
fn field_lines(lines: &[&str]) -> Vec<usize> {
    (0..lines.len())
        .filter(|&i| {
            let l = lines[i].trim_start();
            !l.starts_with('#') && !l.starts_with('[') && l.contains(" = ")
        })
        .collect()
}

/// Every field set to each of 0, a huge number and NaN in turn.
fn systematic(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for i in field_lines(&lines) {
        let key = lines[i].split_once(" = ").unwrap().0;
        for value in ["0", "99999999999", "nan"] {
            let mut m: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            m[i] = format!("{key} = {value}");
            out.push(m.join("\n") + "\n");
        }
    }
    out
}

/// One random mutation of one `key = value` line (or of the file as a whole).
fn mutate(text: &str, rng: &mut StdRng) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let fields = field_lines(&lines);
    let i = fields[rng.random_range(0..fields.len())];
    let (key, _) = lines[i].split_once(" = ").unwrap();
    let replace = |value: &str| format!("{key} = {value}");
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match rng.random_range(0..10) {
        0 => out[i] = replace("0"),
        1 => out[i] = replace("-1"),
        2 => out[i] = replace("99999999999"),
        3 => out[i] = replace("nan"),
        4 => out[i] = replace("\"\""),
        5 => out[i] = replace("1e300"),
        6 => {
            out.remove(i);
        }
        7 => out.insert(i, lines[i].to_string()),
        8 => out[i] = lines[i].replacen(key.trim(), &format!("{}x", key.trim()), 1),
        _ => {
            let cut = rng.random_range(0..text.len());
            let cut = (0..=cut).rev().find(|&c| text.is_char_boundary(c)).unwrap();
            return text[..cut].to_string();
        }
    }
    out.join("\n") + "\n"
}

/// Run `lab args` in `dir`; (exit code, stderr), or a panic when it outlives the bound.
fn run_bounded(args: &[&str], dir: &Path, what: &str) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), err);
        }
        if start.elapsed() > TIME_BOUND {
            let _ = child.kill();
            panic!("{what}: still running after {TIME_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn mutated_specs_exit_0_or_2_naming_the_file() {
    let count: usize = std::env::var("MOE_LAB_FUZZ_MUTANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let specs = shipped_specs();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(2026);
    let mut mutants: Vec<(usize, String)> = Vec::new();
    for (k, (source, _)) in specs.iter().enumerate() {
        let text = std::fs::read_to_string(source).unwrap();
        mutants.extend(systematic(&text).into_iter().map(|m| (k, m)));
    }
    for n in 0..count {
        let k = n % specs.len();
        let text = std::fs::read_to_string(&specs[k].0).unwrap();
        mutants.push((k, mutate(&text, &mut rng)));
    }
    let mut exits = [0usize; 2];
    for (n, (k, mutant)) in mutants.iter().enumerate() {
        let (source, experiment) = &specs[*k];
        let name = format!("m{n}.toml");
        std::fs::write(tmp.path().join(&name), mutant).unwrap();
        let args: Vec<&str> = match experiment {
            true => vec!["sweep", &name, "--dry-run", "--out", "out"],
            false => vec!["flops", &name],
        };
        let what = format!("mutant {n} of {}", source.display());
        let (code, stderr) = run_bounded(&args, tmp.path(), &what);
        match code {
            Some(0) => exits[0] += 1,
            Some(2) => {
                exits[1] += 1;
                // The field, or for text that is not valid TOML (or not the schema's types) the
                // line and column the parser stopped at.
                let located = stderr.contains("field `") || stderr.contains(" at line ");
                assert!(
                    stderr.contains(&name) && located,
                    "{what}: exit 2 without naming file and field:\n{stderr}\n--- mutant ---\n{mutant}"
                );
            }
            other => panic!("{what}: exit {other:?}\n{stderr}\n--- mutant ---\n{mutant}"),
        }
    }
    // The loop exercised both outcomes, and a dry run writes nothing.
    assert!(exits[0] > 0 && exits[1] > 0, "exits 0/2: {exits:?}");
    assert!(!tmp.path().join("out").exists(), "a dry run wrote results");
}
