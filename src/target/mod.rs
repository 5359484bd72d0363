//! The built-in reference target (placeholder; helper writes it).
