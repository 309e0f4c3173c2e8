//! The few statistical functions the fit needs: Student's t quantile and a
//! small dense solver. Hand-written so the crate stays dependency-free.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; about 15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEF[0];
    for (i, c) in COEF.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Continued fraction for the regularized incomplete beta (modified Lentz).
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const EPS: f64 = 1e-16;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=1000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        h *= lentz_step(aa, &mut c, &mut d);
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        let del = lentz_step(aa, &mut c, &mut d);
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function I_x(a, b).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

/// P(T > t) for Student's t with `dof` degrees of freedom and t ≥ 0.
fn t_upper_tail(t: f64, dof: f64) -> f64 {
    0.5 * incomplete_beta(dof / 2.0, 0.5, dof / (dof + t * t))
}

/// The quantile q with P(T ≤ q) = p of Student's t with `dof` degrees of
/// freedom, for p in (0.5, 1) and dof ≥ 1. Solved by bisection on the
/// monotone tail, so it is deterministic and accurate to the last few ulps.
pub(crate) fn student_t_quantile(p: f64, dof: f64) -> f64 {
    let tail = 1.0 - p;
    let mut hi = 1.0_f64;
    while t_upper_tail(hi, dof) > tail && hi < 1e300 {
        hi *= 2.0;
    }
    let mut lo = 0.0_f64;
    for _ in 0..2000 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if t_upper_tail(mid, dof) > tail {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Solves `a x = b` for a small dense system (Gaussian elimination with
/// partial pivoting). Returns `None` when a pivot vanishes.
pub(crate) fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> Option<[f64; N]> {
    for col in 0..N {
        let pivot_row = (col..N).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot_row][col].abs() <= f64::MIN_POSITIVE || !a[pivot_row][col].is_finite() {
            return None;
        }
        a.swap(col, pivot_row);
        b.swap(col, pivot_row);
        for row in col + 1..N {
            let factor = a[row][col] / a[col][col];
            let pivot = a[col];
            for (value, p) in a[row].iter_mut().zip(pivot).skip(col) {
                *value -= factor * p;
            }
            b[row] -= factor * b[col];
        }
    }
    let mut x = [0.0; N];
    for row in (0..N).rev() {
        let mut sum = b[row];
        for k in row + 1..N {
            sum -= a[row][k] * x[k];
        }
        x[row] = sum / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Inverts a symmetric positive definite 3×3 matrix after scaling it to unit
/// diagonal. Returns `None` when the matrix is singular or so ill-conditioned
/// that a variance inflation factor exceeds 1e12.
pub(crate) fn invert_spd3(a: [[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let scale: [f64; 3] = std::array::from_fn(|i| a[i][i].sqrt());
    if scale.iter().any(|s| !s.is_finite() || *s <= 0.0) {
        return None;
    }
    let corr: [[f64; 3]; 3] =
        std::array::from_fn(|i| std::array::from_fn(|j| a[i][j] / (scale[i] * scale[j])));
    let mut inverse = [[0.0; 3]; 3];
    for col in 0..3 {
        let mut unit = [0.0; 3];
        unit[col] = 1.0;
        let x = solve(corr, unit)?;
        for row in 0..3 {
            inverse[row][col] = x[row];
        }
    }
    for (i, row) in inverse.iter().enumerate() {
        // Diagonal of the inverse correlation matrix: variance inflation.
        if !(row[i] > 0.0 && row[i] < 1e12) {
            return None;
        }
    }
    Some(std::array::from_fn(|i| {
        std::array::from_fn(|j| inverse[i][j] / (scale[i] * scale[j]))
    }))
}

/// The floor that keeps the continued fraction's terms away from zero.
const TINY: f64 = 1e-300;

/// One step of the modified Lentz method with the partial numerator `aa`: updates `c` and
/// `d` (kept away from zero) and returns the factor the fraction is multiplied by.
fn lentz_step(aa: f64, c: &mut f64, d: &mut f64) -> f64 {
    *d = 1.0 + aa * *d;
    if d.abs() < TINY {
        *d = TINY;
    }
    *c = 1.0 + aa / *c;
    if c.abs() < TINY {
        *c = TINY;
    }
    *d = 1.0 / *d;
    *d * *c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn t_quantiles_match_published_tables() {
        // Values from standard t tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2).
        let cases = [
            (0.975, 1.0, 12.706_204_736),
            (0.975, 2.0, 4.302_652_730),
            (0.975, 4.0, 2.776_445_105),
            (0.975, 8.0, 2.306_004_135),
            (0.975, 30.0, 2.042_272_456),
            (0.95, 10.0, 1.812_461_123),
            (0.995, 2.0, 9.924_843_201),
            (0.995, 120.0, 2.617_421_145),
            (0.975, 1e6, 1.959_966_4),
        ];
        for (p, dof, want) in cases {
            let got = student_t_quantile(p, dof);
            assert!(close(got, want, 1e-7), "t({p}, {dof}) = {got}, want {want}");
        }
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-14));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-13
        ));
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // matrix indices read best here
    fn solve_and_invert() {
        let x = solve([[4.0, 1.0], [1.0, 3.0]], [1.0, 2.0]).unwrap();
        assert!(close(x[0], 1.0 / 11.0, 1e-12) && close(x[1], 7.0 / 11.0, 1e-12));
        let a = [[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]];
        let inv = invert_spd3(a).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| a[i][k] * inv[k][j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        assert!(invert_spd3([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).is_none());
        assert!(solve([[0.0, 0.0], [0.0, 0.0]], [1.0, 1.0]).is_none());
    }
}
