//! How the workspace's loom models run (only under `--cfg loom`).

/// Preemptions per execution explored when `LOOM_MAX_PREEMPTIONS` is not set: a few
/// seconds per model, where the unbounded search takes minutes (loom's docs find 2 or 3
/// enough for most bugs).
pub const PREEMPTIONS: usize = 4;

/// Runs `f` under loom, every interleaving up to [`PREEMPTIONS`] preemptions (or
/// `LOOM_MAX_PREEMPTIONS`).
pub fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(PREEMPTIONS));
    builder.check(f);
}
