//! The run's figures, printed as one block of `name: value` lines, and its verdict.

use std::time::Duration;

use crate::Report;
use crate::plan::Plan;

impl Report {
    /// Prints what was measured.
    pub fn print(&self, plan: &Plan) {
        let events: u64 = self.tallies.iter().map(|t| t.sent).sum();
        let all = || {
            self.tallies
                .iter()
                .flat_map(|t| t.latencies.iter().copied())
        };
        let mut latencies: Vec<Duration> = all().map(|(d, _)| d).collect();
        let mut applied: Vec<Duration> = all().filter(|(_, a)| *a).map(|(d, _)| d).collect();
        let mut answered: Vec<Duration> = all().filter(|(_, a)| !*a).map(|(d, _)| d).collect();
        let sum = |f: fn(&crate::Tally) -> u64| self.tallies.iter().map(f).sum::<u64>();
        let secs = self.events_for.as_secs_f64();
        let connections = plan.connections() as f64;
        println!("--- kubeknobs load: {plan:?}");
        println!(
            "load: {} senders x {} events/s over {} targets, {} listeners, for {:.1} s",
            plan.sessions, plan.rate, plan.targets, plan.listeners, secs
        );
        println!(
            "events: {events} sent, {:.0} events/s; outcomes: {} applied, {} superseded, {} rejected{}",
            events as f64 / secs,
            sum(|t| t.applied),
            sum(|t| t.superseded),
            sum(|t| t.rejected),
            self.first_rejection()
                .map(|r| format!(" (first: {r})"))
                .unwrap_or_default()
        );
        println!("outcome latency: {}", quantiles(&mut latencies));
        println!(
            "  applied (waited for the write): {}; superseded or refused (answered at once): {}",
            quantiles(&mut applied),
            quantiles(&mut answered)
        );
        println!(
            "gateway CPU: {} ms over the run, {} CPU-ms per 1k events ({:.0} % of one core); the generator: {} ms, {} CPU-ms per 1k",
            self.gateway_cpu.as_millis(),
            per_1k(self.gateway_cpu, events),
            self.gateway_cpu.as_secs_f64() * 100.0 / secs,
            self.own_cpu.as_millis(),
            per_1k(self.own_cpu, events),
        );
        println!(
            "gateway RSS: {:.1} MiB idle, {:.1} MiB with {} sessions: {:.1} KiB per session",
            self.rss_before_kib as f64 / 1024.0,
            self.rss_connected_kib as f64 / 1024.0,
            plan.connections(),
            self.rss_connected_kib.saturating_sub(self.rss_before_kib) as f64 / connections,
        );
        let mut rates: Vec<f64> = self
            .tallies
            .iter()
            .map(|t| t.updates)
            .chain(self.listener_updates.iter().copied())
            .map(|n| n as f64 / plan.duration.as_secs_f64())
            .collect();
        rates.sort_by(f64::total_cmp);
        if let (Some(max), false) = (rates.last(), rates.is_empty()) {
            println!(
                "StateUpdates per session: {:.1}/s mean, {max:.1}/s max (frame rate {}/s)",
                rates.iter().sum::<f64>() / rates.len() as f64,
                plan.frame_rate
            );
        }
        let mut fanout = self.fanout.clone();
        let mut last = self.fanout_last.clone();
        println!(
            "fan-out (probe change -> each session): {}; to the last session: {}; missed {}",
            quantiles(&mut fanout),
            quantiles(&mut last),
            self.probes_missed
        );
        if plan.sessions == 0 && plan.probes > 0 {
            let told = (plan.probes * plan.listeners).max(1) as f64;
            println!(
                "gateway CPU while probing: {} ms for {} probes to {} listeners: {:.1} µs per listener per probe (a probe is a write, then a pod readied: two frames)",
                self.probing_cpu.as_millis(),
                plan.probes,
                plan.listeners,
                self.probing_cpu.as_secs_f64() * 1e6 / told
            );
        }
        let by_probe: Vec<String> = self.fanout_last.iter().map(|d| ms(*d)).collect();
        println!(
            "fan-out to the last session, probe by probe: {} ms",
            by_probe.join(" ")
        );
        let mut connect = self.connect.clone();
        println!(
            "connect ({} sessions at once): all in {} ms (CPU: gateway {} ms, generator {} ms); each: {}; presence named them all after {} ms",
            plan.connections(),
            self.storm.as_millis(),
            self.storm_cpu.0.as_millis(),
            self.storm_cpu.1.as_millis(),
            quantiles(&mut connect),
            self.settled.as_millis()
        );
        match &self.finals {
            Ok(n) => println!("final state: OK, {n} targets show the last value sent"),
            Err(e) => println!("final state: WRONG: {e}"),
        }
    }

    /// `Err` when the run did not do what it should (not a timing: those are for people).
    pub fn verdict(&self) -> Result<(), String> {
        self.finals.as_ref().map_err(Clone::clone)?;
        if self.probes_missed > 0 {
            return Err(format!("{} probe arrivals never came", self.probes_missed));
        }
        match self.first_rejection() {
            Some(r) => Err(format!("events were rejected: {r}")),
            None => Ok(()),
        }
    }

    fn first_rejection(&self) -> Option<&str> {
        self.tallies.iter().find_map(|t| t.rejection.as_deref())
    }
}

/// `p50 … p90 … p99 … max …` in milliseconds.
fn quantiles(values: &mut [Duration]) -> String {
    if values.is_empty() {
        return "none".to_owned();
    }
    values.sort();
    let at = |q: f64| {
        let i = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
        ms(values[i])
    };
    format!(
        "p50 {} p90 {} p99 {} max {} ms (n={})",
        at(0.5),
        at(0.9),
        at(0.99),
        ms(values[values.len() - 1]),
        values.len()
    )
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn per_1k(cpu: Duration, events: u64) -> String {
    if events == 0 {
        return "-".to_owned();
    }
    format!("{:.1}", cpu.as_secs_f64() * 1000.0 * 1000.0 / events as f64)
}
