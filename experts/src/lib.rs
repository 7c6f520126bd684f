//! Mixture of constraint experts.
