//! Capacity signals (`scalewatch.capacity.*`, `scalewatch.resource.*`), exported by
//! `scalewatch-capacity`'s live model and read back by the console reporter, and their
//! attribute keys.
//!
//! The `scalewatch.capacity.*` gauges carry `scalewatch.tier.name` and are observed only
//! for tiers whose fit is trusted; `scalewatch.resource.*` carries
//! `scalewatch.resource.kind` and `scalewatch.resource.name`.

signals! {
    /// Every capacity signal, in catalog order: the fit's gauges, then the resources'.
    ALL;
    /// `scalewatch.capacity.contention`: USL σ.
    CAPACITY_CONTENTION = gauge("scalewatch.capacity.contention", "1", "USL contention coefficient sigma (serial fraction) of the tier's live fit.");
    /// `scalewatch.capacity.coherency`: USL κ.
    CAPACITY_COHERENCY = gauge("scalewatch.capacity.coherency", "1", "USL coherency coefficient kappa (crosstalk) of the tier's live fit.");
    /// `scalewatch.capacity.peak_concurrency`: N* = √((1 − σ)/κ), only when κ is significant.
    CAPACITY_PEAK_CONCURRENCY = gauge("scalewatch.capacity.peak_concurrency", "{request}", "Concurrency at which the tier's throughput peaks, N* = sqrt((1 - sigma) / kappa).");
    /// `scalewatch.capacity.peak_throughput`: X(N*), only when κ is significant.
    CAPACITY_PEAK_THROUGHPUT = gauge("scalewatch.capacity.peak_throughput", "{request}/s", "Highest throughput the tier's fit predicts, X(N*).");
    /// `scalewatch.capacity.headroom`: 1 − current throughput / peak throughput (or the
    /// Amdahl ceiling when there is no significant peak).
    CAPACITY_HEADROOM = gauge("scalewatch.capacity.headroom", "1", "1 - current throughput / peak throughput (the Amdahl ceiling when no peak).");
    /// `scalewatch.capacity.fit.r_squared`: quality of the tier's fit.
    CAPACITY_FIT_R_SQUARED = gauge("scalewatch.capacity.fit.r_squared", "1", "Coefficient of determination of the tier's live USL fit.");
    /// `scalewatch.resource.utilization`: every resource normalised to 0..1.
    RESOURCE_UTILIZATION = gauge("scalewatch.resource.utilization", "1", "Utilization of a resource (tier, lock, pool, queue, shard, runtime, job), 0..1.");
    /// `scalewatch.resource.saturation_throughput`: the throughput of a tier at which a
    /// resource would be fully used, by the utilization law (U = U₀ + X·D, saturating at
    /// (1 − U₀) / D), for resources whose use tracks the tier's throughput.
    RESOURCE_SATURATION_THROUGHPUT = gauge("scalewatch.resource.saturation_throughput", "{request}/s", "Tier throughput at which the resource would be fully used, by the utilization law.");
}

/// Attribute keys of the capacity signals.
pub mod attr {
    pub use super::super::tier::attr::TIER_NAME;

    /// `scalewatch.resource.kind`: `tier`, `lock`, `pool`, `queue`, `shard`, `runtime`, `job`.
    pub const RESOURCE_KIND: &str = "scalewatch.resource.kind";
    /// `scalewatch.resource.name`: the static name the resource was registered with.
    pub const RESOURCE_NAME: &str = "scalewatch.resource.name";
}
