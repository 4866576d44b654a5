//! The documentation cannot rot: every full config in `docs/` passes the real `check` of the
//! program it is for, and every relative link in README.md, CONTRIBUTING.md and `docs/*.md`
//! points to a file that exists (and, with `#anchor`, to a heading in it).
//!
//! A full config is a fenced block whose info string names the file it is:
//! ```` ```toml gateway.toml ```` is checked with `kubeknobs-gateway check`, ```` ```toml
//! bridge.toml ```` with `kubeknobs-bridge check`. Other named blocks of the same page (```` ```toml
//! tokens.toml ````) are written beside it, and so are the files a config may name: `certs/`
//! from `kubeknobs-gateway gen-certs`, `ca.pem` (a copy of `certs/ca.pem`) and `token.txt`.

use std::path::{Path, PathBuf};
use std::process::Command;

use kubeknobs_tests::harness::binary;

/// A fenced code block of a Markdown page.
struct Block {
    /// The info string after the opening fence (`toml gateway.toml`).
    info: String,
    /// 1-based line of the opening fence.
    line: usize,
    text: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md, CONTRIBUTING.md and every page in docs/.
fn pages() -> Vec<PathBuf> {
    let root = root();
    let mut pages = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in markdown.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_owned(),
                    line: index + 1,
                    text: String::new(),
                })
            }
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "a code block is never closed");
    blocks
}

/// The file name a block's info string gives it (`toml gateway.toml` → `gateway.toml`).
fn file_name(block: &Block) -> Option<&str> {
    let mut words = block.info.split_whitespace();
    (words.next() == Some("toml"))
        .then(|| words.next())
        .flatten()
}

/// The program whose `check` a file of this name is for.
fn checker(name: &str) -> Option<&'static str> {
    match name {
        "gateway.toml" => Some("kubeknobs-gateway"),
        "bridge.toml" => Some("kubeknobs-bridge"),
        _ => None,
    }
}

/// A directory with the files the example configs name, and `page`'s other named blocks.
fn workspace(page: &[Block]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    let made = Command::new(binary("kubeknobs-gateway"))
        .args(["gen-certs", "--out"])
        .arg(&certs)
        .output()
        .expect("run gen-certs");
    assert!(made.status.success(), "gen-certs: {made:?}");
    std::fs::copy(certs.join("ca.pem"), dir.path().join("ca.pem")).expect("copy ca.pem");
    std::fs::write(dir.path().join("token.txt"), "a-token-for-the-docs\n").expect("token");
    for block in page {
        if let Some(name) = file_name(block).filter(|name| checker(name).is_none()) {
            std::fs::write(dir.path().join(name), &block.text).expect("write named block");
        }
    }
    dir
}

#[test]
fn every_full_config_in_the_docs_passes_check() {
    let mut checked: Vec<(String, &str)> = Vec::new();
    for page in pages() {
        let blocks = blocks(&read(&page));
        let shown = page
            .strip_prefix(root())
            .unwrap_or(&page)
            .display()
            .to_string();
        for block in &blocks {
            let Some(name) = file_name(block) else {
                continue;
            };
            let Some(program) = checker(name) else {
                continue;
            };
            let dir = workspace(&blocks);
            let config = dir.path().join(name);
            std::fs::write(&config, &block.text).expect("write config");
            let out = Command::new(binary(program))
                .arg("check")
                .arg("--config")
                .arg(&config)
                .output()
                .expect("run check");
            assert!(
                out.status.success(),
                "{shown}:{}: `{program} check` refuses the example:\n{}",
                block.line,
                String::from_utf8_lossy(&out.stderr)
            );
            checked.push((shown.clone(), program));
        }
    }
    // The pages that promise a checked example still have one (a renamed info string would
    // otherwise make this test pass by checking nothing).
    for (page, program) in [
        ("docs/gateway-config.md", "kubeknobs-gateway"),
        ("docs/policy.md", "kubeknobs-gateway"),
        ("docs/operations.md", "kubeknobs-gateway"),
        ("docs/operations.md", "kubeknobs-bridge"),
        ("docs/bridge-config.md", "kubeknobs-bridge"),
        ("docs/midi.md", "kubeknobs-bridge"),
        ("docs/raspberry-pi.md", "kubeknobs-bridge"),
    ] {
        assert!(
            checked.iter().any(|(p, c)| p == page && *c == program),
            "{page} has no ```toml block checked with {program}; checked: {checked:?}"
        );
    }
}

/// The anchor GitHub gives a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every heading anchor of a page, with GitHub's `-1`, `-2` suffixes for repeated headings.
fn anchors(markdown: &str) -> Vec<String> {
    let mut anchors: Vec<String> = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        if in_code {
            continue;
        }
        let base = slug(heading.trim_start_matches('#'));
        let repeats = anchors
            .iter()
            .filter(|a| **a == base || a.strip_prefix(&format!("{base}-")).is_some_and(is_n))
            .count();
        anchors.push(if repeats == 0 {
            base
        } else {
            format!("{base}-{repeats}")
        });
    }
    anchors
}

fn is_n(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Link targets of one line of prose: `](target)` and `src="target"`, outside `code spans`.
fn targets(line: &str) -> Vec<String> {
    let prose: String = line
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, part)| part)
        .collect::<Vec<_>>()
        .join(" ");
    let mut found = Vec::new();
    for (opening, closing) in [("](", ')'), ("src=\"", '"')] {
        let mut rest = prose.as_str();
        while let Some(at) = rest.find(opening) {
            rest = &rest[at + opening.len()..];
            if let Some(end) = rest.find(closing) {
                found.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    found
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    let mut links = 0;
    for page in pages() {
        let markdown = read(&page);
        let shown = page
            .strip_prefix(root())
            .unwrap_or(&page)
            .display()
            .to_string();
        let mut in_code = false;
        for (index, line) in markdown.lines().enumerate() {
            if line.starts_with("```") {
                in_code = !in_code;
            }
            if in_code {
                continue;
            }
            for target in targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                links += 1;
                let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
                let file = if path.is_empty() {
                    page.clone()
                } else {
                    page.parent().expect("page dir").join(path)
                };
                let where_ = format!("{shown}:{}: {target}", index + 1);
                if !file.exists() {
                    broken.push(format!("{where_}: no such file"));
                } else if !anchor.is_empty() && !anchors(&read(&file)).iter().any(|a| a == anchor) {
                    broken.push(format!("{where_}: no such heading"));
                }
            }
        }
    }
    assert!(
        links > 50,
        "found only {links} relative links: is the parser broken?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn github_slugs() {
    assert_eq!(
        slug(" Impersonation (`cluster.impersonate`)"),
        "impersonation-clusterimpersonate"
    );
    assert_eq!(
        slug(" `[discovery]`: finding the bridge on the network"),
        "discovery-finding-the-bridge-on-the-network"
    );
    assert_eq!(
        anchors("# A\n## A\n```\n# not a heading\n```\n### A\n"),
        ["a", "a-1", "a-2"]
    );
}
