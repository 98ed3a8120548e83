//! The direction of the house, checked on the source: layers point one way (app assembly →
//! an area's pages and API → its operations and SQL → shared foundations), and no import
//! circle spans two areas. Reads `src/` as text, so it runs without a server.
//!
//! A file's imports are the module paths it names (`crate::incidents::db::find`,
//! `use super::{db, Incident}`), each resolved to the file that declares that module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Shared foundations: they never import an area, the web plumbing, the app or the config.
const FOUNDATIONS: &[&str] = &[
    "src/db.rs",
    "src/error.rs",
    "src/markdown.rs",
    "src/time.rs",
    "src/csv.rs",
    "src/choice.rs",
    "src/net.rs",
    "src/visibility.rs",
];

/// Top-level folders that are not domain areas.
const NOT_AREAS: &[&str] = &["web", "metrics"];

fn src_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, as paths relative to the crate (`src/incidents/mod.rs`).
fn source_files() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).expect("src/ is readable");
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&src_root(), &mut found);
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = found
        .iter()
        .filter_map(|p| p.strip_prefix(base).ok())
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .collect();
    files.sort();
    files
}

/// The module path of a file: `src/incidents/db.rs` → `["incidents", "db"]`.
fn module_of(file: &str) -> Vec<String> {
    let rel = file.trim_start_matches("src/").trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// The file declaring module `path`, or the closest enclosing module that is a file
/// (`incidents::Incident` → `src/incidents/mod.rs`).
fn file_of(path: &[String], files: &BTreeSet<String>) -> Option<String> {
    for len in (1..=path.len()).rev() {
        let joined = path[..len].join("/");
        for candidate in [format!("src/{joined}.rs"), format!("src/{joined}/mod.rs")] {
            if files.contains(&candidate) {
                return Some(candidate);
            }
        }
    }
    None
}

/// Module paths named in `text`, absolute from the crate root. `module` is the path of the
/// file itself (for `super::` and `self::`).
fn named_paths(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let trimmed = code.trim_start();
        // `mod db;` declares a child; it is not an import.
        if trimmed.starts_with("mod ") || trimmed.starts_with("pub mod ") {
            continue;
        }
        for start in ["crate::", "super::"] {
            let mut rest = code;
            while let Some(at) = rest.find(start) {
                let before = rest[..at].chars().next_back();
                rest = &rest[at..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    rest = &rest[start.len()..];
                    continue;
                }
                let mut base: Vec<String> = if start == "crate::" {
                    Vec::new()
                } else {
                    // `src/a/mod.rs` is module `a` and `src/a/b.rs` is `a::b`: either way
                    // `super` is the module path without its last part.
                    let mut m = module.to_vec();
                    m.pop();
                    m
                };
                rest = &rest[start.len()..];
                let (segments, after) = path_segments(rest);
                base.extend(segments);
                rest = after;
                // `use x::{a, b::c}`: each first segment inside the braces may be a module.
                if let Some(group) = rest.strip_prefix("::{").or_else(|| rest.strip_prefix('{')) {
                    let inner = group.split('}').next().unwrap_or("");
                    for item in inner.split(',') {
                        let first = item.trim().split("::").next().unwrap_or("").trim();
                        if !first.is_empty() && first != "self" && first.chars().all(is_ident) {
                            let mut p = base.clone();
                            p.push(first.to_owned());
                            out.push(p);
                        }
                    }
                }
                out.push(base);
            }
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `incidents::db::find(…` → (["incidents", "db", "find"], "(…").
fn path_segments(text: &str) -> (Vec<String>, &str) {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        let len = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if len == 0 {
            break;
        }
        segments.push(rest[..len].to_owned());
        rest = &rest[len..];
        match rest.strip_prefix("::") {
            Some(r) if r.starts_with(is_ident) => rest = r,
            _ => break,
        }
    }
    (segments, rest)
}

/// File → the files it imports (itself left out).
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let files: BTreeSet<String> = source_files().into_iter().collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .expect("source is readable");
        // Unit tests may reach anywhere; they are not part of the layering.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let module = module_of(file);
        let mut targets = BTreeSet::new();
        for path in named_paths(text, &module) {
            if let Some(target) = file_of(&path, &files)
                && &target != file
                && target != "src/lib.rs"
            {
                targets.insert(target);
            }
        }
        graph.insert(file.clone(), targets);
    }
    graph
}

