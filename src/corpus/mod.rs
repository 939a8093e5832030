//! corpus room. Filled in by its issue.
