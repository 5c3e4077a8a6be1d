//! Where a run's time goes: wall time per executed step (a node, or a group of nodes the
//! executor runs as one), accumulated over profiled runs, and the same summed per op kind.

use std::time::{Duration, Instant};

/// Accumulated time of every step the executor ran, in execution order.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    steps: Vec<StepTime>,
    runs: u64,
}

/// One executed step: the graph node (or first node of a fused group) it stands for.
#[derive(Clone, Debug, PartialEq)]
pub struct StepTime {
    /// Node name from the source model (the first node of a fused group).
    pub node: String,
    /// What the step computes: the op kind, with `+` joining the ops of a fused group
    /// (e.g. `QLinear+Add`).
    pub op: String,
    /// How many times it ran.
    pub calls: u64,
    /// Total wall time over all calls.
    pub total: Duration,
}

/// Total time of every step of one op kind.
#[derive(Clone, Debug, PartialEq)]
pub struct OpTime {
    /// The op kind (as [`StepTime::op`]).
    pub op: String,
    /// Calls of steps of this kind.
    pub calls: u64,
    /// Total wall time.
    pub total: Duration,
}

impl Profile {
    /// Steps in execution order.
    pub fn steps(&self) -> &[StepTime] {
        &self.steps
    }

    /// Profiled runs so far.
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// Sum over all steps.
    pub fn total(&self) -> Duration {
        self.steps.iter().map(|s| s.total).sum()
    }

    /// Totals per op kind, the most expensive first.
    pub fn by_op(&self) -> Vec<OpTime> {
        let mut out: Vec<OpTime> = Vec::new();
        for s in &self.steps {
            match out.iter_mut().find(|o| o.op == s.op) {
                Some(o) => {
                    o.calls += s.calls;
                    o.total += s.total;
                }
                None => out.push(OpTime {
                    op: s.op.clone(),
                    calls: s.calls,
                    total: s.total,
                }),
            }
        }
        out.sort_by_key(|o| std::cmp::Reverse(o.total));
        out
    }

    /// Starts a run: the executor then records its steps in order with [`Profile::record`].
    pub(crate) fn begin_run(&mut self) {
        self.runs += 1;
    }

    /// Adds the time since `start` to the `index`-th step of a run (created on first use).
    pub(crate) fn record(&mut self, index: usize, node: &str, op: &str, start: Instant) {
        let elapsed = start.elapsed();
        if index == self.steps.len() {
            self.steps.push(StepTime {
                node: node.to_string(),
                op: op.to_string(),
                calls: 0,
                total: Duration::ZERO,
            });
        }
        if let Some(s) = self.steps.get_mut(index) {
            s.calls += 1;
            s.total += elapsed;
        }
    }
}
