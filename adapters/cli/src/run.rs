//! The command's glue: arguments and files in, the `source` import called, lines out.

use crate::args::{self, Command, Invocation, USAGE};
use sfm_wire::lines;
use sfm_wire::redact::{Redactor, config_secrets};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

wit_bindgen::generate!({ path: "../../wit", world: "cli" });

use airbyte::source_facebook_marketing::source::{self as source, LogLevel, Message, Status};
sfm_wire::message_lines!();

pub fn main() -> ExitCode {
    let command = match args::parse(std::env::args_os().skip(1)) {
        Ok(Invocation::Run(command)) => command,
        Ok(Invocation::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut out = Output::new();
    if let Err(e) = run(&command, &mut out) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    if let Err(e) = out.stdout.flush() {
        eprintln!("error: cannot write to stdout: {e}");
        return ExitCode::from(1);
    }
    if out.failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// Where the lines go, and what was seen on the way.
struct Output {
    stdout: std::io::BufWriter<std::io::Stdout>,
    redactor: Redactor,
    /// An error TRACE was written.
    failed: bool,
    records: BTreeMap<String, u64>,
}

impl Output {
    fn new() -> Self {
        Output {
            stdout: std::io::BufWriter::new(std::io::stdout()),
            redactor: Redactor::default(),
            failed: false,
            records: BTreeMap::new(),
        }
    }

    fn emit(&mut self, messages: &[Message]) -> std::io::Result<()> {
        for m in messages {
            match m {
                Message::Record(r) => *self.records.entry(r.stream.clone()).or_default() += 1,
                Message::Log(l) => eprintln!("{}", self.redactor.redact(l.message.clone())),
                Message::Trace(t) => self.failed |= lines::is_error_trace(t),
                _ => {}
            }
            writeln!(self.stdout, "{}", self.redactor.redact(line(m)))?;
        }
        // A batch at a time, so a reader of the pipe sees progress.
        self.stdout.flush()
    }

    /// A failure of the command itself (a file it could not read), as an error TRACE.
    fn fail(&mut self, failure_type: &str, message: String) -> std::io::Result<()> {
        self.failed = true;
        let message = self.redactor.redact(message);
        eprintln!("error: {message}");
        writeln!(self.stdout, "{}", lines::error_trace(failure_type, &message, &message, now_ms()))
    }
}

fn run(command: &Command, out: &mut Output) -> std::io::Result<()> {
    let config = match command {
        Command::Spec => return out.emit(&source::spec()),
        Command::Check { config } | Command::Discover { config } | Command::Read { config, .. } => config,
    };
    let Some(config) = read_file(out, config, "config")? else { return Ok(()) };
    out.redactor = Redactor::new(config_secrets(&config));
    match command {
        Command::Spec => Ok(()),
        Command::Check { .. } => out.emit(&source::check(&config)),
        Command::Discover { .. } => out.emit(&source::discover(&config)),
        Command::Read { catalog, state, .. } => {
            let Some(catalog) = read_file(out, catalog, "catalog")? else { return Ok(()) };
            let state = match state {
                Some(path) => match read_file(out, path, "state")? {
                    Some(s) => Some(s),
                    None => return Ok(()),
                },
                None => None,
            };
            let reader = source::Reader::new(&config, &catalog, state.as_deref());
            while let Some(batch) = reader.next() {
                out.emit(&batch)?;
            }
            let total: u64 = out.records.values().sum();
            let per_stream: Vec<String> = out.records.iter().map(|(s, n)| format!("{s} {n}")).collect();
            eprintln!(
                "read {total} records ({})",
                if per_stream.is_empty() { "none".into() } else { per_stream.join(", ") }
            );
            Ok(())
        }
    }
}

/// The file's text, or `None` after an error TRACE saying why it could not be read.
fn read_file(out: &mut Output, path: &Path, what: &str) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::PermissionDenied {
                "; is its folder granted to the command (e.g. `wasmtime run --dir .`)?"
            } else {
                ""
            };
            out.fail("config_error", format!("cannot read the {what} file {}: {e}{hint}", path.display()))?;
            Ok(None)
        }
    }
}

/// The wall clock of `wasi:clocks`, for the command's own error TRACE.
#[allow(clippy::disallowed_methods)]
fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
