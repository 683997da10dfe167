//! The shape of `src/`, checked: the module graph (from `use crate::` and
//! `super::` paths) has no circle and no import from a lower layer to a
//! higher one (the layers of README.md's Layout section); no non-test file is
//! over 550 lines; at most one non-test function is over 80 lines; the SDK's
//! error type is named in at most two files; and the finding's status words
//! are written only in the finding model.
//!
//! Plain text reading, no parser: the code is `cargo fmt`-formatted, so a
//! function ends at the first line that is its indentation and `}`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// README.md's Layout section.
fn layout() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("## Layout")
        .expect("README has a Layout section");
    let rest = &readme[start + 3..];
    let end = rest.find("\n## ").map_or(rest.len(), |e| e + 1);
    rest[..end].to_string()
}

/// The layers of `src/`, top (may use everything below) to bottom, as
/// README.md's Layout table lists them: a module may use modules of its own
/// layer and below, never above, and no circle.
fn layers() -> Vec<Vec<String>> {
    layout()
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| layer"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').collect();
            let modules = cells.get(2).copied().unwrap_or_default();
            modules
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|m| !m.contains('/') || m.ends_with('/'))
                .map(|m| m.trim_end_matches('/').trim_end_matches(".rs").to_string())
                .collect()
        })
        .filter(|l: &Vec<String>| !l.is_empty())
        .collect()
}

struct File {
    /// The module path: `pipeline::dedupe` for `src/pipeline/dedupe.rs`.
    module: Vec<String>,
    rel: String,
    /// The text without `#[cfg(test)]` items.
    code: String,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn files() -> Vec<File> {
    let mut out = Vec::new();
    let mut dirs = vec![src()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path
                .strip_prefix(src())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if is_test_file(&rel) {
                continue;
            }
            let mut module: Vec<String> = rel
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_string)
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod")) {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            out.push(File {
                module,
                rel,
                code: without_tests(&text),
            });
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

fn is_test_file(rel: &str) -> bool {
    rel.ends_with("tests.rs") || rel.starts_with("testing/") || rel.contains("/tests/")
}

/// The text without `#[cfg(test)]` items (a module block, or the one line after).
fn without_tests(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "#[cfg(test)]" {
            let next = lines.get(i + 1).copied().unwrap_or_default();
            if next.trim_end().ends_with('{') {
                let indent = next.len() - next.trim_start().len();
                let end = (i + 2..lines.len())
                    .find(|&j| {
                        lines[j].len() - lines[j].trim_start().len() == indent
                            && lines[j].trim() == "}"
                    })
                    .unwrap_or(lines.len() - 1);
                i = end + 1;
            } else {
                i += 2;
            }
            continue;
        }
        out.push(lines[i]);
        i += 1;
    }
    out.join("\n")
}

/// The paths a file names: `use crate::…`, `use super::…`, inline `crate::…`.
fn paths(f: &File) -> Vec<Vec<String>> {
    let code: String = f
        .code
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    // use statements, braces expanded
    let mut rest = code.as_str();
    while let Some(at) = rest.find("use ") {
        let before = &rest[..at];
        rest = &rest[at + 4..];
        if !(before.is_empty() || before.ends_with(|c: char| c.is_whitespace())) {
            continue;
        }
        let Some(end) = rest.find(';') else { break };
        let stmt: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
        if stmt.starts_with("crate::") || stmt.starts_with("super::") || stmt.starts_with("self::")
        {
            for p in expand(&stmt) {
                out.push(resolve(&f.module, &p));
            }
        }
    }
    // inline crate:: paths
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + 7..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let p = format!("crate::{}", path.trim_end_matches(':'));
        out.push(resolve(&f.module, &p));
    }
    out
}

/// `a::{b, c::{d}}` → `a::b`, `a::c::d`.
fn expand(stmt: &str) -> Vec<String> {
    let Some(open) = stmt.find('{') else {
        return vec![stmt.to_string()];
    };
    let prefix = &stmt[..open];
    let inner = &stmt[open + 1..stmt.len().saturating_sub(1)];
    let mut items = Vec::new();
    let (mut depth, mut current) = (0, String::new());
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            items.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    items.push(current);
    items
        .iter()
        .filter(|i| !i.is_empty())
        .flat_map(|i| expand(&format!("{prefix}{i}")))
        .collect()
}

