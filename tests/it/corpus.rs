//! The generated multi-domain corpus: determinism, mixture, correctness of every math and code
//! sample, train/validation disjointness, held-out facts, and routing by domain.

use crate::common;

use std::collections::HashSet;

use common::{MOE, config, tiny_spec};
use moe_lab::data::corpus::source::GeneratedSource;
use moe_lab::data::corpus::world::{RELATIONS, TEMPLATES};
use moe_lab::data::corpus::{CorpusConfig, Domain, Generator, Split};
use moe_lab::data::{Batches, TokenSource};
use moe_lab::spec::{DataSpec, DomainWeights};

fn generator(seed: u64) -> Generator {
    Generator::new(&CorpusConfig {
        seed,
        entities: 200,
        heldout_facts: 0.05,
    })
}

#[test]
fn same_seed_same_bytes_and_other_seeds_other_worlds() {
    for d in Domain::ALL {
        assert_eq!(
            generator(3).text(d, Split::Train, 20_000),
            generator(3).text(d, Split::Train, 20_000)
        );
    }
    assert_ne!(generator(3).world.names, generator(4).world.names);
    assert_ne!(
        generator(3).text(Domain::Knowledge, Split::Train, 5_000),
        generator(4).text(Domain::Knowledge, Split::Train, 5_000)
    );
}

fn source(anneal: bool) -> GeneratedSource {
    GeneratedSource::from_spec(
        &DataSpec {
            corpus_bytes: 400_000,
            anneal,
            ..DataSpec::default()
        },
        0,
    )
}

#[test]
fn mixture_and_annealing_proportions_hold_within_one_point() {
    let (seq, batch) = (64, 16);
    let rows_per_million = 1_000_000 / seq + 1;
    let steps = rows_per_million / batch + 1; // ≥ 1M tokens
    let switch = steps;
    let b = Batches::new(source(true).load().unwrap(), seq, batch, 5, Some(switch)).unwrap();
    let names = b.stream_names();
    let share = |from: usize, to: usize| {
        let mut counts = vec![0usize; names.len()];
        for step in from..to {
            for row in 0..batch {
                counts[b.stream_of(step, row)] += 1;
            }
        }
        let n = ((to - from) * batch) as f64;
        counts.into_iter().map(|c| c as f64 / n).collect::<Vec<_>>()
    };
    let check = |got: Vec<f64>, w: DomainWeights, phase: &str| {
        let total = w.knowledge + w.math + w.code + w.multilingual;
        for (i, d) in Domain::ALL.iter().enumerate() {
            let want = w.of(*d) / total;
            assert!(
                (got[i] - want).abs() < 0.01,
                "{phase}: {} share {:.4} vs {want:.4}",
                d.name(),
                got[i]
            );
        }
    };
    check(share(0, steps), DomainWeights::default(), "base mix");
    check(
        share(switch, switch + steps),
        DomainWeights::ANNEAL,
        "annealing mix",
    );
    // The realised batches follow the same assignment.
    assert_eq!(
        b.train(3).streams,
        (0..batch).map(|r| b.stream_of(3, r)).collect::<Vec<_>>()
    );
}

/// Recompute every math line's answer.
fn check_math_line(line: &str) {
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("number in {line:?}"))
    };
    if let Some((lhs, rest)) = line.split_once(" => x=") {
        // x+b=c => x=c-b=a
        let (xb, c) = lhs.split_once('=').unwrap();
        let b = num(xb.strip_prefix("x+").unwrap());
        let (expr, a) = rest.split_once('=').unwrap();
        let (c2, b2) = expr.split_once('-').unwrap();
        assert_eq!((num(c2), num(b2)), (num(c), b), "{line}");
        assert_eq!(num(a) + b, num(c), "{line}");
    } else if let Some((q, r)) = line.split_once(" = ") {
        let (a, m) = q.split_once(" mod ").unwrap();
        assert_eq!(num(a) % num(m), num(r), "{line}");
    } else if let Some((q, c)) = line.split_once(" : ") {
        let (a, b) = q.split_once(" ? ").unwrap();
        let want = match num(a).cmp(&num(b)) {
            std::cmp::Ordering::Less => "<",
            std::cmp::Ordering::Equal => "=",
            std::cmp::Ordering::Greater => ">",
        };
        assert_eq!(c, want, "{line}");
    } else if line.contains('*') {
        // x*y=x*t+x*u=p+q=r
        let parts: Vec<&str> = line.split('=').collect();
        assert_eq!(parts.len(), 4, "{line}");
        let (x, y) = parts[0].split_once('*').unwrap();
        let (t1, t2) = parts[1].split_once('+').unwrap();
        let (p, q) = parts[2].split_once('+').unwrap();
        let prod = |s: &str| {
            let (a, b) = s.split_once('*').unwrap();
            num(a) * num(b)
        };
        assert_eq!(prod(t1), num(p), "{line}");
        assert_eq!(prod(t2), num(q), "{line}");
        assert_eq!(num(p) + num(q), num(parts[3]), "{line}");
        assert_eq!(num(x) * num(y), num(parts[3]), "{line}");
    } else {
        let (q, r) = line.split_once('=').unwrap();
        let (a, b) = q.split_once('+').unwrap();
        assert_eq!(num(a) + num(b), num(r), "{line}");
    }
}

