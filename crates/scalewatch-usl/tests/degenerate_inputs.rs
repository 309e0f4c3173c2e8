//! Data that cannot support a fit gives a typed error that says why, and
//! never a panic.
#![allow(clippy::unwrap_used)]

use scalewatch_usl::{fit, fit_with, FitError, FitOptions, Point, Quantity};

fn points(data: &[(f64, f64)]) -> Vec<Point> {
    data.iter().map(|&(n, x)| Point::new(n, x)).collect()
}

const GOOD: [(f64, f64); 5] = [
    (1.0, 10.0),
    (2.0, 19.0),
    (4.0, 35.0),
    (8.0, 60.0),
    (16.0, 80.0),
];

#[test]
fn empty_input_has_too_few_levels() {
    assert_eq!(
        fit(&[]),
        Err(FitError::TooFewLevels {
            found: 0,
            needed: 3
        })
    );
}

#[test]
fn two_levels_are_not_enough_however_many_points() {
    let data = points(&[
        (1.0, 10.0),
        (1.0, 11.0),
        (4.0, 30.0),
        (4.0, 31.0),
        (4.0, 29.0),
    ]);
    let err = fit(&data).unwrap_err();
    assert_eq!(
        err,
        FitError::TooFewLevels {
            found: 2,
            needed: 3
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("found 2 distinct concurrency level"),
        "{message}"
    );
    assert!(message.contains("at least 3"), "{message}");
}

#[test]
fn three_points_leave_no_degrees_of_freedom() {
    let data = points(&[(1.0, 10.0), (2.0, 19.0), (4.0, 35.0)]);
    assert_eq!(
        fit(&data),
        Err(FitError::TooFewPoints {
            found: 3,
            needed: 4
        })
    );
}

#[test]
fn non_finite_values_name_the_point() {
    for (bad, quantity) in [
        (Point::new(f64::NAN, 1.0), Quantity::Concurrency),
        (Point::new(3.0, f64::INFINITY), Quantity::Throughput),
        (Point::new(f64::NEG_INFINITY, 1.0), Quantity::Concurrency),
    ] {
        let mut data = points(&GOOD);
        data.insert(2, bad);
        match fit(&data) {
            Err(FitError::NonFinite {
                index: 2,
                quantity: q,
                ..
            }) => assert_eq!(q, quantity),
            other => panic!("{other:?}"),
        }
    }
    let mut data = points(&GOOD);
    data[4].throughput = f64::NAN;
    let message = fit(&data).unwrap_err().to_string();
    assert!(
        message.starts_with("point 4 has a non-finite throughput"),
        "{message}"
    );
}

#[test]
fn zero_and_negative_values_name_the_point() {
    for (bad, quantity) in [
        (Point::new(0.0, 1.0), Quantity::Concurrency),
        (Point::new(-2.0, 1.0), Quantity::Concurrency),
        (Point::new(3.0, 0.0), Quantity::Throughput),
        (Point::new(3.0, -5.0), Quantity::Throughput),
    ] {
        let mut data = points(&GOOD);
        data.push(bad);
        match fit(&data) {
            Err(FitError::NonPositive {
                index: 5,
                quantity: q,
                value,
            }) => {
                assert_eq!(q, quantity);
                assert!(value <= 0.0);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn constant_throughput_does_not_vary() {
    let data = points(&[(1.0, 50.0), (2.0, 50.0), (4.0, 50.0), (8.0, 50.0)]);
    assert_eq!(fit(&data), Err(FitError::NoVariation));
}

#[test]
fn steeply_falling_throughput_diverges_or_is_singular() {
    // X ∝ 1/N from the first level on: the least-squares coefficients run off
    // to infinity (κ, λ → ∞ with λ/κ fixed).
    let data = points(&[
        (10.0, 100.0),
        (20.0, 50.0),
        (40.0, 25.0),
        (80.0, 12.5),
        (160.0, 6.25),
    ]);
    let err = fit(&data).unwrap_err();
    assert!(
        matches!(err, FitError::Diverged | FitError::Singular),
        "{err:?}"
    );
}

#[test]
fn collinear_coefficients_are_singular() {
    // Exact Amdahl data at huge concurrency only: σ(N − 1) ≫ 1 everywhere, so
    // X ≈ λ/σ and λ, σ cannot be told apart.
    let data = points(&[
        (1e6, 100.0),
        (2e6, 100.0001),
        (3e6, 100.0002),
        (4e6, 100.00025),
    ]);
    let err = fit(&data).unwrap_err();
    assert!(
        matches!(
            err,
            FitError::Singular | FitError::Diverged | FitError::PoorFit { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn confidence_level_outside_the_unit_interval_is_rejected() {
    for level in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
        let err = fit_with(&points(&GOOD), &FitOptions::new().confidence_level(level)).unwrap_err();
        assert!(
            matches!(err, FitError::InvalidConfidenceLevel { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("use a probability such as 0.95"));
    }
}

#[test]
fn fractional_concurrency_is_fitted() {
    // Time-averaged concurrency below 1 is legitimate (a lightly loaded service).
    let truth = scalewatch_usl::Model::new(0.1, 0.01, 200.0);
    let data: Vec<Point> = [0.25, 0.5, 0.75, 1.5, 3.0, 6.0, 9.0]
        .iter()
        .map(|&n| Point::new(n, truth.throughput_at(n)))
        .collect();
    let m = fit(&data).unwrap().model;
    assert!(
        (m.sigma - 0.1).abs() < 1e-6 && (m.kappa - 0.01).abs() < 1e-7,
        "{m:?}"
    );
}

#[test]
fn errors_are_lowercase_and_say_what_to_do() {
    let errors = [
        FitError::TooFewLevels {
            found: 1,
            needed: 3,
        },
        FitError::TooFewPoints {
            found: 3,
            needed: 4,
        },
        FitError::NoVariation,
        FitError::Diverged,
        FitError::Singular,
        FitError::PoorFit { r_squared: -0.1 },
        FitError::NonFinite {
            index: 0,
            quantity: Quantity::Concurrency,
            value: f64::NAN,
        },
        FitError::NonPositive {
            index: 0,
            quantity: Quantity::Throughput,
            value: 0.0,
        },
    ];
    for err in errors {
        let message = err.to_string();
        assert!(
            message.starts_with(|c: char| c.is_lowercase() || c.is_ascii_digit()),
            "{message}"
        );
        assert!(
            message.contains(';'),
            "{message} should say what to do after the cause"
        );
    }
}
