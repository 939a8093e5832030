//! The `run` safety filter. (Being implemented by the tools work.)