#[test]
fn every_math_answer_is_correct() {
    let g = generator(1);
    for split in [Split::Train, Split::Val] {
        let text = String::from_utf8(g.text(Domain::Math, split, 300_000)).unwrap();
        for line in text.lines() {
            check_math_line(line);
        }
    }
}

#[test]
fn every_program_has_balanced_brackets_and_uses_defined_names_only() {
    let g = generator(2);
    let text = String::from_utf8(g.text(Domain::Code, Split::Train, 300_000)).unwrap();
    for line in text.lines() {
        let mut stack = Vec::new();
        for c in line.chars() {
            match c {
                '{' | '(' => stack.push(c),
                '}' => assert_eq!(stack.pop(), Some('{'), "{line}"),
                ')' => assert_eq!(stack.pop(), Some('('), "{line}"),
                _ => {}
            }
        }
        assert!(stack.is_empty(), "unbalanced: {line}");
        // Scopes: names defined in a block are visible until its closing brace.
        let mut scopes: Vec<Vec<String>> = vec![vec!["x".into()]];
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let mut i = 0;
        while i < tokens.len() {
            let t = tokens[i].trim_matches(|c| c == ';' || c == '(' || c == ')');
            match t {
                "{" => scopes.push(vec![]),
                "}" => {
                    scopes.pop();
                }
                "let" => {
                    scopes.last_mut().unwrap().push(tokens[i + 1].to_string());
                    i += 2; // skip the name and "="
                }
                _ if t.starts_with('v')
                    && t[1..].chars().all(|c| c.is_ascii_digit())
                    && t.len() > 1 =>
                {
                    assert!(
                        scopes.iter().flatten().any(|n| n == t),
                        "{t} used undefined in {line}"
                    );
                }
                _ => {}
            }
            i += 1;
        }
    }
}

#[test]
fn no_validation_window_occurs_in_training() {
    let seq = 64;
    let corpus = source(false).load().unwrap();
    let train: Vec<Vec<u8>> = corpus
        .streams
        .iter()
        .map(|s| s.train.as_bytes().unwrap().to_vec())
        .collect();
    let b = Batches::new(corpus, seq, 16, 0, None).unwrap();
    let mut seen = HashSet::new();
    for t in &train {
        for w in t.windows(seq + 1) {
            seen.insert(w.to_vec());
        }
    }
    let mut checked = 0;
    for vb in b.validation(4) {
        for r in 0..vb.batch.batch_size {
            let row = &vb.batch.inputs[r * seq..(r + 1) * seq];
            let mut window: Vec<u8> = row.iter().map(|&x| x as u8).collect();
            window.push(*vb.batch.targets[(r + 1) * seq - 1..].first().unwrap() as u8);
            assert!(
                !seen.contains(&window),
                "validation window found in training: {:?}",
                String::from_utf8_lossy(&window)
            );
            checked += 1;
        }
    }
    assert!(checked >= 5 * 4 * 16);
}

#[test]
fn held_out_facts_are_never_stated_in_training() {
    let g = generator(7);
    assert!(!g.world.heldout.is_empty());
    let english = String::from_utf8(g.text(Domain::Knowledge, Split::Train, 2_000_000)).unwrap();
    let lumi = String::from_utf8(g.text(Domain::Multilingual, Split::Train, 1_000_000)).unwrap();
    let english: HashSet<&str> = english.lines().collect();
    let lumi: HashSet<&str> = lumi.lines().collect();
    for &(e, r) in &g.world.heldout {
        for t in 0..TEMPLATES {
            assert!(
                !english.contains(g.world.english_sentence(e, r, t).trim_end()),
                "held-out fact in training"
            );
            assert!(!lumi.contains(g.world.lumi_sentence(e, r, t).trim_end()));
        }
    }
    // The test can fail: trained facts do appear.
    let (e, r) = (0..200)
        .flat_map(|e| (0..RELATIONS.len()).map(move |r| (e, r)))
        .find(|f| !g.world.heldout.contains(f))
        .unwrap();
    assert!((0..TEMPLATES).any(|t| english.contains(g.world.english_sentence(e, r, t).trim_end())));
}

