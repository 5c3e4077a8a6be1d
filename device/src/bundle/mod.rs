//! Bundle v1: the versioned, checksummed file format of a compiled model.
