//! summary.json (placeholder; helper writes it)
