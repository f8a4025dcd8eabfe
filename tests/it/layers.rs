//! The rules between the layers (docs/architecture.md), read from the code: every `crate::`,
//! `super::` and `self::` path in `src/` (in `use` lines and in expressions, groups included)
//! is resolved to the module it names, and checked against [`LAYERS`] and against the rule
//! that no two files of `src/config/` import each other. Comments, doc comments (their
//! intra-doc links), strings and character literals are not code and are not read.
//!
//! A violation names its file and line. A new top-level module has no layer until it is added
//! to [`LAYERS`], and fails the test until then.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, lowest first, and the layers each may import besides its own. `vsphere` sits
/// beside the configuration, not above it: it owns its option types and the caller converts.
/// Where the report belongs is not settled (docs/architecture.md): it is placed where it reads
/// today, above the exporter, and its command (`anyhow`, the `report` subcommand's flags) with
/// the entry.
const LAYERS: &[Layer] = &[
    Layer {
        name: "bottom",
        modules: &["backup", "publish", "secret"],
        imports: &[],
    },
    Layer {
        name: "configuration",
        modules: &["config", "webconfig"],
        imports: &["bottom"],
    },
    Layer {
        name: "vsphere",
        modules: &["vsphere"],
        imports: &["bottom"],
    },
    Layer {
        name: "sources",
        modules: &["source"],
        imports: &["bottom", "configuration", "vsphere"],
    },
    Layer {
        name: "collectors",
        modules: &["collector"],
        imports: &["bottom", "configuration", "vsphere", "sources"],
    },
    Layer {
        name: "exporter",
        modules: &["exporter"],
        imports: &[
            "bottom",
            "configuration",
            "vsphere",
            "sources",
            "collectors",
        ],
    },
    Layer {
        name: "report",
        modules: &["report"],
        imports: &[
            "bottom",
            "configuration",
            "vsphere",
            "sources",
            "collectors",
            "exporter",
        ],
    },
    Layer {
        name: "server",
        modules: &["server"],
        imports: &[
            "bottom",
            "configuration",
            "vsphere",
            "sources",
            "collectors",
            "exporter",
            "report",
        ],
    },
    Layer {
        name: "entry",
        modules: &["cli", "reload", "main", "lib"],
        imports: &[
            "bottom",
            "configuration",
            "vsphere",
            "sources",
            "collectors",
            "exporter",
            "report",
            "server",
        ],
    },
];

/// Files that sit in another layer than their module's.
const FILE_LAYERS: &[(&str, &str)] = &[("src/report/command.rs", "entry")];

/// Directories none of whose files may import each other (their `mod.rs` aside, which declares
/// and re-exports them).
const NO_CYCLES_IN: &[&str] = &["src/config"];

struct Layer {
    name: &'static str,
    modules: &'static [&'static str],
    imports: &'static [&'static str],
}

/// One path in the code, resolved: the file and line it is written at, and the module path it
/// names from the crate root (`["config", "Secret"]`).
#[derive(Debug, Clone, PartialEq)]
struct Reference {
    line: usize,
    written: String,
    absolute: Vec<String>,
}

