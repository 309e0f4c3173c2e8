//! scalewatch's own health signals (`scalewatch.sdk.*`).

use super::InstrumentKind::Counter as C;
use super::Signal;

/// `scalewatch.sdk.overflow`.
pub const SDK_OVERFLOW: Signal = Signal::new(
    "scalewatch.sdk.overflow",
    C,
    "{measurement}",
    "Measurements folded into _OTHER by a cardinality cap.",
);

/// Every SDK signal, in catalog order.
pub const ALL: &[Signal] = &[SDK_OVERFLOW];

/// Attribute keys of the SDK signals.
pub mod attr {
    /// `scalewatch.sdk.signal`: the signal whose attribute was capped.
    pub const SDK_SIGNAL: &str = "scalewatch.sdk.signal";
}

/// The value every capped attribute collapses into once its cap is reached.
pub const OTHER: &str = "_OTHER";
