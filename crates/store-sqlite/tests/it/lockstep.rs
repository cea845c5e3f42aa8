//! Migrations are numbered in lockstep: every version exists on both backends, with the same name.

use std::path::Path;

fn migrations(dir: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir).join("migrations");
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|entry| entry.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    names
}

#[test]
fn both_backends_have_the_same_migrations() {
    let sqlite = migrations("store-sqlite");
    let postgres = migrations("store-postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres, "a migration exists on one backend only");
    for (i, name) in sqlite.iter().enumerate() {
        let number: usize = name.split('_').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        assert_eq!(number, i + 1, "{name}: migrations are numbered 0001, 0002, … without gaps");
    }
}

#[test]
fn the_embedded_migrators_agree() {
    let versions =
        |m: &sqlx::migrate::Migrator| m.iter().map(|m| (m.version, m.description.to_string())).collect::<Vec<_>>();
    assert_eq!(versions(&regain_store_sqlite::MIGRATIONS), versions(&regain_store_postgres::MIGRATIONS));
}
