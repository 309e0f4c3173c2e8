//! The signals this crate exports and the attribute keys it uses: the
//! [`capacity`](scalewatch_core::catalog::capacity) family of the scalewatch catalog,
//! re-exported.
//!
//! The `scalewatch.capacity.*` gauges carry `scalewatch.tier.name` and are observed only
//! for tiers whose fit is trusted (see the [crate docs](crate#trust-rules));
//! `scalewatch.resource.utilization` carries `scalewatch.resource.kind` and
//! `scalewatch.resource.name`.

pub use scalewatch_core::catalog::capacity::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_follows_the_rules() {
        scalewatch_core::catalog::check(ALL, &["scalewatch.capacity.", "scalewatch.resource."])
            .unwrap();
    }
}
