//! Placeholder: filled by the broker black-box suite.
