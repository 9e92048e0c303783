//! The Airbyte source arguments: `spec`, `check`, `discover`, `read` and their files.

use std::ffi::OsString;
use std::path::PathBuf;

/// Shown with `--help`, and on stderr after a bad argument.
pub const USAGE: &str = "\
usage: source-facebook-marketing <command> [options]

commands:
  spec                                      print the connector specification (one SPEC message)
  check    --config FILE                    validate a config and try the API with it
  discover --config FILE                    list the streams the config offers (one CATALOG message)
  read     --config FILE --catalog FILE [--state FILE]
                                            run a sync of the configured catalog

Protocol messages go to stdout, one JSON object per line; logs go to stderr.
Files are read through WASI: grant their folder to the command (e.g. `wasmtime run --dir .`).
GRAPH_URL in the environment replaces https://graph.facebook.com (a proxy or a simulator).
Exit status: 0 on success, 1 after an error TRACE, 2 on bad arguments (a WASI 0.2 host,
whose exit carries success or failure only, reports both failures as 1).
";

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Spec,
    Check { config: PathBuf },
    Discover { config: PathBuf },
    Read { config: PathBuf, catalog: PathBuf, state: Option<PathBuf> },
}

/// The outcome of parsing: a command, or a request for the usage text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    Run(Command),
    Help,
}

/// Parses the arguments after the program name.
///
/// Errors with a message naming the bad argument: an unknown command or option, a missing
/// value, an option the command does not take, or one given twice.
pub fn parse<I>(args: I) -> Result<Invocation, String>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut command: Option<String> = None;
    let (mut config, mut catalog, mut state) = (None, None, None);
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        let (slot, option) = match arg {
            Short('h') | Long("help") => return Ok(Invocation::Help),
            Long("config") => (&mut config, "--config"),
            Long("catalog") => (&mut catalog, "--catalog"),
            Long("state") => (&mut state, "--state"),
            Value(v) if command.is_none() => {
                command = Some(v.string().map_err(|v| format!("the command {v:?} is not text"))?);
                continue;
            }
            _ => return Err(arg.unexpected().to_string()),
        };
        let value: PathBuf = parser.value().map_err(|e| format!("{option}: {e}"))?.into();
        if slot.replace(value).is_some() {
            return Err(format!("{option} was given twice"));
        }
    }
    let command = command.ok_or("no command given; use spec, check, discover or read")?;
    let refuse = |given: bool, option: &str| -> Result<(), String> {
        if given { Err(format!("{command} does not take {option}")) } else { Ok(()) }
    };
    let need = |value: Option<PathBuf>, option: &str| -> Result<PathBuf, String> {
        value.ok_or_else(|| format!("{command} needs {option} FILE"))
    };
    let run = match command.as_str() {
        "spec" => {
            refuse(config.is_some(), "--config")?;
            refuse(catalog.is_some(), "--catalog")?;
            refuse(state.is_some(), "--state")?;
            Command::Spec
        }
        "check" | "discover" => {
            refuse(catalog.is_some(), "--catalog")?;
            refuse(state.is_some(), "--state")?;
            let config = need(config, "--config")?;
            if command == "check" { Command::Check { config } } else { Command::Discover { config } }
        }
        "read" => Command::Read { config: need(config, "--config")?, catalog: need(catalog, "--catalog")?, state },
        other => return Err(format!("unknown command {other:?}; use spec, check, discover or read")),
    };
    Ok(Invocation::Run(run))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, String> {
        match parse(args.iter().copied())? {
            Invocation::Run(c) => Ok(c),
            Invocation::Help => Err("help".into()),
        }
    }

    #[test]
    fn parses_the_four_airbyte_commands() {
        assert_eq!(run(&["spec"]), Ok(Command::Spec));
        assert_eq!(run(&["check", "--config", "c.json"]), Ok(Command::Check { config: "c.json".into() }));
        assert_eq!(run(&["discover", "--config=c.json"]), Ok(Command::Discover { config: "c.json".into() }));
        assert_eq!(
            run(&["read", "--catalog", "k.json", "--config", "c.json", "--state", "s.json"]),
            Ok(Command::Read { config: "c.json".into(), catalog: "k.json".into(), state: Some("s.json".into()) })
        );
        assert_eq!(
            run(&["read", "--config", "c.json", "--catalog", "k.json"]),
            Ok(Command::Read { config: "c.json".into(), catalog: "k.json".into(), state: None })
        );
    }

    #[test]
    fn asks_for_help_with_either_flag() {
        assert_eq!(parse(["--help"]), Ok(Invocation::Help));
        assert_eq!(parse(["read", "-h"]), Ok(Invocation::Help));
    }

    #[test]
    fn names_what_is_missing_or_wrong() {
        assert_eq!(run(&[]).unwrap_err(), "no command given; use spec, check, discover or read");
        assert_eq!(run(&["check"]).unwrap_err(), "check needs --config FILE");
        assert_eq!(run(&["read", "--config", "c.json"]).unwrap_err(), "read needs --catalog FILE");
        assert_eq!(run(&["spec", "--config", "c.json"]).unwrap_err(), "spec does not take --config");
        assert_eq!(run(&["discover", "--config", "c", "--state", "s"]).unwrap_err(), "discover does not take --state");
        assert_eq!(run(&["write"]).unwrap_err(), "unknown command \"write\"; use spec, check, discover or read");
        assert_eq!(run(&["check", "--config", "a", "--config", "b"]).unwrap_err(), "--config was given twice");
        assert!(run(&["check", "--config"]).unwrap_err().starts_with("--config: "));
        assert!(run(&["check", "--verbose"]).unwrap_err().contains("--verbose"));
        assert!(run(&["check", "extra", "--config", "c"]).unwrap_err().contains("extra"));
    }
}
