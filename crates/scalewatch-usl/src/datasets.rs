//! Published measurements with published USL fits, to check a fit against or to try the
//! crate on.

use crate::Point;

/// SPEC SDM91 benchmark on a Sun SPARCcenter 2000: users (N) and scripts per hour (X).
///
/// The `specsdm91` data set shipped with R `usl` (also used in Gunther, *Guerrilla
/// Capacity Planning*, 2007). R `usl` fits it with σ = 0.0277285, κ = 0.0001044 and
/// λ = 89.9952330 (`tests/usl-nlxb.Rout.save`), and [`fit`](crate::fit) agrees to all
/// printed digits: its optimum is interior, so coherency limits it, with a peak near 97
/// users.
pub const SPECSDM91: [Point; 7] = [
    Point::new(1.0, 64.9),
    Point::new(18.0, 995.9),
    Point::new(36.0, 1652.4),
    Point::new(72.0, 1853.2),
    Point::new(108.0, 1828.9),
    Point::new(144.0, 1775.0),
    Point::new(216.0, 1702.2),
];
