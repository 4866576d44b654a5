//! The modules of each program form layers: no two top-level modules of a crate import each
//! other, directly or round a longer loop. This reads the sources as text (every `crate::NAME`
//! outside comments and strings in `src/NAME.rs` or `src/NAME/`), so it needs no build of its
//! own; `lib.rs` and `main.rs` are the wiring and may use anything.
//!
//! The loops that were there when this test came are listed in `KNOWN`, to be broken one by
//! one (issue 12); the test fails on any other loop, and when a listed group changes (so the
//! list is kept true as it shrinks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Cycles not broken yet: each crate's groups of modules that import each other.
const KNOWN: &[(&str, &str)] = &[
    ("bridge", "config discovery feedback midi osc uplink"),
    ("gateway", "auth config tls"),
];

/// Top-level module → the top-level modules it names.
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.to_owned()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read_dir") {
                files.push(entry.expect("entry").path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(src).expect("under src");
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a name")
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        for line in text.lines() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            // Drop string literals, then find `crate::NAME`.
            let code: String = code.split('"').step_by(2).collect::<Vec<_>>().join(" ");
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != top {
                    graph.entry(top.clone()).or_default().insert(name);
                }
            }
        }
    }
    graph
}

/// The groups of modules that import each other round some loop (each reaches every other),
/// each as its sorted names joined by spaces.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut groups = BTreeSet::new();
    for (m, from_m) in &reaches {
        let group: BTreeSet<&str> = from_m
            .iter()
            .filter(|other| reaches.get(other).is_some_and(|r| r.contains(*m)))
            .map(String::as_str)
            .collect();
        if group.len() > 1 {
            groups.insert(group.into_iter().collect::<Vec<_>>().join(" "));
        }
    }
    groups
}

#[test]
fn no_module_cycles_beyond_the_known_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in ["bridge", "gateway"] {
        let found = cycles(&imports(&root.join(krate).join("src")));
        let known: BTreeSet<String> = KNOWN
            .iter()
            .filter(|(k, _)| *k == krate)
            .map(|(_, group)| (*group).to_owned())
            .collect();
        let new: Vec<_> = found.difference(&known).collect();
        let gone: Vec<_> = known.difference(&found).collect();
        assert!(
            new.is_empty(),
            "{krate}: modules importing each other: {new:?}"
        );
        assert!(
            gone.is_empty(),
            "{krate}: cycles gone, take them off KNOWN: {gone:?}"
        );
    }
}

#[test]
fn the_checker_sees_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_owned(), to.into_iter().map(str::to_owned).collect()))
    .collect();
    let found = cycles(&graph);
    assert_eq!(found, BTreeSet::from(["a b c".to_owned()]));
}
