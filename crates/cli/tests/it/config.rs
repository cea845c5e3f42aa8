//! Configuration: defaults, file, environment; errors that name the key; secrets never shown.

use crate::Sandbox;

#[test]
fn an_environment_override_shows_in_config_show() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command(&["config", "show"]);
    cmd.env("REGAIN__SERVER__LISTEN", "0.0.0.0:9191").env("REGAIN__HASHING__M_KIB", "65536");
    let out = sandbox.run_with(cmd, None).expect_code(0).stdout();
    assert!(out.contains("listen = \"0.0.0.0:9191\""), "{out}");
    assert!(out.contains("m_kib = 65536"), "{out}");
    let parsed: toml::Table = out.parse().expect("config show prints TOML");
    assert_eq!(parsed["server"]["request_timeout_ms"].as_integer(), Some(30_000));
}

#[test]
fn the_file_is_read_from_the_flag_the_variable_or_the_current_directory() {
    let sandbox = Sandbox::new();
    let path = sandbox.file("custom.toml", "[server]\npublic_url = \"https://desk.example.com\"\n");
    let out = sandbox.run(&["--config", path.to_str().unwrap(), "config", "show"]).expect_code(0).stdout();
    assert!(out.contains("public_url = \"https://desk.example.com\""), "{out}");

    let mut cmd = sandbox.command(&["config", "show"]);
    cmd.env("REGAIN_CONFIG", &path);
    let out = sandbox.run_with(cmd, None).expect_code(0).stdout();
    assert!(out.contains("https://desk.example.com"), "{out}");

    sandbox.file("regain.toml", "[log]\nlevel = \"debug\"\n");
    let out = sandbox.run(&["config", "show"]).expect_code(0).stdout();
    assert!(out.contains("level = \"debug\""), "{out}");

    // The environment wins over the file.
    let mut cmd = sandbox.command(&["config", "show"]);
    cmd.env("REGAIN__LOG__LEVEL", "warn");
    let out = sandbox.run_with(cmd, None).expect_code(0).stdout();
    assert!(out.contains("level = \"warn\""), "{out}");

    let err = sandbox.run(&["--config", "missing.toml", "config", "show"]).expect_code(1).stderr();
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn bad_files_are_errors_that_name_the_key() {
    let table = [
        ("[server]\nlisten = \"127.0.0.1:1\"\nbogus_key = 1\n", "bogus_key"),
        ("[nonsense]\nx = 1\n", "nonsense"),
        ("[server]\nlisten = \"not an address\"\n", "server.listen"),
        ("[hashing]\nm_kib = 1024\n", "m_kib"),
        ("[log]\nformat = \"xml\"\n", "log.format"),
        ("[log]\nlevel = \"info,sqlx=loud\"\n", "log.level"),
        ("[server]\npublic_url = \"desk.example.com\"\n", "server.public_url"),
        ("[server]\nsession_absolute_hours = 4000000\n", "server.session_absolute_hours"),
        ("[server]\nsession_idle_minutes = 0\n", "server.session_idle_minutes"),
        ("[server]\nexpiry_sweep_interval_ms = 99999999999\n", "server.expiry_sweep_interval_ms"),
    ];
    for (contents, named) in table {
        let sandbox = Sandbox::new();
        sandbox.file("regain.toml", contents);
        let err = sandbox.run(&["config", "show"]).expect_code(1).stderr();
        assert!(err.contains(named), "{contents:?} should name {named}:\n{err}");
    }
}

#[test]
fn a_database_password_is_never_shown() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command(&["config", "show"]);
    cmd.env("REGAIN__DATABASE__URL", "postgres://regain:hunter2@db.internal:5432/regain?sslmode=disable");
    let run = sandbox.run_with(cmd, None).expect_code(0);
    let out = run.stdout();
    assert!(out.contains("url = \"<redacted>\""), "{out}");
    assert!(out.contains("postgres://db.internal:5432/regain"), "{out}");
    assert!(!out.contains("hunter2") && !run.stderr().contains("hunter2"));
}

#[test]
fn an_unknown_database_scheme_is_a_clear_error() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command(&["migrate"]);
    cmd.env("REGAIN__DATABASE__URL", "mysql://root:hunter2@db/regain");
    let err = sandbox.run_with(cmd, None).expect_code(1).stderr();
    assert!(err.contains("\"mysql\""), "{err}");
    assert!(err.contains("sqlite:") && err.contains("postgres://"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
