//! The README's signal table names every signal of every crate's catalog, with its unit.
#![allow(clippy::unwrap_used)]

#[test]
fn readme_lists_every_signal() {
    let readme = include_str!("../README.md");
    let catalogs = [
        scalewatch::catalog::ALL,
        scalewatch::sync::catalog::ALL,
        scalewatch::state::catalog::ALL,
        scalewatch::runtime::catalog::ALL,
        scalewatch::capacity::catalog::ALL,
    ];
    for signal in catalogs.into_iter().flatten() {
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
