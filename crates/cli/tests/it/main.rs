//! The `regain` binary, run for real in temporary directories: help, configuration,
//! administration, import, and the demo with its printed commands executed by `curl`.

// A failed assertion is how a test fails, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod audit;
mod canary;
mod config;
mod demo;
mod help;
mod import;
mod keys;
mod postgres;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// How many migrations the binary embeds (both backends have the same, in lockstep).
fn migrations_count() -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../store-sqlite/migrations");
    std::fs::read_dir(dir)
        .expect("migrations")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql")))
        .count()
}

/// A scratch directory to run `regain` in, with its own SQLite data directory.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// `regain ARGS` in this directory, with none of the caller's Regain settings.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_regain"));
        for (key, _) in std::env::vars() {
            if key.starts_with("REGAIN") || key == "RUST_LOG" {
                cmd.env_remove(key);
            }
        }
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("REGAIN__DATABASE__DATA_DIR", self.dir.path().join("data"))
            // One hashing worker is plenty for a test and leaves the other core to cargo.
            .env("REGAIN__HASHING__WORKERS", "1");
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(self.command(args), None)
    }

    fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.run_with(self.command(args), Some(stdin))
    }

    fn run_with(&self, mut cmd: Command, stdin: Option<&str>) -> Run {
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn regain");
        if let Some(input) = stdin {
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        }
        Run(child.wait_with_output().expect("wait for regain"))
    }
}

/// A finished run of `regain`.
struct Run(Output);

impl Run {
    fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// Asserts the exit code, showing both streams when it is not the one expected.
    #[track_caller]
    fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code(), code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout(), self.stderr());
        self
    }
}
