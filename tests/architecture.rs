//! The house has floors: every top-level module of `src/` imports only from floors below its own,
//! no two modules import each other, and no files of one folder import each other round a circle.
//!
//! The floor table is the one in `docs/architecture.md` (between `<!-- floors -->` markers); the
//! README shows the same table, and a test here holds the two equal. References are read from the
//! source text: `use crate::…` (groups included), `crate::…` paths anywhere in code, and `super::`
//! paths resolved against the file's own module (a file mounted by `#[path]` counts as the file it
//! is). Comments, string literals and `#[cfg(test)]`
//! modules are left out: a unit test may reach up a floor for a fixture, the product may not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One reference to a crate path, resolved from the crate root.
#[derive(Debug, Clone)]
struct Reference {
    /// `src/…` path of the file that makes it.
    file: String,
    line: usize,
    path: Vec<String>,
}

/// Code with comments and string / char literals replaced by spaces (newlines kept, so byte
/// offsets and line numbers stay those of the file).
fn blank_comments_and_literals(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in out.iter_mut().take(to).skip(from) {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = src[i..].find('\n').map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let (mut depth, mut j) = (1, i + 2);
                while j < b.len() && depth > 0 {
                    if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                        depth += 1;
                        j += 2;
                    } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            b'r' if raw_string_start(b, i) && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) => {
                // A raw string: r"…", r#"…"#, …
                let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let body = i + 2 + hashes;
                let end = src[body..]
                    .find(&close)
                    .map_or(b.len(), |n| body + n + close.len());
                blank(&mut out, i, end);
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i, j + 1);
                i = j + 1;
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{1F600}'), not a lifetime ('a).
                let end = if b.get(i + 1) == Some(&b'\\') {
                    src[i + 3..].find('\'').map(|n| i + 3 + n + 1)
                } else {
                    let ch = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    (b.get(i + 1 + ch) == Some(&b'\'')).then_some(i + 2 + ch)
                };
                match end {
                    Some(end) => {
                        blank(&mut out, i, end);
                        i = end;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An `r` that opens a raw string: `r"…"`, `br"…"`, `cr"…"`, not the end of a name.
fn raw_string_start(b: &[u8], i: usize) -> bool {
    let before = |k: usize| i.checked_sub(k).map(|j| b[j]);
    !ident_byte(before(1)) || (matches!(before(1), Some(b'b' | b'c')) && !ident_byte(before(2)))
}

fn ident_byte(c: Option<u8>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// `#[cfg(test)] mod name { … }` blanked out (what `cargo build` leaves out).
fn blank_test_modules(code: &str) -> String {
    let mut out = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(n) = code[from..].find("#[cfg(test)]") {
        let at = from + n;
        let rest = code[at + 12..].trim_start();
        let rest = rest.strip_prefix("pub ").unwrap_or(rest).trim_start();
        let is_mod = rest.starts_with("mod ")
            && rest
                .find(['{', ';'])
                .is_some_and(|k| rest.as_bytes()[k] == b'{');
        from = at + 12;
        if !is_mod {
            continue;
        }
        let Some(open) = code[at..].find('{').map(|k| at + k) else {
            break;
        };
        let (mut depth, mut j) = (0usize, open);
        while j < code.len() {
            match code.as_bytes()[j] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        for c in out.iter_mut().take(j + 1).skip(at) {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = j + 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The paths of a use tree starting at `at` (just after `crate::` or `super::`), each as its
/// segments: `a::{b, c::{d, self}}` → `a::b`, `a::c::d`, `a::c`. Returns them and where the tree
/// ended.
fn use_tree(code: &[u8], mut at: usize, prefix: &[String]) -> (Vec<Vec<String>>, usize) {
    let skip_ws = |at: &mut usize| {
        while *at < code.len() && code[*at].is_ascii_whitespace() {
            *at += 1;
        }
    };
    let mut path = prefix.to_vec();
    loop {
        skip_ws(&mut at);
        if code.get(at) == Some(&b'{') {
            at += 1;
            let mut all = Vec::new();
            loop {
                skip_ws(&mut at);
                match code.get(at) {
                    Some(b'}') => return (all, at + 1),
                    Some(b',') => at += 1,
                    None => return (all, at),
                    _ => {
                        let (mut sub, end) = use_tree(code, at, &path);
                        all.append(&mut sub);
                        // Anything after the subtree up to `,` or `}` (`as name`) is skipped.
                        at = end;
                        while at < code.len() && !matches!(code[at], b',' | b'}') {
                            at += 1;
                        }
                    }
                }
            }
        }
        if code.get(at) == Some(&b'*') {
            return (vec![path], at + 1);
        }
        let start = at;
        while ident_byte(code.get(at).copied()) {
            at += 1;
        }
        if at == start {
            return (vec![path], at);
        }
        let segment = String::from_utf8_lossy(&code[start..at]).into_owned();
        if segment != "self" {
            path.push(segment);
        }
        if code.get(at) == Some(&b':') && code.get(at + 1) == Some(&b':') {
            at += 2;
        } else {
            return (vec![path], at);
        }
    }
}

/// Every `crate::…` and `super::…` reference of one file's code, resolved from the crate root.
fn references(code: &str, module: &[String], file: &str) -> Vec<Reference> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    for (at, _) in code.match_indices("crate::") {
        let before = at.checked_sub(1).map(|k| bytes[k]);
        if ident_byte(before) || before == Some(b':') {
            continue;
        }
        let (paths, _) = use_tree(bytes, at + "crate::".len(), &[]);
        found.extend(paths.into_iter().map(|path| Reference {
            file: file.to_string(),
            line: line_of(at),
            path,
        }));
    }
    // `use crate as x;` / `use crate;`: the crate root under another name.
    for (at, _) in code.match_indices("crate") {
        let before = at.checked_sub(1).map(|k| bytes[k]);
        let rest = code[at + 5..].trim_start();
        if !ident_byte(before)
            && before != Some(b':')
            && !ident_byte(bytes.get(at + 5).copied())
            && (rest.starts_with("as ") || rest.starts_with(';'))
        {
            found.push(Reference {
                file: file.to_string(),
                line: line_of(at),
                path: Vec::new(),
            });
        }
    }
    for (at, _) in code.match_indices("super::") {
        let before = at.checked_sub(1).map(|k| bytes[k]);
        if ident_byte(before) || before == Some(b':') {
            continue;
        }
        let mut levels = 0;
        let mut k = at;
        while code[k..].starts_with("super::") {
            levels += 1;
            k += "super::".len();
        }
        let Some(base) = module.len().checked_sub(levels) else {
            continue;
        };
        let (paths, _) = use_tree(bytes, k, &module[..base]);
        found.extend(paths.into_iter().map(|path| Reference {
            file: file.to_string(),
            line: line_of(at),
            path,
        }));
    }
    found.sort_by_key(|r| r.line);
    found
}

/// `src/a/b.rs` → module `[a, b]`; `src/a/mod.rs` → `[a]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Everything wrong with the floors of the crate under `root` (`root/src/…`), one message each,
/// naming the file, the line and the rule.
fn violations(root: &Path, floors: &BTreeMap<String, u32>) -> Vec<String> {
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut refs = Vec::new();
    let mut wrong = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap_or(f);
        let module = module_of(rel);
        let Some(top) = module.first().cloned() else {
            continue;
        };
        if top == "main" {
            continue;
        }
        if top == "lib" {
            // The crate root only declares the floors: anything it imported or re-exported would
            // be reachable as `crate::name` from every floor, past this check.
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let code = blank_comments_and_literals(&text);
            for (n, line) in code.lines().enumerate() {
                let line = line.trim();
                if !line.is_empty() && !line.starts_with("pub mod ") && !line.starts_with('#') {
                    wrong.push(format!(
                        "src/lib.rs:{}: `{line}`: the crate root declares modules and nothing else",
                        n + 1
                    ));
                }
            }
            continue;
        }
        modules.insert(top);
        keys.insert(module.join("/"));
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let code = blank_test_modules(&blank_comments_and_literals(&text));
        let shown = format!("src/{}", rel.display());
        refs.extend(
            references(&code, &module, &shown)
                .into_iter()
                .map(|r| (module.clone(), r)),
        );
    }

    for m in &modules {
        if !floors.contains_key(m) {
            wrong.push(format!(
                "src/{m}: not in the floor table (docs/architecture.md): give it a floor"
            ));
        }
    }
    for m in floors.keys() {
        if !modules.contains(m) {
            wrong.push(format!(
                "the floor table names `{m}`, which src/ does not have"
            ));
        }
    }

    // (from, to) → the first place it happens
    let mut module_edges: BTreeMap<(String, String), Reference> = BTreeMap::new();
    let mut file_edges: BTreeMap<(String, String), Reference> = BTreeMap::new();
    for (module, r) in &refs {
        let from = &module[0];
        let Some(to) = r.path.first() else {
            wrong.push(format!(
                "{}:{}: names the crate root itself (`crate::*`, `crate as …`, `super::*` up to \
                 the root): that reaches every floor at once; name the module",
                r.file, r.line
            ));
            continue;
        };
        if !modules.contains(to) {
            wrong.push(format!(
                "{}:{}: `crate::{}`: no module of src/ is called `{to}`",
                r.file,
                r.line,
                r.path.join("::")
            ));
            continue;
        }
        if from != to {
            module_edges
                .entry((from.clone(), to.clone()))
                .or_insert_with(|| r.clone());
            if let (Some(&f), Some(&t)) = (floors.get(from), floors.get(to)) {
                if f <= t {
                    let rule = if f == t {
                        "a module imports nothing from its own floor"
                    } else {
                        "a module imports only from floors below its own"
                    };
                    wrong.push(format!(
                        "{}:{}: `crate::{}`: {from} (floor {f}) imports {to} (floor {t}); {rule}",
                        r.file,
                        r.line,
                        r.path.join("::")
                    ));
                }
            }
            continue;
        }
        // Inside one folder: the file the path names (the longest key it starts with).
        let key = module.join("/");
        let named = (1..=r.path.len())
            .rev()
            .map(|k| r.path[..k].join("/"))
            .find(|cand| keys.contains(cand));
        if let Some(cand) = named {
            let related = cand == key
                || key.starts_with(&format!("{cand}/"))
                || cand.starts_with(&format!("{key}/"));
            if !related {
                file_edges.entry((key, cand)).or_insert_with(|| r.clone());
            }
        }
    }

    for ((a, b), r) in &module_edges {
        if a < b {
            if let Some(back) = module_edges.get(&(b.clone(), a.clone())) {
                wrong.push(format!(
                    "{a} and {b} import each other ({}:{} and {}:{}); no two modules may",
                    r.file, r.line, back.file, back.line
                ));
            }
        }
    }
    for circle in circles(&file_edges) {
        let places: Vec<String> = circle
            .iter()
            .zip(circle.iter().cycle().skip(1))
            .filter_map(|(a, b)| file_edges.get(&(a.clone(), b.clone())))
            .map(|r| format!("{}:{}", r.file, r.line))
            .collect();
        wrong.push(format!(
            "files of one folder import each other round a circle: {} → {} ({}); no circle between files",
            circle.join(" → "),
            circle[0],
            places.join(", ")
        ));
    }
    wrong
}

/// The circles of a directed graph (its strongly connected parts of more than one node), each in
/// an order that follows its edges where it can.
fn circles(edges: &BTreeMap<(String, String), Reference>) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
        next.entry(b).or_default();
    }
    // Two nodes share a part when each reaches the other; graphs here are tiny.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(n) = todo.pop() {
            for &m in next.get(n).into_iter().flatten() {
                if seen.insert(m) {
                    todo.push(m);
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&str, BTreeSet<&str>> = next.keys().map(|&n| (n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for (&n, r) in &reaches {
        if done.contains(n) || !r.contains(n) {
            continue;
        }
        let mut part = vec![n.to_string()];
        let mut at = n;
        // Walk the circle's edges from n back to n.
        while let Some(&m) = next[at]
            .iter()
            .find(|m| **m != n && reaches[*m].contains(n) && !part.iter().any(|p| p == *m))
        {
            part.push(m.to_string());
            at = m;
        }
        for (&m, rm) in &reaches {
            if r.contains(m) && rm.contains(n) {
                done.insert(m);
                if !part.iter().any(|p| p == m) {
                    part.push(m.to_string());
                }
            }
        }
        out.push(part);
    }
    out
}

/// The rows of the floor table between `<!-- floors -->` and `<!-- /floors -->`:
/// `| 3 | risk, strategy, wallet | … |` → risk, strategy and wallet on floor 3.
fn floor_table(markdown: &str) -> Result<BTreeMap<String, u32>, String> {
    let start = markdown
        .find("<!-- floors -->")
        .ok_or("no `<!-- floors -->` marker")?;
    let end = markdown[start..]
        .find("<!-- /floors -->")
        .map(|n| start + n)
        .ok_or("no `<!-- /floors -->` marker")?;
    let mut floors = BTreeMap::new();
    for line in markdown[start..end].lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, floor, modules, ..] = cells.as_slice() else {
            continue;
        };
        let Ok(floor) = floor.parse::<u32>() else {
            continue;
        };
        for m in modules.split(',') {
            let m = m.trim().trim_matches('`').trim_end_matches('/');
            let m = m.trim_end_matches(".rs");
            if m.is_empty() {
                continue;
            }
            if floors.insert(m.to_string(), floor).is_some() {
                return Err(format!("`{m}` is on two floors"));
            }
        }
    }
    if floors.is_empty() {
        return Err("the floor table has no rows".into());
    }
    Ok(floors)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn floors() -> BTreeMap<String, u32> {
    floor_table(&read(&repo().join("docs/architecture.md")))
        .unwrap_or_else(|e| panic!("docs/architecture.md: {e}"))
}

#[test]
fn every_import_goes_down_a_floor_and_nothing_goes_round_a_circle() {
    let wrong = violations(&repo(), &floors());
    assert!(
        wrong.is_empty(),
        "the floors are broken:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_readme_shows_the_floor_table_the_test_reads() {
    let readme =
        floor_table(&read(&repo().join("README.md"))).unwrap_or_else(|e| panic!("README.md: {e}"));
    assert_eq!(
        readme,
        floors(),
        "the README's floor table differs from docs/architecture.md's"
    );
}

#[test]
fn every_folder_opens_with_what_it_is_for_and_its_floor() {
    let floors = floors();
    let src = repo().join("src");
    let mut wrong = Vec::new();
    for (module, floor) in &floors {
        let folder = src.join(module).join("mod.rs");
        let file = src.join(format!("{module}.rs"));
        let path = if folder.exists() { folder } else { file };
        let text = read(&path);
        let first = text.lines().next().unwrap_or_default();
        let wanted = format!("(floor {floor}");
        if !first.starts_with("//! ") || !first.contains(&wanted) {
            wrong.push(format!(
                "{}: the first line should say what it is for and `{wanted}, …)`: {first:?}",
                path.display()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A tree with every kind of mistake the check must catch, and the things it must not count.
#[test]
fn an_upward_import_a_pair_and_a_circle_are_named_with_file_line_and_rule() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let write = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write(
        "src/lib.rs",
        "pub mod ground;\npub mod low;\npub mod high;\n",
    );
    write(
        "src/ground.rs",
        "//! (floor 0)\n// crate::high::X in a comment\nconst S: &str = \"crate::high::X\";\n\
         #[cfg(test)]\nmod tests {\n    use crate::high::Y;\n}\n",
    );
    write(
        "src/low/mod.rs",
        "//! (floor 1)\npub mod a;\nuse crate::{ground, high::{deep::Z}};\n",
    );
    write(
        "src/low/a.rs",
        "use super::super::ground::G;\nfn f() { super::b::g() }\n",
    );
    write("src/low/b.rs", "use crate::low::a::F;\n");
    write(
        "src/high/mod.rs",
        "pub mod deep;\nfn f() -> crate::low::L { loop {} }\n",
    );
    write("src/high/deep.rs", "use crate::ground::G;\n");
    let floors: BTreeMap<String, u32> = [("ground", 0), ("low", 1), ("high", 2)]
        .into_iter()
        .map(|(m, f)| (m.to_string(), f))
        .collect();
    let wrong = violations(dir.path(), &floors);
    assert_eq!(
        wrong,
        vec![
            "src/low/mod.rs:3: `crate::high::deep::Z`: low (floor 1) imports high (floor 2); \
             a module imports only from floors below its own"
                .to_string(),
            "high and low import each other (src/high/mod.rs:2 and src/low/mod.rs:3); no two \
             modules may"
                .to_string(),
            "files of one folder import each other round a circle: low/a → low/b → low/a \
             (src/low/a.rs:2, src/low/b.rs:1); no circle between files"
                .to_string(),
        ],
        "{wrong:#?}"
    );

    // The same floor is refused too, and a module missing from the table is named.
    let same: BTreeMap<String, u32> = [("ground", 0), ("low", 1)]
        .into_iter()
        .map(|(m, f)| (m.to_string(), f))
        .collect();
    let wrong = violations(dir.path(), &same);
    assert!(
        wrong.contains(
            &"src/high: not in the floor table (docs/architecture.md): give it a floor".to_string()
        ),
        "{wrong:#?}"
    );
    let flat: BTreeMap<String, u32> = [("ground", 0), ("low", 1), ("high", 1)]
        .into_iter()
        .map(|(m, f)| (m.to_string(), f))
        .collect();
    let wrong = violations(dir.path(), &flat);
    assert!(
        wrong
            .iter()
            .any(|w| w.starts_with("src/high/mod.rs:2: `crate::low::L`")
                && w.ends_with("a module imports nothing from its own floor")),
        "{wrong:#?}"
    );
}

/// The ways round the check: the crate root under another name, a re-export in lib.rs, a path
/// to no module; and a raw byte string that only looks like an import.
#[test]
fn the_crate_root_is_named_only_to_reach_a_module() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let write = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write(
        "src/lib.rs",
        "//! the crate\npub mod ground;\npub mod high;\npub use high::H;\n",
    );
    write(
        "src/ground.rs",
        "use crate::*;\nuse crate as root;\nconst B: &[u8] = br#\"a\"crate::high::H\"#;\nfn f() -> crate::nowhere::X { loop {} }\n",
    );
    write("src/high.rs", "pub struct H;\n");
    let floors: BTreeMap<String, u32> = [("ground", 0), ("high", 1)]
        .into_iter()
        .map(|(m, f)| (m.to_string(), f))
        .collect();
    let wrong = violations(dir.path(), &floors);
    assert_eq!(
        wrong,
        vec![
            "src/lib.rs:4: `pub use high::H;`: the crate root declares modules and nothing else"
                .to_string(),
            "src/ground.rs:1: names the crate root itself (`crate::*`, `crate as …`, `super::*` up \
             to the root): that reaches every floor at once; name the module"
                .to_string(),
            "src/ground.rs:2: names the crate root itself (`crate::*`, `crate as …`, `super::*` up \
             to the root): that reaches every floor at once; name the module"
                .to_string(),
            "src/ground.rs:4: `crate::nowhere::X`: no module of src/ is called `nowhere`".to_string(),
        ],
        "{wrong:#?}"
    );
}

#[test]
fn the_floor_table_reads_its_markers_and_refuses_a_module_on_two_floors() {
    let doc = "text\n<!-- floors -->\n| floor | modules | for |\n|---|---|---|\n\
               | 0 | `model`, `clock.rs` | types |\n| 1 | `amm/` | maths |\n<!-- /floors -->\n| 9 | x | y |\n";
    let t = floor_table(doc).expect("a table");
    assert_eq!(
        t.into_iter().collect::<Vec<_>>(),
        vec![
            ("amm".to_string(), 1),
            ("clock".to_string(), 0),
            ("model".to_string(), 0)
        ]
    );
    let twice = "<!-- floors -->\n| 0 | a |\n| 1 | a |\n<!-- /floors -->";
    assert_eq!(floor_table(twice), Err("`a` is on two floors".to_string()));
}
