//! Strategies shared by property tests.

use proptest::prelude::*;

/// Finite f32 values (the wire refuses NaN and infinities).
pub fn finite_f32() -> impl Strategy<Value = f32> {
    -1.0e6f32..1.0e6f32
}

/// Finite f64 values.
pub fn finite_f64() -> impl Strategy<Value = f64> {
    -1.0e12f64..1.0e12f64
}
