//! QCP core (placeholder, being written).
