//! The README's signal table names every signal of the catalog (every family), with its
//! unit.
#![allow(clippy::unwrap_used)]

#[test]
fn readme_lists_every_signal() {
    let readme = include_str!("../README.md");
    for signal in scalewatch::catalog::every() {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", signal.name)))
            .unwrap_or_else(|| panic!("README has no row for {}", signal.name));
        assert!(
            row.contains(&format!("| {} |", signal.unit)),
            "README row for {} lacks unit {}: {row}",
            signal.name,
            signal.unit
        );
    }
}