#[test]
fn tiny_moe_run_logs_routing_by_domain() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&tiny_spec("dom", MOE, "").replace("seq_len = 16", "seq_len = 32"));
    moe_lab::train::train(
        &cfg,
        moe_lab::train::TrainOptions {
            run_dir: moe_lab::run::RunDir::new(tmp.path()),
            device: moe_lab::train::device::DeviceChoice::Flex.open().unwrap(),
            progress: false,
            resume: false,
            stop_after: None,
            exit_with_parent: false,
        },
    )
    .unwrap();
    let rows: Vec<moe_lab::run::RouterDomainRow> = moe_lab::run::read_rows(tmp.path()).unwrap();
    let mut sums: std::collections::BTreeMap<(usize, usize, String), f64> = Default::default();
    for r in rows {
        *sums.entry((r.step, r.layer, r.domain)).or_default() += r.share;
    }
    let domains: HashSet<&String> = sums.keys().map(|k| &k.2).collect();
    assert_eq!(domains.len(), 5, "every validation stream is attributed");
    for (key, total) in &sums {
        assert!((total - 1.0).abs() < 1e-4, "{key:?}: shares sum to {total}");
    }
    let evals = std::fs::read_to_string(tmp.path().join("evals.csv")).unwrap();
    assert!(
        evals
            .lines()
            .next()
            .unwrap()
            .contains("val_loss_knowledge_heldout")
    );
}

#[test]
fn answer_ranges_cover_exactly_the_objects_of_stated_facts() {
    let g = generator(9);
    for d in [
        Domain::Knowledge,
        Domain::KnowledgeHeldout,
        Domain::Multilingual,
    ] {
        let (text, answers) = g.text_with_answers(d, Split::Val, 20_000);
        let text = String::from_utf8(text).unwrap();
        assert_eq!(
            answers.len(),
            text.lines().count(),
            "{}: one answer per sentence",
            d.name()
        );
        let names: HashSet<String> = g
            .world
            .names
            .iter()
            .map(|n| {
                if d == Domain::Multilingual {
                    moe_lab::data::corpus::world::lumi_name(n)
                } else {
                    n.clone()
                }
            })
            .collect();
        for r in answers {
            let word = &text[r.clone()];
            assert!(
                names.contains(word),
                "{}: answer {word:?} is not an entity name",
                d.name()
            );
            // The answer is a whole word: bounded by a space or the line's punctuation.
            let before = text[..r.start].chars().last();
            assert!(
                before.is_none_or(|c| c == ' ' || c == '\n'),
                "{word:?} starts mid-word"
            );
        }
    }
    // Math: one answer per line, everything after the question, and it is right.
    let (text, answers) = g.text_with_answers(Domain::Math, Split::Val, 4000);
    let text = String::from_utf8(text).unwrap();
    assert_eq!(
        answers.len(),
        text.lines().count(),
        "math: one answer per line"
    );
    for r in answers {
        let (question, answer) = (&text[..r.start], &text[r.clone()]);
        let line = question.rsplit('\n').next().unwrap();
        assert_eq!(
            text.as_bytes()[r.end],
            b'\n',
            "the answer runs to the line's end"
        );
        let check = |q: &str, a: &str| -> bool {
            if let Some((x, y)) = q.strip_suffix('=').and_then(|q| q.split_once('+')) {
                return x.parse::<u64>().unwrap() + y.parse::<u64>().unwrap()
                    == a.parse::<u64>().unwrap();
            }
            if let Some((x, y)) = q.strip_suffix('=').and_then(|q| q.split_once('*')) {
                let want = x.parse::<u64>().unwrap() * y.parse::<u64>().unwrap();
                return a.rsplit('=').next().unwrap().parse::<u64>().unwrap() == want;
            }
            if let Some((x, m)) = q.strip_suffix(" = ").and_then(|q| q.split_once(" mod ")) {
                return x.parse::<u64>().unwrap() % m.parse::<u64>().unwrap()
                    == a.parse::<u64>().unwrap();
            }
            if let Some((x, y)) = q.strip_suffix(" : ").and_then(|q| q.split_once(" ? ")) {
                let (x, y) = (x.parse::<u64>().unwrap(), y.parse::<u64>().unwrap());
                return a
                    == if x < y {
                        "<"
                    } else if x > y {
                        ">"
                    } else {
                        "="
                    };
            }
            let (lhs, sum) = q.strip_suffix(" => ").unwrap().split_once('=').unwrap();
            let b: u64 = lhs.strip_prefix("x+").unwrap().parse().unwrap();
            let x: u64 = a.rsplit('=').next().unwrap().parse().unwrap();
            x + b == sum.parse::<u64>().unwrap()
        };
        assert!(check(line, answer), "math: {line:?} answered {answer:?}");
    }
}
