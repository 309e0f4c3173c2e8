//! Progress while a ramp runs: a live bar on a terminal, one line per finished step
//! otherwise (logs, CI).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::ramp::engine::{Observer, Plan, Step};
use crate::report::format::{latency, rate};

/// Reports a ramp's progress on stderr.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    levels: Vec<u32>,
    step: Duration,
}

impl Progress {
    pub(crate) fn new(plan: &Plan) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let total = u64::try_from(plan.total().as_millis()).unwrap_or(u64::MAX);
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner:.cyan} {elapsed:>4} [{bar:32.cyan/blue}] {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            levels: plan.levels.clone(),
            step: plan.step,
        }
    }

    fn header(&self, index: usize) -> String {
        format!(
            "step {:>2}/{} · {:>4} users",
            index + 1,
            self.levels.len(),
            self.levels.get(index).copied().unwrap_or_default()
        )
    }

    fn summary(step: &Step) -> String {
        let mut line = format!(
            "{:>9} · mean {:>9} · p99 {:>9}",
            rate(step.throughput),
            latency(step.mean_latency),
            latency(step.p99)
        );
        if step.failed > 0 {
            line.push_str(&format!(" · {} failed", step.failed));
        }
        line
    }

    /// Ends the bar, leaving the printed lines.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn step_started(&mut self, index: usize, _users: u32) {
        if let Some(bar) = &self.bar {
            let done = self.step * u32::try_from(index).unwrap_or(u32::MAX);
            bar.set_position(u64::try_from(done.as_millis()).unwrap_or(u64::MAX));
            bar.set_message(format!("{} · warming up", self.header(index)));
        }
    }

    fn tick(&mut self, index: usize, so_far: &Step) {
        if let Some(bar) = &self.bar {
            bar.inc(u64::try_from(super::ramp::TICK.as_millis()).unwrap_or(0));
            bar.set_message(format!(
                "{} · {}",
                self.header(index),
                Self::summary(so_far)
            ));
        }
    }

    fn step_finished(&mut self, index: usize, step: &Step) {
        let line = format!("{} · {}", self.header(index), Self::summary(step));
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}
