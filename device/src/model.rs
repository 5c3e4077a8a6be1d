//! A loaded model: bundle header plus a planned executor.
