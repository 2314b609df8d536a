//! The module graph of `shared/src`: layers point one way, and no two modules need each other.
//!
//! Every `crate::`, `super::` and `$crate::` path outside comments and the `tests` module is an arrow from
//! the file it is in to the module it names (re-exports, `pub use`, are a module's facade, not a use). A
//! top-level module may point only at modules of a lower layer; within `verify` and `providers` the files'
//! arrows form no circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first: a module may use only modules of lower layers.
const LAYERS: &[&[&str]] = &[
    // Vocabulary: what everything shares.
    &["error", "provider", "logging"],
    &["event", "verify"],
    &["state"],
    // The providers, above the verification they use.
    &["providers"],
    // The message, the configuration and the ports the core works through.
    &["envelope", "config", "ports", "metrics"],
    // The core.
    &["pipeline"],
    &["sweeper", "handler"],
    // The adapters beside the core (they know the ports, never the pipeline).
    &["aws"],
    // The composition root, and the test helpers.
    &["wiring", "testing"],
];

/// The module a source file is (`verify/json.rs` is `verify::json`, `verify/mod.rs` is `verify`).
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let file = parts.pop().expect("a file name");
    let stem = file.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The code of a file without its comments and its `#[cfg(test)] mod tests`.
fn code(text: &str) -> String {
    let end = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..end]
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .filter(|line| !line.trim_start().starts_with("pub use ") && !line.trim_start().starts_with("pub(crate) use "))
        .collect::<Vec<_>>()
        .join("\n")
}

struct Graph {
    /// Every module, as its path.
    modules: BTreeSet<Vec<String>>,
    /// Arrows between modules (file level).
    arrows: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn read_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let modules: BTreeSet<Vec<String>> =
        files.iter().map(|f| module_of(f.strip_prefix(&src).unwrap())).filter(|m| !m.is_empty()).collect();
    let mut arrows = BTreeMap::new();
    for file in &files {
        let module = module_of(file.strip_prefix(&src).unwrap());
        if module.is_empty() {
            continue; // lib.rs: the crate's facade
        }
        let text = code(&std::fs::read_to_string(file).unwrap());
        let is_dir_module = file.ends_with("mod.rs");
        let mut to = BTreeSet::new();
        for (start, _) in text.match_indices("::") {
            let before = &text[..start];
            let word_start =
                before.rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).map_or(0, |i| i + 1);
            let head = &before[word_start..];
            if before[..word_start].ends_with("::") {
                continue; // inside a longer path, read from its start
            }
            let base: Vec<String> = match head {
                "crate" | "$crate" => Vec::new(),
                "super" => {
                    let mut parent = module.clone();
                    parent.pop();
                    parent
                }
                "self" if is_dir_module => module.clone(),
                // A child module named directly in its parent (`niobi::SPEC` in providers/mod.rs).
                name if is_dir_module && modules.contains(&[module.clone(), vec![name.to_owned()]].concat()) => {
                    to.insert([module.clone(), vec![name.to_owned()]].concat());
                    continue;
                }
                _ => continue,
            };
            for path in paths_after(&text[start + 2..]) {
                let mut target = base.clone();
                for segment in path {
                    let mut longer = target.clone();
                    longer.push(segment);
                    if modules.contains(&longer) {
                        target = longer;
                    } else {
                        break;
                    }
                }
                if !target.is_empty() && target != module {
                    to.insert(target);
                }
            }
        }
        arrows.insert(module, to);
    }
    Graph { modules, arrows }
}

/// The module paths a `::` is followed by: `a::b::C` is one, `{a, b::c}` is two.
fn paths_after(rest: &str) -> Vec<Vec<String>> {
    if let Some(group) = rest.strip_prefix('{') {
        let end = group.find('}').unwrap_or(group.len());
        return group[..end]
            .split(',')
            .map(|item| item.trim().split("::").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
            .collect();
    }
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
    vec![rest[..end].split("::").map(str::to_owned).filter(|s| !s.is_empty()).collect()]
}

fn layer_of(module: &[String]) -> usize {
    LAYERS.iter().position(|layer| layer.contains(&module[0].as_str())).unwrap_or_else(|| {
        panic!("module `{}` is in no layer: add it to LAYERS in shared/tests/suite/layers.rs", module[0])
    })
}

#[test]
fn layers_point_one_way() {
    let graph = read_graph();
    let mut upward = Vec::new();
    for (from, targets) in &graph.arrows {
        for to in targets {
            if from[0] != to[0] && layer_of(to) >= layer_of(from) {
                upward.push(format!("{} -> {}", from.join("::"), to.join("::")));
            }
        }
    }
    assert!(upward.is_empty(), "imports that do not point down a layer:\n{}", upward.join("\n"));
    // Every top-level module has its layer.
    for module in &graph.modules {
        layer_of(module);
    }
}

#[test]
fn no_module_needs_one_that_needs_it() {
    let graph = read_graph();
    // Depth-first search for a circle among the files.
    fn visit<'g>(
        node: &'g Vec<String>,
        graph: &'g Graph,
        state: &mut BTreeMap<&'g Vec<String>, bool>,
        stack: &mut Vec<&'g Vec<String>>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(true) => return None,
            Some(false) => {
                let from = stack.iter().position(|n| *n == node).unwrap();
                return Some(stack[from..].iter().map(|n| n.join("::")).chain([node.join("::")]).collect());
            }
            None => {}
        }
        state.insert(node, false);
        stack.push(node);
        for next in graph.arrows.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, state, stack) {
                return Some(circle);
            }
        }
        stack.pop();
        state.insert(node, true);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.arrows.keys() {
        if let Some(circle) = visit(node, &graph, &mut state, &mut Vec::new()) {
            panic!("an import circle: {}", circle.join(" -> "));
        }
    }
}

/// The reading itself: a file of known arrows gives them, and nothing from comments or tests.
#[test]
fn the_graph_reads_what_a_file_uses() {
    let graph = read_graph();
    let arrows = |m: &str| -> BTreeSet<String> {
        let key: Vec<String> = m.split("::").map(str::to_owned).collect();
        graph.arrows[&key].iter().map(|t| t.join("::")).collect()
    };
    let pipeline = arrows("pipeline");
    for used in ["ports", "providers", "pipeline::secrets"] {
        assert!(pipeline.contains(used), "pipeline uses {used}: {pipeline:?}");
    }
    assert!(!pipeline.contains("testing"), "the tests module is not read");
    assert!(arrows("pipeline::deliver").contains("envelope"));
    assert!(arrows("pipeline::ingest").contains("pipeline"), "a child uses its parent's items");
    assert!(arrows("providers::niobi").contains("providers::contract"));
    assert!(
        arrows("providers").contains("providers::niobi"),
        "the dispatch names each provider's module: {:?}",
        arrows("providers")
    );
    assert!(arrows("wiring").contains("aws"));
}
