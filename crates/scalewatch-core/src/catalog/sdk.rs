//! scalewatch's own health signals (`scalewatch.sdk.*`).

signals! {
    /// Every SDK signal, in catalog order.
    ALL;
    /// `scalewatch.sdk.overflow`.
    SDK_OVERFLOW = counter("scalewatch.sdk.overflow", "{measurement}", "Measurements folded into _OTHER by a cardinality cap.");
}

/// Attribute keys of the SDK signals.
pub mod attr {
    /// `scalewatch.sdk.signal`: the signal whose attribute was capped.
    pub const SDK_SIGNAL: &str = "scalewatch.sdk.signal";
}

/// The value every capped attribute collapses into once its cap is reached.
pub const OTHER: &str = "_OTHER";