/// The area a file belongs to (`incidents`), if it is in one.
fn area_of(file: &str) -> Option<&str> {
    let rest = file.strip_prefix("src/")?;
    let (dir, _) = rest.split_once('/')?;
    (!NOT_AREAS.contains(&dir)).then_some(dir)
}

/// The files of an area that face HTTP: pages (`web.rs`, `*_web.rs`) and the API (`api.rs`,
/// `*_api.rs`). Everything else in an area is its model, operations and SQL.
fn faces_http(file: &str) -> bool {
    let name = file.rsplit('/').next().unwrap_or("");
    matches!(name, "web.rs" | "api.rs") || name.ends_with("_web.rs") || name.ends_with("_api.rs")
}

/// Import circles (strongly connected components with more than one file), by Tarjan.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            if let Some(targets) = self.graph.get(v) {
                for w in targets {
                    let w = w.as_str();
                    if !self.index.contains_key(w) {
                        self.visit(w);
                        let low = self.low[v].min(self.low[w]);
                        self.low.insert(v, low);
                    } else if self.on_stack.contains(w) {
                        let low = self.low[v].min(self.index[w]);
                        self.low.insert(v, low);
                    }
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn no_import_circle_spans_two_areas_or_an_area_and_the_plumbing() {
    let graph = import_graph();
    let spanning: Vec<Vec<String>> = circles(&graph)
        .into_iter()
        .filter(|c| {
            let tops: BTreeSet<&str> = c
                .iter()
                .map(|f| f.trim_start_matches("src/").split('/').next().unwrap_or(""))
                .collect();
            tops.len() > 1
        })
        .collect();
    assert!(
        spanning.is_empty(),
        "import circles across areas (each line is one circle):\n{}",
        spanning
            .iter()
            .map(|c| c.join(" ↔ "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn an_areas_model_operations_and_sql_never_import_pages_the_api_the_app_or_axum() {
    let graph = import_graph();
    let mut wrong = Vec::new();
    for (file, targets) in &graph {
        if area_of(file).is_none() || faces_http(file) {
            continue;
        }
        for target in targets {
            let upward = faces_http(target)
                || target.starts_with("src/web/")
                || matches!(
                    target.as_str(),
                    "src/app.rs" | "src/config.rs" | "src/cli.rs" | "src/main.rs"
                );
            if upward {
                wrong.push(format!("{file} imports {target}"));
            }
        }
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .expect("source is readable");
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        if text.contains("axum::") {
            wrong.push(format!("{file} uses axum"));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn foundations_import_no_area_and_no_layer_above_them() {
    let graph = import_graph();
    let mut wrong = Vec::new();
    for file in FOUNDATIONS {
        let targets = graph
            .get(*file)
            .unwrap_or_else(|| panic!("{file} is a foundation but does not exist"));
        for target in targets {
            let allowed =
                FOUNDATIONS.contains(&target.as_str()) || target.starts_with("src/metrics/");
            if !allowed {
                wrong.push(format!("{file} imports {target}"));
            }
        }
    }
    for (file, targets) in graph.iter().filter(|(f, _)| f.starts_with("src/metrics/")) {
        for target in targets.iter().filter(|t| !t.starts_with("src/metrics/")) {
            wrong.push(format!("{file} imports {target}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "foundations importing upwards:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_import_reader_resolves_the_paths_this_check_relies_on() {
    let module = vec!["incidents".to_owned(), "db".to_owned()];
    let paths = named_paths(
        "use super::{Incident, db2};\nlet x = crate::recurrence::db::recurring_sql(r);\nmod web;",
        &module,
    );
    assert!(paths.contains(&vec!["incidents".to_owned(), "Incident".to_owned()]));
    assert!(paths.contains(&vec![
        "recurrence".to_owned(),
        "db".to_owned(),
        "recurring_sql".to_owned()
    ]));
    let files: BTreeSet<String> = ["src/incidents/mod.rs", "src/recurrence/db.rs"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        file_of(&["incidents".into(), "Incident".into()], &files).as_deref(),
        Some("src/incidents/mod.rs")
    );
    assert_eq!(
        file_of(
            &["recurrence".into(), "db".into(), "recurring_sql".into()],
            &files
        )
        .as_deref(),
        Some("src/recurrence/db.rs")
    );
    // In a folder's mod.rs, `super` is the crate root.
    let from_mod = named_paths("use super::db::Db;", &["incidents".to_owned()]);
    assert!(from_mod.contains(&vec!["db".to_owned(), "Db".to_owned()]));
}
