//! What the std, parking_lot and tokio flavours share: the lock around a primitive and its
//! statistics, and the guards that end a hold when they drop.
//!
//! Macros rather than a generic wrapper: each flavour keeps its own named public types
//! (with their own docs, `#[must_use]` and auto traits derived from the primitive's guard),
//! and the fast path stays the primitive's own calls, inlined, with no trait in between.

/// Defines an instrumented lock `$lock` around `$inner<T>`, with `new`, `name`,
/// `into_inner`, `get_mut`, `Debug` and `Saturable`. With `poisoning`, `into_inner` and
/// `get_mut` return std's `LockResult` and `is_poisoned` and `clear_poison` are added, all
/// four left out of the loom build (loom's primitives have none of them). `new` registers
/// the statistics under the first mode (the one counted towards utilization) and declares
/// the others, so their series exist from the start.
macro_rules! instrumented_lock {
    (
        $(#[$attr:meta])*
        pub struct $lock:ident($($inner:ident)::+)
        modes [$first:ident $(, $other:ident)*] $(, $poisoning:ident)?;
        $(#[$new_attr:meta])*
        new;
    ) => {
        $(#[$attr])*
        pub struct $lock<T: ?Sized> {
            stats: ::std::sync::Arc<$crate::stats::LockStats>,
            inner: $($inner)::+<T>,
        }

        impl<T> $lock<T> {
            $(#[$new_attr])*
            pub fn new(
                name: &'static str,
                value: T,
                metrics: &$crate::metrics::LockMetrics,
            ) -> Self {
                let stats = metrics.stats(name, $crate::stats::LockMode::$first);
                $(stats.declare($crate::stats::LockMode::$other);)*
                Self {
                    stats,
                    inner: $($inner)::+::new(value),
                }
            }
        }

        impl<T: ?Sized> $lock<T> {
            /// The static name this lock records under.
            pub fn name(&self) -> &'static str {
                self.stats.name()
            }
        }

        instrumented_lock!(@owned $lock $($poisoning)?);

        impl<T: ?Sized + ::std::fmt::Debug> ::std::fmt::Debug for $lock<T> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($lock))
                    .field("name", &self.stats.name())
                    .field("inner", &&self.inner)
                    .finish()
            }
        }

        impl<T: ?Sized> ::scalewatch_core::resource::Saturable for $lock<T> {
            /// The locks of this one's name, for `CapacityModel::register`: the fraction of
            /// time they were held exclusively, and their mean waiters.
            fn resource(&self) -> ::scalewatch_core::resource::ResourceSource {
                $crate::metrics::lock_resource(&self.stats)
            }
        }
    };
    (@owned $lock:ident) => {
        impl<T> $lock<T> {
            /// Consumes the lock, returning the value.
            pub fn into_inner(self) -> T {
                self.inner.into_inner()
            }
        }

        impl<T: ?Sized> $lock<T> {
            /// A mutable reference to the value, with no locking.
            pub fn get_mut(&mut self) -> &mut T {
                self.inner.get_mut()
            }
        }
    };
    (@owned $lock:ident poisoning) => {
        #[cfg(not(loom))]
        impl<T> $lock<T> {
            /// Consumes the lock, returning the value; an error if it is poisoned.
            pub fn into_inner(self) -> ::std::sync::LockResult<T> {
                self.inner.into_inner()
            }
        }

        #[cfg(not(loom))]
        impl<T: ?Sized> $lock<T> {
            /// A mutable reference to the value, with no locking; an error if poisoned.
            pub fn get_mut(&mut self) -> ::std::sync::LockResult<&mut T> {
                self.inner.get_mut()
            }

            /// Whether a holder panicked (std semantics).
            pub fn is_poisoned(&self) -> bool {
                self.inner.is_poisoned()
            }

            /// Clears the poisoned state (std semantics).
            pub fn clear_poison(&self) {
                self.inner.clear_poison();
            }
        }
    };
}

/// Defines the guard `$guard` holding `$inner<'a, T>` in mode `$mode`: it derefs to the
/// value (mutably unless `read_only`) and ends the hold when it drops, before the
/// primitive's guard (a field) unlocks.
macro_rules! instrumented_guard {
    (
        $(#[$attr:meta])*
        pub struct $guard:ident($($inner:ident)::+) in $mode:ident $(, $read_only:ident)?;
    ) => {
        $(#[$attr])*
        pub struct $guard<'a, T: ?Sized> {
            stats: &'a $crate::stats::LockStats,
            hold: $crate::stats::Hold,
            inner: $($inner)::+<'a, T>,
        }

        impl<'a, T: ?Sized> $guard<'a, T> {
            /// The guard of a hold that `stats` counted as `hold`.
            #[inline]
            fn wrap(
                stats: &'a $crate::stats::LockStats,
                hold: $crate::stats::Hold,
                inner: $($inner)::+<'a, T>,
            ) -> Self {
                Self { stats, hold, inner }
            }
        }

        impl<T: ?Sized> ::std::ops::Deref for $guard<'_, T> {
            type Target = T;
            fn deref(&self) -> &T {
                &self.inner
            }
        }

        instrumented_guard!(@deref_mut $guard $($read_only)?);

        impl<T: ?Sized> Drop for $guard<'_, T> {
            #[inline]
            fn drop(&mut self) {
                self.stats.release(self.hold, $crate::stats::LockMode::$mode);
            }
        }

        guard_fmt!($guard);
    };
    (@deref_mut $guard:ident read_only) => {};
    (@deref_mut $guard:ident) => {
        impl<T: ?Sized> ::std::ops::DerefMut for $guard<'_, T> {
            fn deref_mut(&mut self) -> &mut T {
                &mut self.inner
            }
        }
    };
}

/// `Debug` and `Display` of a guard: those of the value, as std's guards.
macro_rules! guard_fmt {
    ($guard:ident) => {
        impl<T: ?Sized + ::std::fmt::Debug> ::std::fmt::Debug for $guard<'_, T> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(&**self, f)
            }
        }

        impl<T: ?Sized + ::std::fmt::Display> ::std::fmt::Display for $guard<'_, T> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&**self, f)
            }
        }
    };
}
