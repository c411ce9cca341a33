//! The map in docs/ARCHITECTURE.md is checked against the code: every module under `src/`
//! has a row, imports only what its row allows (`use crate::…` and inline `crate::…` paths
//! alike), the allowed imports form no circle (so nothing imports back up), and the files of
//! one module do not import each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::repo_root;

/// The "may import" table, in its order (top to bottom): each module and what it may import.
fn allowed_imports(map: &str) -> Vec<(String, BTreeSet<String>)> {
    let table = map
        .split("<!-- imports: checked by tests/it/architecture.rs -->")
        .nth(1)
        .expect("docs/ARCHITECTURE.md marks its imports table")
        .split("<!-- end of imports -->")
        .next()
        .expect("the imports table ends");
    let mut allowed = Vec::new();
    for row in table.lines().filter(|line| line.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (modules, imports) = (cells[1], cells[cells.len() - 2]);
        let imports: BTreeSet<String> = backticked(imports).collect();
        for module in backticked(modules) {
            allowed.push((module, imports.clone()));
        }
    }
    allowed
}

/// `a`, `b/`, `c.rs` → a, b, c.
fn backticked(cell: &str) -> impl Iterator<Item = String> + '_ {
    cell.split('`').skip(1).step_by(2).map(|name| name.trim_end_matches('/').trim_end_matches(".rs").to_string())
}

/// The code a module's file runs: comments and its `#[cfg(test)] mod tests` left out (a
/// doc link is no import, and tests may reach anywhere).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The first path segment after each `prefix` (`crate::`, `super::`), braces included:
/// `crate::{a::b, c}` names `a` and `c`.
fn named_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices(prefix) {
        // `super::super::` is counted from its last `super::`.
        if text[..at].ends_with("super::") {
            continue;
        }
        let rest = &text[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut start) = (1, true);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => start = true,
                    c if start && depth == 1 && !c.is_whitespace() => {
                        names.insert(ident(&group[i..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(ident(rest));
        }
    }
    names.remove("");
    names.remove("self");
    names
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// A circle in `graph`, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            return Some(path[at..].iter().cloned().chain([node.to_string()]).collect());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn every_import_is_one_the_map_allows_and_none_goes_back_up() {
    let root = repo_root();
    let map = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let rows = allowed_imports(&map);
    let allowed: BTreeMap<String, BTreeSet<String>> = rows.iter().cloned().collect();
    assert!(allowed.contains_key("exec") && allowed.contains_key("plan"), "{rows:?}");
    let src = root.join("src");
    let mut wrong = Vec::new();
    let mut modules = BTreeSet::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        let module = relative.split('/').next().unwrap().trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        modules.insert(module.clone());
        let Some(may) = allowed.get(&module) else {
            wrong.push(format!("src/{relative}: module `{module}` has no row in docs/ARCHITECTURE.md"));
            continue;
        };
        for imported in named_after(&code(&file), "crate::") {
            if imported != module && !may.contains(&imported) {
                wrong.push(format!("src/{relative} imports `{imported}`, which the map does not allow `{module}`"));
            }
        }
    }
    for module in allowed.keys().filter(|m| !modules.contains(*m)) {
        wrong.push(format!("docs/ARCHITECTURE.md has a row for `{module}`, which is not in src/"));
    }
    // Downward only: a row names rows below it (which also rules out a circle).
    let row_of = |module: &str| rows.iter().position(|(m, _)| m == module);
    for (at, (module, may)) in rows.iter().enumerate() {
        for imported in may {
            match row_of(imported) {
                None => wrong.push(format!("`{module}` may import `{imported}`, which has no row")),
                Some(row) if row <= at => wrong.push(format!("`{module}` may import `{imported}`, a row above it")),
                Some(_) => {}
            }
        }
    }
    assert!(wrong.is_empty(), "the code and its map disagree:\n{}", wrong.join("\n"));
    assert_eq!(circle(&allowed), None, "a circle of allowed imports");
}

#[test]
fn the_files_of_a_module_do_not_import_each_other_in_a_circle() {
    let src = repo_root().join("src");
    let mut circles = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let folder = entry.unwrap().path();
        if !folder.is_dir() {
            continue;
        }
        let module = folder.file_name().unwrap().to_string_lossy().into_owned();
        // Sibling files (mod.rs is the parent that declares them, not a sibling).
        let siblings: BTreeMap<String, std::path::PathBuf> = rust_files(&folder)
            .into_iter()
            .filter(|file| file.parent() == Some(folder.as_path()) && !file.ends_with("mod.rs"))
            .map(|file| (file.file_stem().unwrap().to_string_lossy().into_owned(), file))
            .collect();
        let mut graph = BTreeMap::new();
        for (name, file) in &siblings {
            let text = code(file);
            let mut imports = named_after(&text, "super::");
            imports.extend(named_after(&text, &format!("crate::{module}::")));
            imports.retain(|imported| imported != name && siblings.contains_key(imported));
            graph.insert(name.clone(), imports);
        }
        if let Some(found) = circle(&graph) {
            circles.push(format!("{module}: {}", found.join(" -> ")));
        }
    }
    assert!(circles.is_empty(), "files that import each other:\n{}", circles.join("\n"));
}

#[test]
fn paths_are_read_as_the_compiler_reads_them() {
    let names = |text: &str| named_after(text, "crate::").into_iter().collect::<Vec<_>>();
    assert_eq!(names("use crate::plan::{Action, Reason};"), ["plan"]);
    assert_eq!(names("use crate::{exec::{self, Execution}, listing, report::X};"), ["exec", "listing", "report"]);
    assert_eq!(names("let x = crate::text::printable(&k);"), ["text"]);
    assert_eq!(names("use super::super::x;"), Vec::<String>::new());
    let graph: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(from, to)| (from.to_string(), BTreeSet::from([to.to_string()])))
        .collect();
    assert_eq!(circle(&graph).unwrap(), ["a", "b", "c", "a"]);
}
