//! The live view: a ratatui dashboard when stderr is a terminal, otherwise one
//! plain line per metrics interval on stderr.
//!
//! The dashboard shows phase and progress, arrivals (actual vs planned), in
//! flight vs the cap, completions/s, p50/p95 per step, errors by class, open
//! circuit breakers and an ETA. It does not enable raw mode, so Ctrl-C still
//! interrupts the run (which then writes its results).

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
        if !errs.is_empty() {
            s.push_str(&format!(" errors: {}", errs.join(" ")));
        }
        if !self.breakers_open.is_empty() {
            s.push_str(&format!(" BREAKER OPEN: {}", self.breakers_open.join(",")));
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
            Constraint::Length(9),
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
    ];
    f.render_widget(
        Paragraph::new(counters.join("\n"))
            .block(Block::default().borders(Borders::ALL).title(" journeys ")),
        mid[0],
    );
    let err_rows: Vec<Row> = s
        .breakers_open
        .iter()
        .map(|b| {
            Row::new(vec![format!("BREAKER OPEN {b}"), String::new()])
                .style(Style::default().fg(Color::Red))
        })
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
