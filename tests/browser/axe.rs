//! Accessibility check of every page the browser tests visit: axe-core (the npm package, in
//! `node_modules/axe-core`, installed by `.ci/run`) is injected into each page once per path,
//! signed in and signed out, and run at 1280 and 390 px wide against WCAG 2.0, 2.1 and 2.2 A and
//! AA. Any violation fails the test that visited the page, listing each rule, its impact and the
//! elements. Every check is appended to `<target tmp>/axe-summary.txt`, which `.ci/run` totals.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use serde_json::{Value, json};

use crate::webdriver::Browser;

/// The widths every page is checked at: the desktop the tests run at and a phone.
pub(crate) const WIDTHS: [u32; 2] = [1280, 390];
const TAGS: [&str; 6] = [
    "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa",
];

/// Pages already checked in this run (path, signed in): each is checked once.
static CHECKED: LazyLock<Mutex<BTreeSet<(String, bool)>>> =
    LazyLock::new(|| Mutex::new(BTreeSet::new()));

static SOURCE: LazyLock<String> = LazyLock::new(|| {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the browser tests check accessibility with axe-core, read from {}: {e}; install it \
             with `npm install --no-save axe-core@4.14.1` in the repository (as .ci/run does)",
            path.display()
        )
    })
});

/// Where the per-page results go; `.ci/run` prints their total.
pub(crate) fn summary_path() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("axe-summary.txt")
}

/// Checks the page the browser shows now, unless this path was checked already.
pub(crate) fn check_page(browser: &Browser) {
    let path = browser.current_path();
    let signed_in =
        browser.execute("return !!document.querySelector('.who-name');", vec![]) == json!(true);
    let key = (path.clone(), signed_in);
    {
        let mut checked = CHECKED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !checked.insert(key) {
            return;
        }
    }
    let mut problems = Vec::new();
    for width in WIDTHS {
        browser.set_width(width);
        let result = run(browser);
        let violations = result["violations"].as_array().cloned().unwrap_or_default();
        for v in &violations {
            let nodes: Vec<String> = v["nodes"]
                .as_array()
                .map(|ns| {
                    ns.iter()
                        .take(5)
                        .map(|n| {
                            format!(
                                "{} — {}",
                                n["target"],
                                n["failureSummary"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .replace('\n', " ")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            problems.push(format!(
                "{path} at {width} px ({}): {} [{}] {} ({} elements)\n      {}",
                if signed_in { "signed in" } else { "signed out" },
                v["id"].as_str().unwrap_or_default(),
                v["impact"].as_str().unwrap_or_default(),
                v["help"].as_str().unwrap_or_default(),
                v["nodes"].as_array().map_or(0, Vec::len),
                nodes.join("\n      ")
            ));
        }
        let line = format!(
            "{path}\t{width}\t{}\t{}\t{}\n",
            if signed_in { "in" } else { "out" },
            violations.len(),
            result["passes"].as_array().map_or(0, Vec::len)
        );
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(summary_path())
        {
            let _ = file.write_all(line.as_bytes());
        }
    }
    browser.set_width(WIDTHS[0]);
    assert!(
        problems.is_empty(),
        "axe-core found WCAG 2.2 A/AA violations:\n  {}",
        problems.join("\n  ")
    );
}

fn run(browser: &Browser) -> Value {
    if browser.execute("return typeof window.axe;", vec![]) != json!("object") {
        browser.execute(&SOURCE, vec![]);
    }
    let result = browser.execute_async(
        "const done = arguments[arguments.length - 1];
         window.axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
           .then(r => done({violations: r.violations, passes: r.passes}))
           .catch(e => done({error: String(e)}));",
        vec![json!(TAGS)],
    );
    assert!(
        result["error"].is_null(),
        "axe-core could not run on {}: {}",
        browser.current_url(),
        result["error"]
    );
    result
}