#[test]
fn every_import_keeps_the_layer_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = rust_files(&root.join("src"));
    let modules: BTreeMap<Vec<String>, String> =
        files.iter().map(|f| (module_of(f), f.clone())).collect();
    let mut violations = Vec::new();
    let mut edges: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut seen = 0;
    for file in &files {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let from = layer_of_file(file);
        if from.is_none() {
            violations.push(format!(
                "{file}: module {:?} has no layer in LAYERS",
                top(file)
            ));
        }
        for r in references(&text, &module_of(file)) {
            seen += 1;
            let target_file = file_of(&modules, &r.absolute);
            if let (Some(from), Some(to)) = (from, layer_of_module(&r.absolute, &modules))
                && from.name != to.name
                && !from.imports.contains(&to.name)
            {
                violations.push(format!(
                    "{file}:{}: `{}`: the {} layer may not import the {} layer",
                    r.line, r.written, from.name, to.name
                ));
            }
            if let Some(target) = target_file
                && target != *file
                && same_cycle_free_dir(file, &target)
            {
                edges.entry((file.clone(), target)).or_insert(r.line);
            }
        }
    }
    for ((a, b), line) in &edges {
        if a < b
            && let Some(back) = edges.get(&(b.clone(), a.clone()))
        {
            violations.push(format!(
                "{a}:{line} and {b}:{back} import each other (files of one directory of \
                 NO_CYCLES_IN)"
            ));
        }
    }
    assert!(seen > 200, "only {seen} paths read: is the scanner broken?");
    assert!(
        violations.is_empty(),
        "layer rules broken (docs/architecture.md, \"The rules between the layers\"):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scanner_reads_groups_super_chains_and_inline_modules_and_skips_comments() {
    let text = r#"//! See [`crate::source::events`]: not an import.
/// And [`crate::collector`] neither; nor "crate::server::x" nor '{'.
use crate::{backup::labels, config::{Secret, VcenterConfig}};
use super::scalar::Timeout;
fn f() { let _ = crate::vsphere::xml::read_returnval(b"crate::exporter"); }
/* crate::report */
#[cfg(test)]
mod tests {
    use super::*;
    fn g() { let _ = '}'; super::super::channel(); }
}
fn h() { self::inner::x(); }
"#;
    let found: Vec<(usize, Vec<String>)> = references(text, &names(&["config", "raw"]))
        .into_iter()
        .map(|r| (r.line, r.absolute))
        .collect();
    let want = vec![
        (3, names(&["backup", "labels"])),
        (3, names(&["config", "Secret"])),
        (3, names(&["config", "VcenterConfig"])),
        (4, names(&["config", "scalar", "Timeout"])),
        (5, names(&["vsphere", "xml", "read_returnval"])),
        (9, names(&["config", "raw"])),
        (10, names(&["config", "channel"])),
        (12, names(&["config", "raw", "inner", "x"])),
    ];
    assert_eq!(found, want);
}

#[test]
fn a_bad_import_is_named_with_its_line_and_a_file_cycle_is_found() {
    let modules: BTreeMap<Vec<String>, String> = [
        (names(&["vsphere", "client"]), "src/vsphere/client.rs"),
        (names(&["config"]), "src/config/mod.rs"),
    ]
    .into_iter()
    .map(|(m, f)| (m, f.to_string()))
    .collect();
    let from = layer_of_file("src/vsphere/client.rs").unwrap();
    let refs = references(
        "\nuse crate::config::Secret;\n",
        &names(&["vsphere", "client"]),
    );
    let to = layer_of_module(&refs[0].absolute, &modules).unwrap();
    assert_eq!(
        (refs[0].line, from.name, to.name),
        (2, "vsphere", "configuration")
    );
    assert!(!from.imports.contains(&to.name));
    assert!(same_cycle_free_dir(
        "src/config/raw.rs",
        "src/config/backup.rs"
    ));
    assert!(!same_cycle_free_dir(
        "src/config/raw.rs",
        "src/config/mod.rs"
    ));
}

fn names(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// Every `.rs` file under `dir`, as paths relative to the package (`src/config/raw.rs`).
fn rust_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(dir.parent().unwrap()).unwrap();
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

/// The module a file holds, from the crate root: `src/config/raw.rs` is `["config", "raw"]`,
/// `src/config/mod.rs` `["config"]`, `src/lib.rs` `[]`.
fn module_of(file: &str) -> Vec<String> {
    let path = file
        .strip_prefix("src/")
        .unwrap()
        .strip_suffix(".rs")
        .unwrap();
    let mut parts: Vec<String> = path.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") || parts == ["lib"] {
        parts.pop();
    }
    parts
}

/// The top-level module of a file (`lib` and `main` for the crate roots).
fn top(file: &str) -> String {
    let path = file.strip_prefix("src/").unwrap();
    let first = path.split('/').next().unwrap();
    first.strip_suffix(".rs").unwrap_or(first).to_string()
}

