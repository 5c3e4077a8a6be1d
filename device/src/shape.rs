//! Static shape inference per op and whole-graph validation.
