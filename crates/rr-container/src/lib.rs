//! The container lifecycle of rr.
#![deny(missing_docs)]
