//! The dependency directions of `app/src`, checked: a module may name (`crate::x`) only
//! the modules below it. Lower layers never import higher ones (the store never imports
//! the API or the actors, the domain imports nothing), and the actor modules import each
//! other without a circle: the router, the SLA clock and the outbox reach a conversation
//! only through the contracts in `actors`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of `app/src` and the modules it may import. Everything not
/// listed here (the crate root, `main`, `startup`) may import anything.
const ALLOWED: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("error", &[]),
    // Its own crate (app/triage), re-exported as `crate::triage`: it names nothing of the app.
    ("triage", &[]),
    ("plugins", &[]),
    ("clock", &["domain"]),
    ("config", &["domain", "plugins"]),
    ("telemetry", &["config"]),
    ("store", &["domain", "clock", "config", "telemetry"]),
    // Shard ownership and the contracts for what nodes share; what runs them is `node`.
    (
        "cluster",
        &["domain", "clock", "config", "telemetry", "store"],
    ),
    ("events", &["store", "cluster"]),
    (
        "media",
        &["domain", "clock", "config", "events", "store", "telemetry"],
    ),
    (
        "policy",
        &["domain", "triage", "store", "clock", "config", "telemetry"],
    ),
    ("actors", &["domain", "store", "policy"]),
    (
        "reports",
        &["domain", "store", "policy", "clock", "config", "telemetry"],
    ),
    (
        "sla",
        &[
            "actors",
            "policy",
            "store",
            "events",
            "domain",
            "clock",
            "telemetry",
        ],
    ),
    (
        "routing",
        &[
            "cluster",
            "actors",
            "policy",
            "store",
            "events",
            "triage",
            "domain",
            "clock",
            "telemetry",
        ],
    ),
    (
        "outbound",
        &[
            "cluster",
            "media",
            "actors",
            "policy",
            "store",
            "events",
            "plugins",
            "domain",
            "clock",
            "config",
            "telemetry",
        ],
    ),
    (
        "conversation",
        &[
            "cluster",
            "actors",
            "routing",
            "sla",
            "outbound",
            "policy",
            "store",
            "events",
            "plugins",
            "triage",
            "domain",
            "clock",
            "config",
            "telemetry",
        ],
    ),
    (
        "ingest",
        &[
            "cluster",
            "actors",
            "conversation",
            "policy",
            "store",
            "events",
            "plugins",
            "triage",
            "domain",
            "clock",
            "config",
            "error",
            "telemetry",
        ],
    ),
    (
        "api",
        &[
            "cluster",
            "media",
            "actors",
            "conversation",
            "routing",
            "sla",
            "outbound",
            "ingest",
            "policy",
            "reports",
            "store",
            "events",
            "plugins",
            "triage",
            "domain",
            "clock",
            "config",
            "error",
            "telemetry",
        ],
    ),
    (
        "node",
        &[
            "actors",
            "conversation",
            "routing",
            "sla",
            "outbound",
            "ingest",
            "cluster",
            "media",
            "policy",
            "store",
            "events",
            "plugins",
            "triage",
            "domain",
            "clock",
            "config",
            "error",
            "telemetry",
        ],
    ),
    (
        "demo",
        &[
            "startup", "api", "ingest", "store", "domain", "clock", "config",
        ],
    ),
];

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules a file names through `crate::`, comments left out.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for line in text.lines() {
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                .collect();
            // `crate::{a, b}` names several at once.
            if name.is_empty() && after.starts_with('{') {
                let inside = &after[1..after.find('}').unwrap_or(after.len())];
                named.extend(
                    inside
                        .split(',')
                        .filter_map(|part| part.trim().split("::").next())
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned),
                );
            } else if !name.is_empty() {
                named.insert(name);
            }
            rest = after;
        }
    }
    named
}

/// Top-level module of a file under `app/src`.
fn module_of(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).unwrap();
    let first = relative.components().next().unwrap();
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    source_files(&root, &mut files);
    assert!(files.len() > 50, "app/src not found at {}", root.display());
    let mut violations = Vec::new();
    let mut modules = BTreeSet::new();
    for file in &files {
        let module = module_of(&root, file);
        modules.insert(module.clone());
        let Some(may) = allowed.get(module.as_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for named in named_modules(&text) {
            if named != module && !may.contains(&named.as_str()) {
                violations.push(format!(
                    "{} names crate::{named}, which `{module}` may not import",
                    file.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "dependency directions broken (see tests/integration/layers.rs):\n{}",
        violations.join("\n")
    );
    // A new module must be given its place.
    let placed: BTreeSet<&str> = allowed.keys().copied().collect();
    let unplaced: Vec<&String> = modules
        .iter()
        .filter(|m| {
            !placed.contains(m.as_str()) && !["lib", "main", "startup"].contains(&m.as_str())
        })
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules without a place in tests/integration/layers.rs: {unplaced:?}"
    );
}

#[test]
fn the_allowed_imports_have_no_circle() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    // Depth-first search for a back edge.
    fn visit<'a>(
        module: &'a str,
        allowed: &BTreeMap<&'a str, &'a [&'a str]>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(module) {
            return;
        }
        assert!(
            !path.contains(&module),
            "import circle: {} -> {module}",
            path.join(" -> ")
        );
        path.push(module);
        for next in allowed.get(module).copied().unwrap_or_default() {
            visit(next, allowed, path, done);
        }
        path.pop();
        done.insert(module);
    }
    let mut done = BTreeSet::new();
    for module in allowed.keys() {
        visit(module, &allowed, &mut Vec::new(), &mut done);
    }
}

#[test]
fn imports_are_found_in_every_form() {
    let named = named_modules(
        "use crate::store::Store;\nuse crate::{api, domain::Micros};\n// crate::ingest in a comment\nlet x = crate::sla::track(a);",
    );
    let names: Vec<&str> = named.iter().map(String::as_str).collect();
    assert_eq!(names, ["api", "domain", "sla", "store"]);
}