fn layer_named(name: &str) -> Option<&'static Layer> {
    LAYERS.iter().find(|l| l.name == name)
}

fn layer_of_file(file: &str) -> Option<&'static Layer> {
    if let Some((_, layer)) = FILE_LAYERS.iter().find(|(f, _)| *f == file) {
        return layer_named(layer);
    }
    let top = top(file);
    LAYERS.iter().find(|l| l.modules.contains(&top.as_str()))
}

/// The layer of the file a path leads into; `None` for the crate root's own items
/// (`crate::VERSION`) and for paths outside the crate's modules.
fn layer_of_module(
    absolute: &[String],
    modules: &BTreeMap<Vec<String>, String>,
) -> Option<&'static Layer> {
    let file = file_of(modules, absolute)?;
    if file == "src/lib.rs" {
        return None;
    }
    layer_of_file(&file)
}

/// The file of the longest prefix of `absolute` that is a module of its own.
fn file_of(modules: &BTreeMap<Vec<String>, String>, absolute: &[String]) -> Option<String> {
    (0..=absolute.len())
        .rev()
        .find_map(|n| modules.get(&absolute[..n]))
        .cloned()
}

/// True when both files are in one directory of [`NO_CYCLES_IN`] and neither is its `mod.rs`.
fn same_cycle_free_dir(a: &str, b: &str) -> bool {
    let dir = |f: &str| f.rsplit_once('/').map(|(d, _)| d.to_string());
    let is_mod = |f: &str| f.ends_with("/mod.rs");
    dir(a) == dir(b)
        && dir(a).is_some_and(|d| NO_CYCLES_IN.contains(&d.as_str()))
        && !is_mod(a)
        && !is_mod(b)
}

/// Every `crate::`, `$crate::`, `super::` and `self::` path of a file's code, resolved from
/// `module` (the file's module) and the inline modules (`mod tests { … }`) around it.
fn references(text: &str, module: &[String]) -> Vec<Reference> {
    let code = code_only(text);
    let bytes = code.as_bytes();
    let line_of = |at: usize| bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
    let mut out = Vec::new();
    // Inline modules open around the current point, with the brace depth they opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'{' {
            if let Some(name) = mod_before(&code[..i]) {
                inline.push((name, depth));
            }
            depth += 1;
            i += 1;
            continue;
        }
        if b == b'}' {
            depth = depth.saturating_sub(1);
            if inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
            i += 1;
            continue;
        }
        let starts_word = i == 0 || !is_ident(bytes[i - 1]);
        if !starts_word || !(is_ident(b) || b == b'$') {
            i += 1;
            continue;
        }
        let word_end = (i + 1..bytes.len())
            .find(|&j| !is_ident(bytes[j]))
            .unwrap_or(bytes.len());
        let word = &code[i..word_end];
        let is_root = matches!(word, "crate" | "$crate" | "super" | "self");
        if !is_root || !code[word_end..].trim_start().starts_with("::") {
            i = word_end;
            continue;
        }
        let mut here: Vec<String> = module.to_vec();
        here.extend(inline.iter().map(|(n, _)| n.clone()));
        let mut leaves = Vec::new();
        let end = parse_path(bytes, i, Vec::new(), &mut leaves);
        for (at, segments) in leaves {
            if let Some(absolute) = resolve(&here, &segments) {
                out.push(Reference {
                    line: line_of(at),
                    written: segments.join("::"),
                    absolute,
                });
            }
        }
        i = end.max(word_end);
    }
    out
}

