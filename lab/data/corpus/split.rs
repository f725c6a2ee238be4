//! Which split a generated line is for.

/// Which split a line is generated for: the generators keep the two disjoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}