/// A path as seen from `module`: in `a/b.rs` (and `a/b/mod.rs`), `self` is
/// `a::b` and `super` is `a`.
fn resolve(module: &[String], path: &str) -> Vec<String> {
    let parts: Vec<&str> = path.split("::").collect();
    let mut base: Vec<String> = module.to_vec();
    let mut i = 0;
    match parts.first() {
        Some(&"crate") => {
            base.clear();
            i = 1;
        }
        Some(&"self") => i = 1,
        _ => {}
    }
    while parts.get(i) == Some(&"super") {
        base.pop();
        i += 1;
    }
    base.extend(parts[i..].iter().map(|s| s.to_string()));
    base
}

/// The file a module path lands in: the longest known module prefix.
fn owner<'a>(modules: &'a BTreeSet<Vec<String>>, path: &[String]) -> Option<&'a Vec<String>> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n].to_vec()))
}

/// Edges between files: `from → to`, ignoring a child's references to its
/// ancestors (it is inside them) and counting a parent's to its children.
fn graph(files: &[File]) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in files {
        for p in paths(f) {
            let Some(to) = owner(&modules, &p) else {
                continue;
            };
            if *to == f.module || f.module.starts_with(to) {
                continue;
            }
            edges
                .entry(f.module.clone())
                .or_default()
                .insert(to.clone());
        }
        if f.module.len() > 1 {
            let parent = f.module[..f.module.len() - 1].to_vec();
            if modules.contains(&parent) {
                edges.entry(parent).or_default().insert(f.module.clone());
            }
        }
    }
    edges
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("::")
    }
}

