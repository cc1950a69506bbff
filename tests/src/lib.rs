//! Black-box tests of rrc.
