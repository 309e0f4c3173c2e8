//! What a layer, its services and their guards share, and the options both layer builders
//! take and check the same way.

use crate::admission::Admission;
use crate::classify::Classify;
use crate::signals::{HttpSignals, RpcSignals};
use opentelemetry::metrics::Meter;
use scalewatch_core::{Tier, TierError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Default cap on distinct `rpc.method` values per layer.
pub const DEFAULT_METHOD_CAP: usize = 256;

/// A [`ServerTierLayer`](crate::ServerTierLayer) or
/// [`ClientTierLayer`](crate::ClientTierLayer) could not be built from its configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The tier itself was invalid.
    #[error(transparent)]
    Tier(#[from] TierError),
    /// Queue settings were given without a limit to queue for.
    #[error("`{0}` needs a `concurrency_limit`: without a limit nothing ever queues")]
    QueueWithoutLimit(&'static str),
    /// A zero queue timeout would reject every request that has to wait.
    #[error("queue timeout is zero: use a positive duration, or `load_shed()` to refuse instead of queueing")]
    ZeroQueueTimeout,
    /// The limit is larger than the admission semaphore can hold.
    #[error("concurrency limit {0} is too large: the maximum is {max}", max = Semaphore::MAX_PERMITS)]
    LimitTooLarge(usize),
    /// A cardinality cap of zero.
    #[error("`{0}` is zero: every value would fold into _OTHER; use at least 1")]
    ZeroCap(&'static str),
}

/// The options both layer builders take.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) tier_name: &'static str,
    pub(crate) limit: Option<usize>,
    pub(crate) max_queued: Option<usize>,
    pub(crate) queue_timeout: Option<Duration>,
    /// Cap on distinct HTTP targets: routes (server) or server addresses (client).
    pub(crate) target_cap: usize,
    pub(crate) method_cap: usize,
    pub(crate) enabled: bool,
}

impl Options {
    /// The defaults, for a tier named `tier_name` with up to `target_cap` HTTP targets.
    pub(crate) fn new(tier_name: &'static str, target_cap: usize) -> Self {
        Self {
            tier_name,
            limit: None,
            max_queued: None,
            queue_timeout: None,
            target_cap,
            method_cap: DEFAULT_METHOD_CAP,
            enabled: true,
        }
    }

    /// Validates the options and creates what a layer of side `C` shares on `meter`:
    /// `target_cap_name` names the target cap's builder method in errors, `http` creates
    /// the side's HTTP instruments.
    pub(crate) fn build<C: Classify>(
        &self,
        meter: &Meter,
        target_cap_name: &'static str,
        http: impl FnOnce(&Meter) -> HttpSignals,
    ) -> Result<Shared, BuildError> {
        if self.target_cap == 0 {
            return Err(BuildError::ZeroCap(target_cap_name));
        }
        if self.method_cap == 0 {
            return Err(BuildError::ZeroCap("method_cap"));
        }
        if self.queue_timeout == Some(Duration::ZERO) {
            return Err(BuildError::ZeroQueueTimeout);
        }
        let admission = match self.limit {
            Some(limit) if limit > Semaphore::MAX_PERMITS => {
                return Err(BuildError::LimitTooLarge(limit))
            }
            Some(limit) => Some(Admission::new(limit, self.max_queued, self.queue_timeout)),
            None if self.max_queued.is_some() => {
                return Err(BuildError::QueueWithoutLimit("max_queued / load_shed"))
            }
            None if self.queue_timeout.is_some() => {
                return Err(BuildError::QueueWithoutLimit("queue_timeout"))
            }
            None => None,
        };
        let meter = &scalewatch_core::meter_when(self.enabled, meter);
        let tier = Tier::builder(self.tier_name, C::TIER_KIND)
            .maybe_limit(self.limit.map(|l| l as u64))
            .enabled(self.enabled)
            .build(meter)?;
        Ok(Shared {
            enabled: self.enabled,
            tier,
            http: http(meter),
            rpc: RpcSignals::new(meter, C::RPC_DURATION, self.method_cap),
            admission,
        })
    }
}

/// What every clone of a layer and its services share.
pub(crate) struct Shared {
    /// Built with `enabled(true)`, the default.
    pub(crate) enabled: bool,
    pub(crate) tier: Tier,
    pub(crate) http: HttpSignals,
    pub(crate) rpc: RpcSignals,
    pub(crate) admission: Option<Admission>,
}

/// What the clones of one tier service share: one `Arc` for all of it, since routers
/// (axum's) and clients are often cloned per request, and each `Arc` costs two atomic
/// operations per clone.
pub(crate) struct Local<T> {
    /// Not enabled and no limit to enforce: requests go straight to the inner service.
    pub(crate) passes_through: bool,
    pub(crate) shared: Arc<Shared>,
    /// The first target (route, server) this service instance saw, found here without
    /// touching the shared table as long as requests keep to it.
    pub(crate) first: OnceLock<T>,
}

impl<T> Local<T> {
    /// The state of a service that `shared`'s layer wraps around an inner one.
    pub(crate) fn new(shared: &Arc<Shared>) -> Self {
        Self {
            passes_through: !shared.enabled && shared.admission.is_none(),
            shared: shared.clone(),
            first: OnceLock::new(),
        }
    }
}