/// A circle in `edges`, when there is one: its modules, the first again last.
fn circle(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<String>> {
    // Depth-first search for a back edge.
    fn visit(
        n: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut circle: Vec<String> = stack[at..].iter().map(|s| name(s)).collect();
                    circle.push(name(m));
                    return Some(circle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    edges.keys().find_map(|n| {
        if state.contains_key(n) {
            None
        } else {
            visit(n, edges, &mut state, &mut Vec::new())
        }
    })
}

#[test]
fn the_module_graph_has_no_circle() {
    if let Some(circle) = circle(&graph(&files())) {
        panic!("import circle: {}", circle.join(" -> "));
    }
}

/// Nor at the level of `src/`'s top modules (`config`, `control`, ...):
/// a leaf file inside a module does not make a circle between modules right.
#[test]
fn the_top_level_module_graph_has_no_circle() {
    let mut top: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (from, tos) in graph(&files()) {
        let Some(a) = from.first() else { continue };
        for to in tos {
            if let Some(b) = to.first().filter(|b| *b != a) {
                top.entry(vec![a.clone()])
                    .or_default()
                    .insert(vec![b.clone()]);
            }
        }
    }
    if let Some(circle) = circle(&top) {
        panic!("import circle between top modules: {}", circle.join(" -> "));
    }
}

#[test]
fn no_module_imports_from_a_higher_layer() {
    let layers = layers();
    let layer = |m: &[String]| -> usize {
        let top = m.first().map(String::as_str).unwrap_or("lib");
        layers
            .iter()
            .position(|l| l.iter().any(|x| x == top))
            .unwrap_or_else(|| panic!("module {top} is in no layer of README's Layout table"))
    };
    let mut upward = Vec::new();
    for (from, tos) in graph(&files()) {
        for to in tos {
            if from.first() != to.first() && layer(&to) < layer(&from) {
                upward.push(format!("{} -> {}", name(&from), name(&to)));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a lower layer to a higher one: {upward:#?}"
    );
}

/// Non-test functions: (file, name, lines).
fn functions() -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    for f in files() {
        let lines: Vec<&str> = f.code.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let signature = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "async fn ",
                "pub async fn ",
                "pub(crate) async fn ",
                "pub(super) async fn ",
                "const fn ",
                "pub const fn ",
            ]
            .iter()
            .find_map(|p| t.strip_prefix(p));
            let Some(rest) = signature else { continue };
            let fn_name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let indent = line.len() - t.len();
            // A declaration without a body (a trait's) ends with `;`.
            let body_start = (i..lines.len()).find(|&j| {
                let l = lines[j].trim_end();
                l.ends_with('{') || l.ends_with(';')
            });
            let Some(start) = body_start else { continue };
            if lines[start].trim_end().ends_with(';') {
                continue;
            }
            let end = (start..lines.len()).find(|&j| {
                let l = lines[j];
                l.len() - l.trim_start().len() == indent && l.trim_start().starts_with('}')
            });
            if let Some(end) = end {
                out.push((f.rel.clone(), fn_name, end - i + 1));
            }
        }
    }
    out
}

#[test]
fn files_and_functions_stay_short() {
    let long_files: Vec<String> = files()
        .iter()
        .filter(|f| f.code.lines().count() > 550)
        .map(|f| format!("{} ({} lines)", f.rel, f.code.lines().count()))
        .collect();
    assert!(
        long_files.is_empty(),
        "non-test files over 550 lines: {long_files:?}"
    );
    let long: Vec<String> = functions()
        .into_iter()
        .filter(|(_, _, n)| *n > 80)
        .map(|(file, f, n)| format!("{file}: {f} ({n} lines)"))
        .collect();
    assert!(
        long.len() <= 1,
        "non-test functions over 80 lines (one may be): {long:#?}"
    );
}

#[test]
fn the_sdk_error_type_is_named_in_at_most_two_files() {
    let naming: Vec<String> = files()
        .iter()
        .filter(|f| f.code.contains("SdkError"))
        .map(|f| f.rel.clone())
        .collect();
    assert!(naming.len() <= 2, "files naming SdkError: {naming:?}");
}

#[test]
fn status_words_are_written_only_in_the_finding_model() {
    let words = [
        "\"FAILED\"",
        "\"PASSED\"",
        "\"WARNING\"",
        "\"NOT_AVAILABLE\"",
        "\"ARCHIVED\"",
        "\"ACTIVE\"",
        "\"NEW\"",
        "\"NOTIFIED\"",
        "\"SUPPRESSED\"",
        "\"RESOLVED\"",
    ];
    let outside: Vec<String> = files()
        .iter()
        .filter(|f| !f.rel.starts_with("finding"))
        .flat_map(|f| {
            words
                .iter()
                .filter(|w| f.code.contains(*w))
                .map(|w| format!("{} writes {w}", f.rel))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}

/// The `src/` tree README's Layout draws (the code block's lines up to `tests/`).
fn readme_tree() -> Vec<String> {
    let layout = layout();
    let block = layout
        .split("```")
        .nth(1)
        .expect("Layout has a code block with the tree");
    block
        .lines()
        .skip_while(|l| !l.starts_with("src/"))
        .take_while(|l| !l.starts_with("tests/"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_src_path_the_readme_names_exists_and_every_module_has_its_line() {
    let tree = readme_tree();
    let src = src();
    // (path, the directory of its line's first entry, which bare names are in)
    let mut named: Vec<(String, String)> = Vec::new();
    let mut dir = String::new();
    for line in &tree {
        if line.starts_with("  ") && !line.starts_with("   ") {
            let first = line.split_whitespace().next().unwrap_or_default();
            dir = match first.rfind('/') {
                Some(i) => first[..=i].to_string(),
                None => String::new(),
            };
        }
        for word in line
            .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';' | ':' | '`'))
        {
            let is_path =
                word.ends_with(".rs") || (word.ends_with('/') && word.len() > 1 && word != "src/");
            if is_path
                && word.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '/' | '.')
                })
            {
                named.push((word.to_string(), dir.clone()));
            }
        }
    }
    assert!(named.len() > 30, "the tree's paths were found: {named:?}");
    let missing: Vec<String> = named
        .iter()
        .filter(|(p, d)| !src.join(p).exists() && !src.join(format!("{d}{p}")).exists())
        .map(|(p, d)| format!("{p} (in {d})"))
        .collect();
    assert!(
        missing.is_empty(),
        "README's Layout names paths src/ does not have: {missing:?}"
    );
    // Every top-level module has a line of its own in the tree and a layer.
    let layers: Vec<String> = layers().concat();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let module = name.trim_end_matches(".rs").to_string();
        if module == "testing" {
            continue;
        }
        let shown = if path.is_dir() {
            format!("{name}/")
        } else {
            name.clone()
        };
        let has_line = tree.iter().any(|l| {
            let t = l.trim_start();
            t.starts_with(&shown)
                || t.starts_with(&format!("{module}/"))
                || t.starts_with(&format!("{module}.rs"))
        });
        assert!(has_line, "README's Layout tree has no line for src/{shown}");
        assert!(
            layers.contains(&module) || module == "lib",
            "README's Layout table puts src/{shown} in no layer"
        );
    }
}

#[test]
fn no_control_id_is_spelled_outside_the_controls() {
    let mut found = Vec::new();
    for f in files() {
        if f.rel.starts_with("control/") {
            continue;
        }
        for line in f.code.lines() {
            let code = line.split("//").next().unwrap_or_default();
            let mut rest = code;
            while let Some(at) = rest.find("\"Neptune.") {
                let tail = &rest[at + 9..];
                let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
                if !digits.is_empty() && tail[digits.len()..].starts_with('"') {
                    found.push(format!("{}: {}", f.rel, line.trim()));
                }
                rest = tail;
            }
        }
    }
    assert!(
        found.is_empty(),
        "control ids spelled outside src/control/: {found:#?}"
    );
}
