//! Where output goes: text or JSON on stdout, progress on stderr (only on a
//! terminal), and the rules for `-q`.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::args::Format;

/// The version of every JSON document the CLI prints.
pub const SCHEMA_VERSION: u32 = 1;

/// The command's view of stdout and stderr.
pub struct Out {
    pub format: Format,
    pub quiet: bool,
    stdout: io::BufWriter<io::Stdout>,
    /// Notes printed on stderr so far, repeated in the JSON document.
    notes: Vec<String>,
}

impl Out {
    pub fn new(format: Format, quiet: bool) -> Self {
        Out {
            format,
            quiet,
            stdout: io::BufWriter::with_capacity(64 << 10, io::stdout()),
            notes: Vec::new(),
        }
    }

    /// Reports something the command did or decided that the user must
    /// know (a recovery, a snapshot not used): on stderr (`optout: note:`,
    /// not with `-q`) and in the JSON document's `"notes"`.
    pub fn note(&mut self, s: &str) {
        if !self.quiet {
            eprintln!("optout: note: {s}");
        }
        self.notes.push(s.to_string());
    }

    /// Whether human-readable text should be printed.
    pub fn text(&self) -> bool {
        self.format == Format::Text && !self.quiet
    }

    pub fn json_mode(&self) -> bool {
        self.format == Format::Json
    }

    /// Prints one line of text (only in text mode and without `-q`).
    pub fn line(&mut self, s: impl AsRef<str>) -> io::Result<()> {
        if self.text() {
            self.stdout.write_all(s.as_ref().as_bytes())?;
            self.stdout.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Prints a JSON document (with `schema_version`) if `--format json`.
    pub fn json(&mut self, mut v: Value) -> io::Result<()> {
        if self.json_mode() {
            self.json_always(&mut v)?;
        }
        Ok(())
    }

    /// Prints a JSON document whatever the format (for `report`).
    pub fn json_always(&mut self, v: &mut Value) -> io::Result<()> {
        if let Value::Object(m) = v {
            m.entry("schema_version").or_insert(SCHEMA_VERSION.into());
            if !self.notes.is_empty() {
                m.insert("notes".into(), self.notes.clone().into());
            }
        }
        serde_json::to_writer_pretty(&mut self.stdout, v).map_err(io::Error::from)?;
        self.stdout.write_all(b"\n")
    }

    /// Raw stdout, for data the user asked for (`export -o -`).
    pub fn raw(&mut self) -> &mut dyn Write {
        &mut self.stdout
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.stdout.flush()
    }

    /// A progress bar over `len` units (bytes), drawn only on a terminal.
    pub fn bytes_bar(&self, len: u64, msg: &str) -> ProgressBar {
        let pb = ProgressBar::with_draw_target(Some(len), self.draw_target());
        pb.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb.set_message(msg.to_string());
        pb
    }

    /// A spinner with a message, drawn only on a terminal.
    pub fn spinner(&self, msg: &str) -> ProgressBar {
        let pb = ProgressBar::with_draw_target(None, self.draw_target());
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(msg.to_string());
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    }

    fn draw_target(&self) -> ProgressDrawTarget {
        if self.quiet || !io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds with a sensible precision.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

/// `n` per second over `d`.
pub fn rate(n: u64, d: Duration) -> String {
    let s = d.as_secs_f64().max(1e-9);
    num((n as f64 / s) as u64)
}