/// The name of the module whose body a `{` opens (`mod tests {`), from the code before it.
fn mod_before(before: &str) -> Option<String> {
    let before = before.trim_end();
    let name_start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |p| p + 1);
    let name = &before[name_start..];
    let keyword = before[..name_start].trim_end();
    let is_mod = keyword.ends_with("mod")
        && keyword[..keyword.len() - 3]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
    (is_mod && !name.is_empty()).then(|| name.to_string())
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Reads one path from `at` (its segments, a `{…}` group, a `*`), pushing each leaf path with
/// the position of its first segment; returns where the path ends.
fn parse_path(
    code: &[u8],
    mut at: usize,
    prefix: Vec<String>,
    out: &mut Vec<(usize, Vec<String>)>,
) -> usize {
    let skip_ws = |mut p: usize| {
        while p < code.len() && code[p].is_ascii_whitespace() {
            p += 1;
        }
        p
    };
    let start = skip_ws(at);
    let mut segments = prefix;
    at = start;
    loop {
        at = skip_ws(at);
        if at >= code.len() {
            break;
        }
        if code[at] == b'{' {
            at += 1;
            loop {
                at = skip_ws(at);
                if at >= code.len() {
                    return at;
                }
                if code[at] == b'}' {
                    return at + 1;
                }
                if code[at] == b',' {
                    at += 1;
                    continue;
                }
                let before = at;
                at = parse_path(code, at, segments.clone(), out);
                if at == before {
                    at += 1;
                }
            }
        }
        if code[at] == b'*' {
            out.push((start, segments));
            return at + 1;
        }
        let word_start = at;
        if code[at] == b'$' {
            at += 1;
        }
        while at < code.len() && is_ident(code[at]) {
            at += 1;
        }
        if at == word_start {
            break;
        }
        segments.push(String::from_utf8_lossy(&code[word_start..at]).into_owned());
        let next = skip_ws(at);
        let more = code[next..].starts_with(b"::")
            && skip_ws(next + 2) < code.len()
            && matches!(code[skip_ws(next + 2)], b'{' | b'*' | b'$' | b'a'..=b'z' | b'A'..=b'Z' | b'_');
        if !more {
            break;
        }
        at = next + 2;
    }
    if !segments.is_empty() {
        out.push((start, segments));
    }
    at
}

/// The module path a written path names from the crate root, from the module it is written in.
fn resolve(here: &[String], segments: &[String]) -> Option<Vec<String>> {
    let mut absolute: Vec<String> = Vec::new();
    for (n, segment) in segments.iter().enumerate() {
        match (n, segment.as_str()) {
            (0, "crate" | "$crate") => {}
            (0, "self") => absolute = here.to_vec(),
            (0, "super") => {
                absolute = here.to_vec();
                absolute.pop()?;
            }
            (_, "super") => {
                absolute.pop()?;
            }
            (_, "self") => {}
            (0, _) => return None,
            _ => absolute.push(segment.clone()),
        }
    }
    Some(absolute)
}

/// The text with comments, strings and character literals blanked (lines kept), so that only
/// code is read.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let after_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut nested = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    nested += 1;
                    i += 2;
                    continue;
                }
                if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    nested -= 1;
                    i += 2;
                    if nested == 0 {
                        break;
                    }
                    continue;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
            continue;
        }
        // Raw strings: r"…", r#"…"#, br"…".
        if !after_ident && (c == 'r' || (c == 'b' && next == Some('r'))) {
            let mut j = if c == 'b' { i + 2 } else { i + 1 };
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                j += 1;
                loop {
                    if j >= chars.len() {
                        break;
                    }
                    if chars[j] == '"' && (1..=hashes).all(|h| chars.get(j + h) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                for &c in &chars[i..j.min(chars.len())] {
                    blank(&mut out, c);
                }
                i = j;
                continue;
            }
        }
        if c == '"' {
            blank(&mut out, c);
            i += 1;
            while i < chars.len() {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    if let Some(&e) = chars.get(i + 1) {
                        blank(&mut out, e);
                    }
                    i += 2;
                    continue;
                }
                blank(&mut out, chars[i]);
                i += 1;
                if chars[i - 1] == '"' {
                    break;
                }
            }
            continue;
        }
        if c == '\'' {
            // '\n', '\'', '\u{…}' or 'x'; anything else is a lifetime.
            let end = if next == Some('\\') {
                (i + 3..chars.len()).find(|&j| chars[j] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                for &c in &chars[i..=end] {
                    blank(&mut out, c);
                }
                i = end + 1;
                continue;
            }
        }
        out.push(if c.is_ascii() { c } else { ' ' });
        i += 1;
    }
    out
}
