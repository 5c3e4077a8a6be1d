//! Facts about the machine: CPU model, peak memory, build commit.
