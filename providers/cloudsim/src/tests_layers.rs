//! The crate's layering, read from its own sources: no module imports another that
//! (transitively) imports it back, nothing below the faces (the engine, the sandboxes,
//! the probes' network checks) imports a face, and nothing below them names the `eci`
//! client crate's types either (the engine has its own, `engine::spec`). Imports are the paths written in `use`
//! statements and in code (`crate::`, `super::`, `self::`, and a child module named
//! directly); a path counts for the deepest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// Every module of `src/` with its source (the binaries aside); a `#[path]` test file
/// `x_tests.rs` is `x::tests`.
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("reading src") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "bin") {
                    dirs.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut m: Module = rel
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            if matches!(m.last().map(String::as_str), Some("mod" | "lib")) {
                m.pop();
            }
            if let Some(base) = m.last().and_then(|l| l.strip_suffix("_tests")) {
                let base = base.to_string();
                m.pop();
                m.extend([base, "tests".into()]);
            }
            let text = std::fs::read_to_string(&path).expect("reading a source file");
            out.insert(m, text);
        }
    }
    out
}

/// The source without comments, string literals and character literals.
fn code_of(src: &str) -> String {
    let b = src.as_bytes();
    let (mut out, mut i) = (String::with_capacity(src.len()), 0);
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if let Some(hashes) = rest
            .strip_prefix('r')
            .map(|r| r.len() - r.trim_start_matches('#').len())
            .filter(|h| rest[1 + h..].starts_with('"'))
        {
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            i += body
                + rest[body..]
                    .find(&close)
                    .map_or(rest.len(), |e| e + close.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' {
            // A character literal ('x', '\n', '\''), or a lifetime ('a), which stays.
            let mut chars = rest[1..].char_indices();
            match (chars.next(), chars.next()) {
                (Some((_, '\\')), _) => {
                    i += 3 + rest
                        .get(3..)
                        .and_then(|r| r.find('\''))
                        .map_or(0, |e| e + 1);
                }
                (Some(_), Some((j, '\''))) => i += 1 + j + 1,
                _ => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let c = rest.chars().next().expect("not at the end");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `a::{b, c::{d, e}}` as its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or_default();
        return vec![path.replace(' ', "")];
    };
    let (prefix, inner) = (
        &tree[..open],
        &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())],
    );
    let (mut parts, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(p))
        .map(|p| format!("{}{p}", prefix.replace(' ', "")))
        .collect()
}

/// The paths a piece of code names: `use` trees and paths of two segments or more.
fn paths_of(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let boundary = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric();
        let tail = &rest[at + 4..];
        let end = tail.find(';').unwrap_or(tail.len());
        if boundary {
            paths.extend(expand(&tail[..end]));
        }
        rest = &tail[end.min(tail.len())..];
    }
    let bytes = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if ident(bytes[i]) && (i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == b':')) {
            let start = i;
            while i < bytes.len() && (ident(bytes[i]) || code[i..].starts_with("::")) {
                i += if bytes[i] == b':' { 2 } else { 1 };
            }
            let path = code[start..i].trim_end_matches(':');
            if path.contains("::") {
                paths.push(path.to_string());
            }
        } else {
            i += 1;
        }
    }
    paths
}

/// The module a path written in module `at` names (the deepest one); `None` for another
/// crate's path.
fn resolve(mods: &BTreeMap<Module, String>, at: &Module, path: &str) -> Option<Module> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let (mut m, mut rest): (Module, &[&str]) = match segs.first()? {
        &"crate" => (Vec::new(), &segs[1..]),
        &"super" | &"self" => {
            let mut m = at.clone();
            let mut rest = &segs[..];
            while let Some((first, tail)) = rest.split_first() {
                match *first {
                    "super" => drop(m.pop()),
                    "self" => {}
                    _ => break,
                }
                rest = tail;
            }
            (m, rest)
        }
        first => {
            let mut child = at.clone();
            child.push(first.to_string());
            if !mods.contains_key(&child) {
                return None;
            }
            (at.clone(), &segs[..])
        }
    };
    while let Some((first, tail)) = rest.split_first() {
        let mut next = m.clone();
        next.push(first.to_string());
        if !mods.contains_key(&next) {
            break;
        }
        (m, rest) = (next, tail);
    }
    Some(m)
}

