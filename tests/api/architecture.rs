//! Imports only point down: `api` → `state` → `service` → `repository`/`infra` →
//! `domain`/`entity`/`config`/`validation`. This reads every `crate::…` path in `src/` (in
//! `use` lines and inline) and fails when a module names a layer above its own, as ArchUnit
//! does for Java. The HTTP layer also names no entity and no repository: it goes through
//! the services.

use std::path::{Path, PathBuf};

/// A top-level module's layer: higher layers may import lower ones, never the reverse.
fn layer(module: &str) -> Option<u8> {
    Some(match module {
        "main" | "startup" | "telemetry" | "connection_limit" => 6,
        "api" => 5,
        "state" => 4,
        "service" => 3,
        "repository" | "infra" => 2,
        "domain" | "entity" | "config" | "metrics" | "coalesce" | "validation" | "backoff" => 1,
        _ => return None,
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments (a `crate::` in prose is no import).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `code` names through `crate::`, including inside `use crate::{…}`.
fn imported_modules(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split on commas at brace depth 0.
            let (mut depth, mut item) = (0, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.push(first_segment(&item));
        } else {
            found.push(first_segment(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

fn first_segment(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn imports_only_point_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let (mut upward, mut past_services) = (Vec::new(), Vec::new());
    for file in &files {
        let relative = file
            .strip_prefix(root)
            .expect("under the crate")
            .to_string_lossy()
            .replace('\\', "/");
        let module = relative
            .trim_start_matches("src/")
            .split(['/', '.'])
            .next()
            .unwrap_or_default()
            .to_string();
        let Some(own) = layer(&module) else {
            assert_eq!(
                relative, "src/lib.rs",
                "{relative}: a top-level module without a layer"
            );
            continue;
        };
        let text = std::fs::read_to_string(file).expect("readable");
        let mut targets = imported_modules(&code(&text));
        targets.sort();
        targets.dedup();
        for target in targets {
            let theirs = layer(&target).unwrap_or_else(|| {
                panic!("{relative} imports crate::{target}, which has no layer")
            });
            if theirs > own {
                upward.push((relative.clone(), target.clone()));
            }
            // The HTTP layer goes through the services: it names no row and no query.
            if module == "api" && (target == "entity" || target == "repository") {
                past_services.push((relative.clone(), target));
            }
        }
    }
    assert!(upward.is_empty(), "imports from a layer above: {upward:?}");
    assert!(
        past_services.is_empty(),
        "the HTTP layer reaches past the services: {past_services:?}"
    );
}

#[test]
fn the_reader_finds_grouped_nested_and_inline_paths() {
    let sample = "use crate::{\n    api::{a, b},\n    domain::SellerId,\n};\nfn f() { crate::service::x(); }\n// crate::state in a comment\n";
    let mut found = imported_modules(&code(sample));
    found.sort();
    assert_eq!(found, ["api", "domain", "service"]);
}
