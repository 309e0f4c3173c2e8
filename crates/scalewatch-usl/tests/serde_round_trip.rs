//! With the `serde` feature the fit serialises and deserialises losslessly.
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used)]

use scalewatch_usl::{fit, Fit, Limit, Model, Point, SPECSDM91};

#[test]
fn fit_round_trips_through_json() {
    let points = SPECSDM91.to_vec();
    let fit = fit(&points).unwrap();
    let json = serde_json::to_value(&fit).unwrap();
    assert_eq!(json["limit"], "coherency");
    assert!(json["model"]["sigma"].is_f64());
    assert!(json["confidence_intervals"]["kappa"]["lower"].is_f64());
    let back: Fit = serde_json::from_value(json).unwrap();
    assert_eq!(back, fit);

    let model: Model = serde_json::from_str(r#"{"sigma":0.1,"kappa":0.0,"lambda":5.0}"#).unwrap();
    assert_eq!(model.limit(), Limit::Contention);
    let points_back: Vec<Point> =
        serde_json::from_value(serde_json::to_value(&points).unwrap()).unwrap();
    assert_eq!(points_back, points);
}
