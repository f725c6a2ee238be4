//! The code's shape, checked from its source: imports run one way (the layering in
//! docs/architecture.md), and functions fit a screen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `lab/`, with its text.
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("lab"), &mut out);
    out.sort();
    out
}

/// The code of a Rust file with comments, string and char literals blanked out (replaced by
/// spaces, newlines kept), so that braces and paths are only the code's own.
fn code_only(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied().unwrap_or('\0');
        if c == '/' && next == '/' {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == '*' {
            let mut depth = 0;
            loop {
                if i >= b.len() {
                    break;
                }
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == '"' || next == '#') && !ident_before(&b, i) {
            // Raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < b.len() {
                if b[j] == '"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.extend(b[i..j.min(b.len())].iter().map(|c| blank(*c)));
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && is_char_literal(&b, i) {
            let mut j = i + 1;
            if b[j] == '\\' {
                j += 1;
            }
            while j < b.len() && b[j] != '\'' {
                j += 1;
            }
            for _ in i..=j.min(b.len() - 1) {
                out.push(' ');
            }
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// `'x'`, `'\n'`, `'\u{..}'`, not a lifetime `'a`.
fn is_char_literal(b: &[char], i: usize) -> bool {
    matches!(
        (b.get(i + 1), b.get(i + 2)),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

/// The module path of a file under `lab/`: `lab/model/ffn/moe/spec.rs` → `model::ffn::moe::spec`.
fn module_path(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix("lab").unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The top-level modules a file's code names: `crate::x`, `$crate::x`, `crate::{x, y::{..}}`,
/// and `super::` paths that climb out to the crate root; with their line numbers.
fn imported_modules(path: &Path, code: &str) -> Vec<(String, usize)> {
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let after = &code[at + "crate::".len()..];
        match after.strip_prefix('{') {
            Some(group) => {
                for item in top_level_items(group) {
                    found.push((first_segment(item.trim()), line_of(at)));
                }
            }
            None => found.push((first_segment(after), line_of(at))),
        }
    }
    let here = module_path(path);
    for (at, _) in code.match_indices("super::") {
        if code[..at].ends_with("::") {
            continue; // a second `super` of `super::super::`: counted with the first
        }
        let mut climbs = 0;
        let mut after = &code[at..];
        while let Some(rest) = after.strip_prefix("super::") {
            climbs += 1;
            after = rest;
        }
        // `super` k times from module a::b::c is a::b::c less k segments: the crate root
        // once k reaches the path's length.
        if climbs >= here.len() {
            found.push((first_segment(after), line_of(at)));
        }
    }
    found.retain(|(m, _)| !m.is_empty() && m != "self");
    found
}

/// The comma-separated items of a `{...}` group up to its closing brace (`group` starts after
/// the opening one), nested groups kept whole.
fn top_level_items(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

fn first_segment(path: &str) -> String {
    path.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The layers, bottom first, from the fenced `layers` block of docs/architecture.md: one line
/// per layer, `N. a, b` (modules in one layer may not import each other).
fn layers() -> BTreeMap<String, usize> {
    let doc = std::fs::read_to_string("docs/architecture.md").unwrap();
    let start = doc
        .find("```layers\n")
        .expect("docs/architecture.md has a ```layers block");
    let block = &doc[start + "```layers\n".len()..];
    let block = &block[..block.find("```").unwrap()];
    let mut rank = BTreeMap::new();
    for (i, line) in block.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let list = line.split_once(". ").expect("`N. modules`").1;
        let list = list.split(" (").next().unwrap();
        for module in list.split(',') {
            rank.insert(module.trim().to_string(), i + 1);
        }
    }
    rank
}

#[test]
fn imports_run_one_way() {
    let rank = layers();
    let mut violations = Vec::new();
    for (path, text) in sources() {
        let here = module_path(&path);
        let Some(top) = here.first() else { continue }; // lib.rs
        if top == "main" {
            continue; // the binary: above everything
        }
        let mine = *rank
            .get(top)
            .unwrap_or_else(|| panic!("module `{top}` is not in docs/architecture.md's layers"));
        for (module, line) in imported_modules(&path, &code_only(&text)) {
            if &module == top {
                continue;
            }
            let theirs = *rank
                .get(&module)
                .unwrap_or_else(|| panic!("{}:{line}: unknown module `{module}`", path.display()));
            if theirs >= mine {
                violations.push(format!(
                    "{}:{line}: `{top}` (layer {mine}) uses `{module}` (layer {theirs})",
                    path.display()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layering:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_module_has_a_layer() {
    let rank = layers();
    let lib = std::fs::read_to_string("lab/lib.rs").unwrap();
    for line in lib.lines() {
        if let Some(m) = line.strip_prefix("pub mod ") {
            let m = m.trim_end_matches(';');
            assert!(
                rank.contains_key(m),
                "lib.rs's `{m}` is not in docs/architecture.md's layers"
            );
        }
    }
}

/// The longest a function may be, in lines from its signature to its closing brace.
const MAX_FN_LINES: usize = 80;

/// Functions longer than [`MAX_FN_LINES`]: (file, line, name, length). A function may be
/// longer when a comment just above it starts with `// Long:` and says why.
fn long_functions(path: &Path, text: &str) -> Vec<(String, usize, String, usize)> {
    let code = code_only(text);
    let lines: Vec<&str> = code.lines().collect();
    let raw: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        let mut depth = 0i64;
        let mut opened = false;
        let mut end = i;
        for (j, l) in lines.iter().enumerate().skip(i) {
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            end = j;
            if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                break;
            }
        }
        let len = end - i + 1;
        let excused = raw[i.saturating_sub(6)..i]
            .iter()
            .any(|l| l.trim_start().starts_with("// Long:"));
        if len > MAX_FN_LINES && !excused {
            out.push((path.display().to_string(), i + 1, name, len));
        }
    }
    out
}

/// The name of the function a line declares, if it does.
fn fn_name(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        match w {
            "pub" | "const" | "async" | "unsafe" | "extern" => continue,
            w if w.starts_with("pub(") => continue,
            "fn" => return words.next().map(first_segment),
            _ => return None,
        }
    }
    None
}

#[test]
fn functions_fit_a_screen() {
    let long: Vec<String> = sources()
        .iter()
        .flat_map(|(p, t)| long_functions(p, t))
        .map(|(f, line, name, len)| format!("{f}:{line}: fn {name} is {len} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines (split them, or say why in a `// Long:` comment):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_check() {
    // A long function and an upward import in synthetic sources are caught.
    let body: String = (0..90).map(|i| format!("    let x{i} = {i};\n")).collect();
    let long = format!("pub fn big() {{\n{body}}}\n");
    let found = long_functions(Path::new("lab/x.rs"), &long);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].3, 92);
    let excused = format!("// Long: a table.\n{long}");
    assert!(long_functions(Path::new("lab/x.rs"), &excused).is_empty());
    // Braces in strings, chars and comments do not count.
    let tricky = "fn f() {\n    let s = \"{\"; let c = '{'; // {\n}\nfn g() {}\n";
    assert!(long_functions(Path::new("lab/x.rs"), tricky).is_empty());
    assert_eq!(code_only(tricky).matches('{').count(), 2);
    let code =
        code_only("use crate::{spec::{RunSpec, X}, model};\nuse super::super::super::train::x;\n");
    let mods: Vec<String> = imported_modules(Path::new("lab/model/ffn/dense.rs"), &code)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(mods, ["spec", "model", "train"]);
    let inside = imported_modules(Path::new("lab/model/ffn/dense.rs"), "use super::moe::X;");
    assert!(
        inside.is_empty(),
        "super:: inside the module is not an import: {inside:?}"
    );
}

/// Full module paths a `use`-style path names, braces expanded: `a::{b, c::d}` → `a::b`,
/// `a::c::d` (`text` starts at the path's first segment).
fn expand(prefix: &[String], text: &str) -> Vec<Vec<String>> {
    let mut path = prefix.to_vec();
    let mut rest = text;
    loop {
        let seg = first_segment(rest);
        if seg.is_empty() {
            break;
        }
        rest = &rest[seg.len()..];
        path.push(seg);
        match rest.strip_prefix("::") {
            Some(r) if r.starts_with('{') => {
                let items = top_level_items(&r[1..]);
                return items.iter().flat_map(|i| expand(&path, i.trim())).collect();
            }
            Some(r) => rest = r,
            None => break,
        }
    }
    vec![path]
}

/// The file under `lab/` that defines module `path` or its longest prefix (`None`: the crate
/// root or outside the crate).
fn file_of(path: &[String]) -> Option<PathBuf> {
    (1..=path.len()).rev().find_map(|n| {
        let base = Path::new("lab").join(path[..n].join("/"));
        let file = base.with_extension("rs");
        let dir = base.join("mod.rs");
        [file, dir].into_iter().find(|f| f.exists())
    })
}

/// The files a file's code imports from: `crate::` paths, `super::` paths, and `use` of its
/// own child modules.
fn imported_files(path: &Path, code: &str) -> Vec<PathBuf> {
    let here = module_path(path);
    let is_dir_module = path.ends_with("mod.rs") || path.ends_with("lib.rs");
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        paths.extend(expand(&[], &code[at + "crate::".len()..]));
    }
    for (at, _) in code.match_indices("super::") {
        if code[..at].ends_with("::") {
            continue;
        }
        let (mut climbs, mut after) = (0, &code[at..]);
        while let Some(rest) = after.strip_prefix("super::") {
            (climbs, after) = (climbs + 1, rest);
        }
        let base = &here[..here.len().saturating_sub(climbs)];
        paths.extend(expand(base, after));
    }
    // A child module named by its own path (`use child::X`, `child::f()`), not as the tail of
    // a longer path (`a::child::`) nor as part of a longer word.
    let dir = match is_dir_module {
        true => path.parent().unwrap().to_path_buf(),
        false => path.with_extension(""),
    };
    for (at, _) in code.match_indices("::") {
        let start =
            (code[..at].rfind(|c: char| !(c.is_alphanumeric() || c == '_'))).map_or(0, |i| i + 1);
        let seg = &code[start..at];
        let child = dir.join(format!("{seg}.rs")).exists() || dir.join(seg).join("mod.rs").exists();
        if !seg.is_empty() && child && !code[..start].ends_with("::") {
            paths.extend(expand(&here, &code[start..]));
        }
    }
    let mut files: Vec<PathBuf> = paths
        .iter()
        .filter_map(|p| file_of(p))
        .filter(|f| f != path)
        .collect();
    files.sort();
    files.dedup();
    files
}

#[test]
fn no_import_circle_between_files() {
    let edges: BTreeMap<PathBuf, Vec<PathBuf>> = (sources().into_iter())
        .map(|(p, text)| {
            let files = imported_files(&p, &code_only(&text));
            (p, files)
        })
        .collect();
    // A file is in a circle when it reaches itself.
    let reach = |from: &PathBuf| {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = edges[from].clone();
        while let Some(f) = todo.pop() {
            if seen.insert(f.clone()) {
                todo.extend(edges.get(&f).cloned().unwrap_or_default());
            }
        }
        seen
    };
    let circles: Vec<String> = (edges.keys())
        .filter(|f| reach(f).contains(*f))
        .map(|f| {
            let back: Vec<String> = (edges[f].iter())
                .filter(|g| reach(g).contains(f))
                .map(|g| g.display().to_string())
                .collect();
            format!("{} ⇄ {}", f.display(), back.join(", "))
        })
        .collect();
    assert!(
        circles.is_empty(),
        "files that import each other:\n{circles:#?}"
    );
}
