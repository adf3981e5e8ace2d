//! `results/README.md` and `results/ablations.md` are written by scripts from the committed run
//! records (`results/runs/*.json`, the campaign's curve JSON, the training logs): a page edited
//! by hand, or a script changed without rendering its page again, fails here.

use std::path::Path;
use std::process::Command;

fn rendered(script: &str) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("python3")
        .arg(repo.join("scripts").join(script))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn committed(page: &str) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(repo.join("results").join(page)).unwrap()
}

#[test]
fn results_pages_are_what_their_scripts_render() {
    for (script, page) in [
        ("results_table.py", "README.md"),
        ("ablation_tables.py", "ablations.md"),
    ] {
        let want = rendered(script);
        let have = committed(page);
        // The first line (1-based) where they part, or the end of the shorter one.
        let first_difference = want
            .lines()
            .zip(have.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| want.lines().count().min(have.lines().count()))
            + 1;
        assert!(
            want == have,
            "results/{page} differs from `python3 scripts/{script}` from line {first_difference}; \
             render it again: python3 scripts/{script} > results/{page}"
        );
    }
}
