//! `docs/adding-a-variant.md` shows real code: every ```` ```rust file=PATH ```` block equals
//! that file, every ```` ```rust line-in=PATH ```` line appears in that file, the ```` ```toml
//! spec ```` block resolves as an `[ffn]` table, and the variant it adds is in the conformance
//! suite (which then runs on it like on every registered variant).

use crate::common;

use std::path::Path;

use common::{config, tiny_spec};

struct Block {
    info: String,
    body: String,
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```")
            && !info.is_empty()
        {
            let mut body = String::new();
            for l in lines.by_ref() {
                if l == "```" {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            out.push(Block {
                info: info.to_string(),
                body,
            });
        }
    }
    out
}

#[test]
fn the_walkthrough_shows_the_code_that_compiles_and_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/adding-a-variant.md")).unwrap();
    let all = blocks(&doc);
    let (mut files, mut lines, mut specs) = (0, 0, 0);
    for b in &all {
        if let Some(path) = b.info.strip_prefix("rust file=") {
            let real = std::fs::read_to_string(root.join(path)).unwrap();
            assert_eq!(
                b.body, real,
                "the walkthrough's copy of {path} differs from the file"
            );
            files += 1;
        } else if let Some(path) = b.info.strip_prefix("rust line-in=") {
            let real = std::fs::read_to_string(root.join(path)).unwrap();
            for l in b.body.lines().filter(|l| !l.trim().is_empty()) {
                assert!(real.lines().any(|r| r == l), "{path} lacks the line {l:?}");
                lines += 1;
            }
        } else if b.info == "toml spec" {
            let cfg = config(&tiny_spec("walkthrough", &b.body, ""));
            assert_eq!(cfg.spec.ffn.describe(), "moe/hash");
            specs += 1;
        }
    }
    assert_eq!(
        (files, lines, specs),
        (1, 2, 1),
        "blocks found in the walkthrough"
    );
    // The conformance suite's variants include it.
    let names: Vec<String> = common::conformance::variants()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.contains(&"moe/hash".to_string()), "{names:?}");
}
