//! Helpers for the browser tests live here.
