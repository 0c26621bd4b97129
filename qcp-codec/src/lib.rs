//! PostgreSQL wire protocol codec (placeholder, being written).