fn imports() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let mut edges = BTreeMap::new();
    for (m, text) in &mods {
        let code = code_of(text);
        // In an inline `mod tests { .. }` (to the file's end), `super` is this module.
        let (own, tests) = match code.find("mod tests {") {
            Some(at) => (&code[..at], &code[at..]),
            None => (&code[..], ""),
        };
        let mut in_tests = m.clone();
        in_tests.push("tests".into());
        let found: BTreeSet<Module> = paths_of(own)
            .iter()
            .filter_map(|p| resolve(&mods, m, p))
            .chain(
                paths_of(tests)
                    .iter()
                    .filter_map(|p| resolve(&mods, &in_tests, p)),
            )
            .filter(|t| t != m)
            .collect();
        edges.insert(m.clone(), found);
    }
    edges
}

/// Modules `from` reaches through its imports.
fn reach(edges: &BTreeMap<Module, BTreeSet<Module>>, from: &Module) -> BTreeSet<Module> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&Module> = edges.get(from).into_iter().flatten().collect();
    while let Some(m) = todo.pop() {
        if seen.insert(m.clone()) {
            todo.extend(edges.get(m).into_iter().flatten());
        }
    }
    seen
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let edges = imports();
    assert!(edges.len() > 40, "found only {} modules", edges.len());
    let cycles: Vec<String> = edges
        .keys()
        .filter(|m| reach(&edges, m).contains(*m))
        .map(name)
        .collect();
    assert!(cycles.is_empty(), "modules on an import cycle: {cycles:?}");
}

#[test]
fn nothing_below_the_faces_imports_a_face() {
    let edges = imports();
    let face = |m: &Module| m.first().is_some_and(|f| f == "eci");
    for (m, targets) in &edges {
        if m.is_empty() || face(m) || m.first().is_some_and(|f| f == "tests_layers") {
            continue;
        }
        let faces: Vec<String> = targets.iter().filter(|t| face(t)).map(name).collect();
        assert!(
            faces.is_empty(),
            "{} imports the face modules {faces:?}",
            name(m)
        );
    }
}

/// Where a module's code names the `eci` client crate: `eci::...` or `::eci::...`, not
/// `crate::eci::...` (the face) nor `x_eci::...`; each as the path written from there.
fn eci_paths(code: &str) -> Vec<String> {
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = code.as_bytes();
    code.match_indices("eci::")
        .filter(|(at, _)| {
            let before = &b[..*at];
            match before {
                [.., c] if ident(*c) => false,
                [.., c, b':', b':'] if ident(*c) => false,
                _ => true,
            }
        })
        .map(|(at, _)| {
            let len = code[at..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(code.len() - at);
            code[at..at + len].to_string()
        })
        .collect()
}

#[test]
fn nothing_below_the_faces_names_the_eci_crate() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let below =
        |m: &Module| !m.is_empty() && !m.first().is_some_and(|f| f == "eci" || f == "tests_layers");
    assert!(
        mods.keys()
            .any(|m| m.first().is_some_and(|f| f == "engine"))
    );
    assert!(
        mods.keys()
            .any(|m| m.first().is_some_and(|f| f == "sandbox"))
    );
    for (m, text) in mods.iter().filter(|(m, _)| below(m)) {
        let named = eci_paths(&code_of(text));
        assert!(
            named.is_empty(),
            "{} names the eci crate: {named:?}",
            name(m)
        );
    }
    assert_eq!(
        eci_paths("use eci::wire::{A, B};\nlet x = ::eci::wire::X;\ncrate::eci::F; my_eci::G;"),
        ["eci::wire::", "eci::wire::X"]
    );
}

#[test]
fn the_reader_sees_imports() {
    let edges = imports();
    let of = |m: &str| &edges[&m.split("::").map(String::from).collect::<Module>()];
    let api = of("eci::api");
    assert!(api.contains(&vec!["eci".to_string(), "face".to_string()]));
    assert!(api.contains(&vec!["engine".to_string(), "faults".to_string()]));
    assert!(of("engine::lifecycle").contains(&vec!["engine".to_string(), "inner".to_string()]));
    assert_eq!(
        expand("super::{a, b::{c, d as e}}"),
        ["super::a", "super::b::c", "super::b::d"]
    );
    assert_eq!(
        code_of("a // b\n\"c::d\" r#\"e::f\"# 'g' '\\'' <'h>"),
        "a \n\"\" \"\"   <'h>"
    );
}
