//! The live view: a ratatui dashboard when stderr is a terminal, otherwise one
//! plain line per metrics interval on stderr.
//!
//! The dashboard shows phase and progress, arrivals (actual vs planned), in
//! flight vs the cap, completions/s, the flow's JSON-RPC calls and their
//! success rate, p50/p95 per step, errors by class, open circuit breakers,
//! firing alerts and an ETA. It does not enable raw mode, so
//! Ctrl-C still interrupts the run (which then writes its results). In plain
//! mode an alert is printed on its own line the moment it fires.

use std::io::{IsTerminal, Stderr};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Row, Table};

/// How the run shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LiveMode {
    /// Dashboard on a TTY, plain lines otherwise.
    #[default]
    Auto,
    Tui,
    Plain,
    Off,
}

/// What the live view shows, refreshed every second.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    pub profile: String,
    pub phase: String,
    pub elapsed_s: f64,
    pub schedule_s: f64,
    pub planned: u64,
    pub planned_arrivals: u64,
    pub arrivals: u64,
    pub in_flight: u64,
    pub cap: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub delayed: u64,
    pub dropped: u64,
    pub completions_per_s: f64,
    pub e2e_p50_ms: Option<f64>,
    pub e2e_p95_ms: Option<f64>,
    /// (step, p50 ms, p95 ms, errors)
    pub steps: Vec<(String, Option<f64>, Option<f64>, u64)>,
    pub errors: Vec<(String, u64)>,
    pub breakers_open: Vec<String>,
    /// Alerts firing now, each in words (`error rate 3.2 % > 1 %`).
    pub alerts: Vec<String>,
    /// The flow's JSON-RPC calls so far, when it counts them.
    pub rpc: Option<crate::schema::RpcCounts>,
    pub eta_s: Option<f64>,
}

fn secs(ms: Option<f64>) -> String {
    ms.map_or("-".into(), |m| {
        if m >= 1000.0 {
            format!("{:.2}s", m / 1000.0)
        } else {
            format!("{m:.0}ms")
        }
    })
}

