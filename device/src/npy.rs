//! NumPy `.npy` reading and writing for raw tensors.
