//! report room. Filled in by its issue.