fn hms(s: f64) -> String {
    let s = s.max(0.0) as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `1234 calls, 99.9 % ok`.
fn rpc_text(r: &crate::schema::RpcCounts) -> String {
    format!(
        "{} calls, {:.1} % ok",
        r.total(),
        100.0 * r.success_rate().unwrap_or(0.0)
    )
}

impl LiveState {
    /// The plain one-line form.
    pub fn line(&self) -> String {
        let errs: Vec<String> = self
            .errors
            .iter()
            .map(|(c, n)| format!("{c}={n}"))
            .collect();
        let mut s = format!(
            "[{} {:>5.1}%] {} arrivals {}/{} (planned {}) in-flight {}/{} ok {} failed {} {:.2}/s e2e p50 {} p95 {} delayed {} dropped {}",
            hms(self.elapsed_s),
            100.0 * self.arrivals as f64 / self.planned.max(1) as f64,
            self.phase,
            self.arrivals,
            self.planned,
            self.planned_arrivals,
            self.in_flight,
            self.cap,
            self.succeeded,
            self.failed,
            self.completions_per_s,
            secs(self.e2e_p50_ms),
            secs(self.e2e_p95_ms),
            self.delayed,
            self.dropped
        );
        if let Some(r) = self.rpc.filter(|r| r.total() > 0) {
            s.push_str(&format!(" rpc {}", rpc_text(&r)));
        }
        if !errs.is_empty() {
            s.push_str(&format!(" errors: {}", errs.join(" ")));
        }
        if !self.breakers_open.is_empty() {
            s.push_str(&format!(" BREAKER OPEN: {}", self.breakers_open.join(",")));
        }
        if !self.alerts.is_empty() {
            s.push_str(&format!(" ALERT: {}", self.alerts.join("; ")));
        }
        if let Some(eta) = self.eta_s {
            s.push_str(&format!(" eta {}", hms(eta)));
        }
        s
    }
}

/// The live view's output.
pub enum LiveView {
    Tui(Box<Terminal<CrosstermBackend<Stderr>>>),
    Plain,
    Off,
}

impl LiveView {
    pub fn start(mode: LiveMode) -> LiveView {
        let tty = std::io::stderr().is_terminal();
        match mode {
            LiveMode::Off => LiveView::Off,
            LiveMode::Plain => LiveView::Plain,
            LiveMode::Auto if !tty => LiveView::Plain,
            LiveMode::Auto | LiveMode::Tui => {
                let mut err = std::io::stderr();
                if crossterm::execute!(
                    err,
                    crossterm::terminal::EnterAlternateScreen,
                    crossterm::cursor::Hide
                )
                .is_err()
                {
                    return LiveView::Plain;
                }
                match Terminal::new(CrosstermBackend::new(std::io::stderr())) {
                    Ok(t) => LiveView::Tui(Box::new(t)),
                    Err(_) => LiveView::Plain,
                }
            }
        }
    }

    /// Called every second.
    pub fn tick(&mut self, s: &LiveState) {
        if let LiveView::Tui(t) = self {
            let _ = t.draw(|f| draw(f, s));
        }
    }

    /// Called every metrics interval.
    pub fn interval(&mut self, s: &LiveState) {
        if let LiveView::Plain = self {
            eprintln!("{}", s.line());
        }
    }

    /// An alert started firing: a line of its own in plain mode (the
    /// dashboard lists firing alerts at every tick).
    pub fn alert(&mut self, ev: &crate::schema::AlertEvent) {
        if let LiveView::Plain = self {
            eprintln!("[{}] ALERT {}: {ev}", hms(ev.t_s), ev.name);
        }
    }

    /// Restores the terminal; prints the final line.
    pub fn finish(&mut self, s: &LiveState) {
        if let LiveView::Tui(_) = self {
            let mut err = std::io::stderr();
            let _ = crossterm::execute!(
                err,
                crossterm::terminal::LeaveAlternateScreen,
                crossterm::cursor::Show
            );
        }
        if !matches!(self, LiveView::Off) {
            eprintln!("{}", s.line());
        }
        *self = LiveView::Off;
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        if let LiveView::Tui(_) = self {
            let mut err = std::io::stderr();
            let _ = crossterm::execute!(
                err,
                crossterm::terminal::LeaveAlternateScreen,
                crossterm::cursor::Show
            );
        }
    }
}

fn draw(f: &mut ratatui::Frame, s: &LiveState) {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(3),
            Constraint::Length(10),
            Constraint::Min(5),
        ])
        .split(f.area());
    let progress = if s.schedule_s > 0.0 {
        (s.elapsed_s / s.schedule_s).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let title = format!(
        " vana-load · {} · {} · elapsed {} · eta {} ",
        s.profile,
        s.phase,
        hms(s.elapsed_s),
        s.eta_s.map_or("-".into(), hms)
    );
    f.render_widget(
        Gauge::default()
            .block(Block::default().borders(Borders::ALL).title(title))
            .gauge_style(Style::default().fg(Color::Cyan))
            .ratio(progress),
        rows[0],
    );
    let mid = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(45), Constraint::Percentage(55)])
        .split(rows[1]);
    let counters = [
        format!(
            "arrivals     {} / {} (planned now {})",
            s.arrivals, s.planned, s.planned_arrivals
        ),
        format!("in flight    {} (cap {})", s.in_flight, s.cap),
        format!("succeeded    {}", s.succeeded),
        format!("failed       {}", s.failed),
        format!("delayed      {}   dropped {}", s.delayed, s.dropped),
        format!("completions  {:.2}/s", s.completions_per_s),
        format!(
            "e2e          p50 {}  p95 {}",
            secs(s.e2e_p50_ms),
            secs(s.e2e_p95_ms)
        ),
        format!(
            "rpc          {}",
            s.rpc.map_or("-".into(), |r| rpc_text(&r))
        ),
    ];
    f.render_widget(
        Paragraph::new(counters.join("\n"))
            .block(Block::default().borders(Borders::ALL).title(" journeys ")),
        mid[0],
    );
    let err_rows: Vec<Row> = s
        .alerts
        .iter()
        .map(|a| {
            Row::new(vec![format!("ALERT {a}"), String::new()])
                .style(Style::default().fg(Color::Red))
        })
        .chain(s.breakers_open.iter().map(|b| {
            Row::new(vec![format!("BREAKER OPEN {b}"), String::new()])
                .style(Style::default().fg(Color::Red))
        }))
        .chain(
            s.errors
                .iter()
                .map(|(c, n)| Row::new(vec![c.clone(), n.to_string()])),
        )
        .collect();
    f.render_widget(
        Table::new(err_rows, [Constraint::Min(20), Constraint::Length(8)]).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" errors by class "),
        ),
        mid[1],
    );
    let step_rows: Vec<Row> = s
        .steps
        .iter()
        .map(|(n, p50, p95, e)| Row::new(vec![n.clone(), secs(*p50), secs(*p95), e.to_string()]))
        .collect();
    f.render_widget(
        Table::new(
            step_rows,
            [
                Constraint::Length(16),
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Length(8),
            ],
        )
        .header(
            Row::new(vec!["step", "p50", "p95", "errors"])
                .style(Style::default().fg(Color::Yellow)),
        )
        .block(Block::default().borders(Borders::ALL).title(" steps ")),
        rows[2],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_line_shows_rpc_calls_and_names_the_firing_alerts() {
        let mut s = LiveState::default();
        assert!(!s.line().contains("ALERT"));
        s.rpc = Some(crate::schema::RpcCounts {
            ok: 999,
            error: 1,
            timeout: 0,
        });
        assert!(
            s.line().contains(" rpc 1000 calls, 99.9 % ok"),
            "{}",
            s.line()
        );
        s.alerts = vec!["error rate 3.2 % > 1 %".into(), "E2E p95 7 s > 5 s".into()];
        assert!(
            s.line()
                .ends_with(" ALERT: error rate 3.2 % > 1 %; E2E p95 7 s > 5 s"),
            "{}",
            s.line()
        );
    }
}
