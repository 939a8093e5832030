//! Path confinement. (Being implemented by the tools work.)
