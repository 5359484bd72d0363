//! The one progress line of `--processes`: built each second from the
//! latest [`ProgressReport`] of every child. Counts and rates are summed;
//! the p95 and the generator lag are the highest of the children's, and
//! the line says `max`. Shown as the single process shows its own: redrawn
//! on a terminal ([`Progress::Live`]), a plain line every 5 s otherwise
//! ([`Progress::Lines`]), nothing when quiet.

use super::ProgressReport;
use crate::plan::Plan;
use crate::run::Progress;
use crate::units::format_duration;
use std::fmt::Write as _;
use std::time::Duration;

/// The children's latest reports and how to show them.
pub struct Board {
    mode: Progress,
    phases: Vec<String>,
    total: Duration,
    reports: Vec<Option<ProgressReport>>,
    ended: Vec<bool>,
    bar: Option<indicatif::ProgressBar>,
    /// The elapsed second of the last plain line.
    printed: Option<u64>,
}

impl Board {
    pub fn new(mode: Progress, plan: &Plan, processes: u32) -> Board {
        let bar = (mode == Progress::Live).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(plan.total.as_secs().max(1)),
                indicatif::ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:16.cyan/blue} {msg}")
                    .expect("a valid template")
                    .progress_chars("█▉ "),
            );
            bar
        });
        Board {
            mode,
            phases: plan.phase_names().map(str::to_owned).collect(),
            total: plan.total,
            reports: vec![None; processes as usize],
            ended: vec![false; processes as usize],
            bar,
            printed: None,
        }
    }

    pub fn update(&mut self, child: usize, report: ProgressReport) {
        self.reports[child] = Some(report);
    }

    /// A child has ended: its last report stays in the sums (its counts
    /// are still part of the run) but its rates no longer are.
    pub fn ended(&mut self, child: usize) {
        self.ended[child] = true;
        if let Some(r) = &mut self.reports[child] {
            r.requests = 0;
            r.errors = 0;
            r.in_flight = 0;
            r.queued = 0;
            if let Some(hub) = &mut r.hub {
                *hub = [0, 0, 0];
            }
        }
    }

    /// The line for now, once any child has reported.
    pub fn line(&self) -> Option<String> {
        let reports: Vec<&ProgressReport> = self.reports.iter().flatten().collect();
        let elapsed = reports.iter().map(|r| r.elapsed_s).max()?;
        let phase = reports.iter().map(|r| r.phase).max().unwrap_or(0);
        let sum = |f: fn(&ProgressReport) -> u64| reports.iter().map(|r| f(r)).sum::<u64>();
        let max = |f: fn(&ProgressReport) -> Option<u64>| reports.iter().filter_map(|r| f(r)).max();
        let running = self.ended.iter().filter(|e| !**e).count();
        let mut line = format!(
            "[{:>6} / {}] {} · {running}/{} processes",
            format_duration(Duration::from_secs(elapsed)),
            format_duration(self.total),
            self.phases.get(phase).map(String::as_str).unwrap_or("-"),
            self.reports.len(),
        );
        let ms = |us: Option<u64>| match us {
            Some(us) => format!("{:.1}ms", us as f64 / 1000.0),
            None => "-".into(),
        };
        let _ = write!(
            line,
            " · {} req/s · p95(5s) max {} · {} err/s · {} in flight · {} arrivals",
            sum(|r| r.requests),
            ms(max(|r| r.p95_us)),
            sum(|r| r.errors),
            sum(|r| r.in_flight),
            sum(|r| r.arrivals),
        );
        let queued = sum(|r| r.queued);
        if queued > 0 {
            let _ = write!(line, " · {queued} queued");
        }
        if let Some(lag) = max(|r| r.lag_p95_us).filter(|us| *us >= 1000) {
            let _ = write!(line, " · lag p95 max {}", ms(Some(lag)));
        }
        if reports.iter().any(|r| r.hub.is_some()) {
            let hub =
                |i: usize| -> u64 { reports.iter().filter_map(|r| r.hub).map(|h| h[i]).sum() };
            let _ = write!(
                line,
                " · hub {}/{} registered · {} hub err/s",
                hub(0),
                hub(1),
                hub(2)
            );
        }
        Some(line)
    }

    /// Once a second: redraw the live line, or print a plain one every 5 s
    /// of the run.
    pub fn show(&mut self) {
        let Some(line) = self.line() else { return };
        let elapsed = self
            .reports
            .iter()
            .flatten()
            .map(|r| r.elapsed_s)
            .max()
            .unwrap_or(0);
        match (&self.bar, self.mode) {
            (Some(bar), _) => {
                bar.set_position(elapsed.min(bar.length().unwrap_or(0)));
                bar.set_message(line);
            }
            (None, Progress::Lines)
                if elapsed >= 5 && self.printed.map(|p| p / 5) != Some(elapsed / 5) =>
            {
                self.printed = Some(elapsed);
                eprintln!("{line}");
            }
            _ => {}
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_sums_counts_and_takes_the_highest_p95() {
        let scenario = crate::scenario::load_str(
            std::path::Path::new("s.toml"),
            std::path::Path::new("."),
            "name = \"s\"\n[target]\napi = \"builtin\"\n[[users]]\nname = \"u\"\nsteps = [{ name = \"a\", get = \"/health\" }]\n[[phases]]\nname = \"p\"\nduration = \"10s\"\nusers = { rate = \"10/s\" }\n",
            &crate::scenario::Overrides::default(),
        )
        .expect("valid");
        let plan = Plan::new(&scenario);
        let mut board = Board::new(Progress::Quiet, &plan, 3);
        assert_eq!(board.line(), None);
        let report = |elapsed_s, requests, p95| ProgressReport {
            elapsed_s,
            requests,
            p95_us: Some(p95),
            in_flight: 1,
            arrivals: requests * 2,
            hub: Some([4, 5, 1]),
            ..ProgressReport::default()
        };
        board.update(0, report(3, 10, 2_000));
        board.update(1, report(4, 7, 9_500));
        board.update(2, report(4, 5, 1_000));
        assert_eq!(
            board.line().unwrap(),
            "[    4s / 10s] p · 3/3 processes · 22 req/s · p95(5s) max 9.5ms · 0 err/s · 3 in flight · 44 arrivals · hub 12/15 registered · 3 hub err/s"
        );
        board.ended(1);
        let line = board.line().unwrap();
        assert!(line.contains("2/3 processes · 15 req/s"), "{line}");
        assert!(line.contains("44 arrivals"), "{line}");
    }
}
