//! Fit the Universal Scalability Law to throughput measurements and read off
//! where a system stops scaling.
//!
//! # Concepts
//!
//! Neil Gunther's Universal Scalability Law (USL) models throughput `X` as a
//! function of concurrency `N` with three coefficients:
//!
//! ```text
//! X(N) = λN / (1 + σ(N − 1) + κN(N − 1))
//! ```
//!
//! - **λ (lambda)**: the throughput one unit of concurrency would deliver
//!   with no interference, the slope of ideal linear scaling.
//! - **σ (sigma), contention**: the serialised fraction of the work (queueing
//!   for a lock, a connection, a disk). Alone it caps throughput at the
//!   *Amdahl ceiling* λ/σ.
//! - **κ (kappa), coherency**: the cost of keeping shared state consistent,
//!   paid pairwise. Any κ > 0 makes throughput peak at
//!   N* = √((1 − σ)/κ) and then *fall* as load grows (retrograde scaling).
//!
//! [`fit`] estimates σ ≥ 0, κ ≥ 0 and λ > 0 by bounded nonlinear least squares
//! (no measurement at N = 1 needed), with standard errors, Student-t
//! confidence intervals and R². A coefficient whose interval includes 0 is
//! not significant: a fit whose κ is not significant reports no peak but an
//! Amdahl ceiling, and [`Fit::limit`] says whether the system is
//! [`Limit::Coherency`]-, [`Limit::Contention`]-limited or scales
//! [`Limit::Linear`]ly. Data that cannot support a fit (too few levels, bad
//! values, a degenerate optimum) gives a typed [`FitError`].
//!
//! Latency measurements convert through Little's law, N = X·R: a load test
//! that records throughput and mean latency per step gives the concurrency
//! of each step.
//!
//! # Example
//!
//! ```
//! use scalewatch_usl::{fit, Limit, Point};
//!
//! // SPEC SDM91 benchmark of a SPARCcenter 2000 (the `specsdm91` data set of
//! // the R `usl` package): users and scripts per hour.
//! let data = [
//!     (1.0, 64.9), (18.0, 995.9), (36.0, 1652.4), (72.0, 1853.2),
//!     (108.0, 1828.9), (144.0, 1775.0), (216.0, 1702.2),
//! ];
//! let points: Vec<Point> = data.iter().map(|&(n, x)| Point::new(n, x)).collect();
//!
//! let fit = fit(&points)?;
//! assert!((fit.model.sigma - 0.0277).abs() < 1e-4);
//! assert_eq!(fit.limit, Limit::Coherency);
//! let peak = fit.peak_concurrency().expect("κ is significant");
//! assert!((peak - 96.5).abs() < 1.0);
//! println!("peak of {:.0}/h at {peak:.0} users", fit.peak_throughput().unwrap_or_default());
//! # Ok::<(), scalewatch_usl::FitError>(())
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `serde` | no | `Serialize`/`Deserialize` for [`Model`], [`Fit`], [`Point`], [`Limit`] and their parts |

// Negated float comparisons (`!(x > 0.0)`) are deliberate throughout: they
// treat NaN as failing the check, which `x <= 0.0` would not.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod datasets;
mod fit;
mod model;
mod solver;
mod stats;

pub use datasets::SPECSDM91;
pub use fit::{
    fit, fit_with, Fit, FitError, FitOptions, Interval, PerCoefficient, Point, Quantity,
};
pub use model::{Limit, Model};
