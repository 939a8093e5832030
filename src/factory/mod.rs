//! factory room. Filled in by its issue.
