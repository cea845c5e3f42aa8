//! Reading customer rows from CSV or JSON lines into the API's `CustomerInput`, with the line
//! each came from. A row that cannot even be read as a customer is a [`RowError`], reported
//! like a validation failure; only an unreadable file is fatal.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::Path;

use anyhow::{bail, Context as _};
use regain_server::routes::customers::{CustomerInput, EmailInput, FactorsInput, PhoneInput};

/// The columns a CSV file may have.
pub const CSV_COLUMNS: [&str; 16] = [
    "external_id",
    "username",
    "account_number",
    "full_name",
    "email",
    "email_verified",
    "email_added_at",
    "phone",
    "phone_verified",
    "phone_added_at",
    "status",
    "privileged",
    "vip",
    "totp",
    "recovery_codes_remaining",
    "password",
];

/// Why one row was not imported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl RowError {
    pub fn new(line: u64, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { line, field: field.into(), message: message.into() }
    }
}

/// One row of the file: a customer to create, or why it cannot be.
pub type Row = Result<(u64, CustomerInput), RowError>;

/// The rows of a file; `Err` items are fatal (the file stopped being readable).
pub type Rows = Box<dyn Iterator<Item = anyhow::Result<Row>>>;

pub fn open(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("opening {}", path.display()))
}

/// Reads CSV: the header names the columns; each record becomes a row.
pub fn csv_rows(path: &Path) -> anyhow::Result<Rows> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(open(path)?);
    let header = reader.headers().with_context(|| format!("reading the header of {}", path.display()))?.clone();
    let columns: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
    for (i, name) in columns.iter().enumerate() {
        if !CSV_COLUMNS.contains(&name.as_str()) {
            bail!("line 1: unknown column {name:?}; the columns are {}", CSV_COLUMNS.join(", "));
        }
        if columns[..i].contains(name) {
            bail!("line 1: column {name:?} appears twice");
        }
    }
    for required in ["username", "full_name"] {
        if !columns.iter().any(|c| c == required) {
            bail!("line 1: the header has no {required:?} column");
        }
    }
    let mut record = csv::StringRecord::new();
    let rows = std::iter::from_fn(move || {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => None,
            Ok(true) => {
                let line = record.position().map_or(line, csv::Position::line);
                Some(Ok(csv_row(&columns, &record, line)))
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Io(_) => Some(Err(anyhow::anyhow!("reading the file: {e}"))),
                _ => {
                    let line = e.position().map_or(line, csv::Position::line);
                    Some(Ok(Err(RowError::new(line, "row", e.to_string()))))
                }
            },
        }
    });
    Ok(Box::new(rows))
}

fn csv_row(columns: &[String], record: &csv::StringRecord, line: u64) -> Row {
    if record.len() != columns.len() {
        return Err(RowError::new(
            line,
            "row",
            format!("has {} fields; the header has {}", record.len(), columns.len()),
        ));
    }
    let raw = |name: &str| columns.iter().position(|c| c == name).and_then(|i| record.get(i));
    let cell = |name: &str| raw(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let flag = |name: &str| -> Result<bool, RowError> {
        match cell(name) {
            None => Ok(false),
            Some(v) => parse_bool(&v).ok_or_else(|| RowError::new(line, name, "must be true/false, 1/0 or yes/no")),
        }
    };
    let list = |name: &str| -> Vec<String> {
        cell(name)
            .map(|v| v.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let email_verified = flag("email_verified")?;
    let phone_verified = flag("phone_verified")?;
    // When the contact points were registered in the tenant's system: a date or an RFC 3339
    // time. Left out, they count as added now, and proofs sent there wait out the policy's
    // recent_contact_days.
    let since = |name: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, RowError> {
        let Some(v) = cell(name) else { return Ok(None) };
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&v) {
            return Ok(Some(t.to_utc()));
        }
        chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Some(t.and_utc()))
            .ok_or_else(|| RowError::new(line, name, "must be a date (2024-01-31) or an RFC 3339 time"))
    };
    let email_added_at = since("email_added_at")?;
    let phone_added_at = since("phone_added_at")?;
    let recovery_codes_remaining = match cell("recovery_codes_remaining") {
        None => 0,
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| RowError::new(line, "recovery_codes_remaining", "must be a whole number from 0"))?,
    };
    let input = CustomerInput {
        external_id: cell("external_id"),
        username: cell("username").unwrap_or_default(),
        account_number: cell("account_number"),
        full_name: cell("full_name").unwrap_or_default(),
        emails: list("email")
            .into_iter()
            .map(|address| EmailInput { address, verified: email_verified, added_at: email_added_at })
            .collect(),
        phones: list("phone")
            .into_iter()
            .map(|number| PhoneInput { number, verified: phone_verified, added_at: phone_added_at })
            .collect(),
        status: cell("status"),
        privileged: flag("privileged")?,
        vip: flag("vip")?,
        factors: FactorsInput { totp: flag("totp")?, recovery_codes_remaining, passkeys: 0 },
        // A password is taken as written: spaces are part of it.
        password: raw("password").filter(|v| !v.is_empty()).map(str::to_owned),
    };
    Ok((line, input))
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Reads JSON lines: one `CustomerInput` object per line; blank lines are skipped.
pub fn jsonl_rows(path: &Path) -> anyhow::Result<Rows> {
    let mut lines = BufReader::new(open(path)?).lines();
    let mut number = 0u64;
    let rows = std::iter::from_fn(move || loop {
        number += 1;
        let line = match lines.next()? {
            Ok(line) => line,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Some(Ok(Err(RowError::new(number, "row", "is not UTF-8"))))
            }
            Err(e) => return Some(Err(anyhow::anyhow!("reading the file: {e}"))),
        };
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str::<CustomerInput>(&line)
            .map(|input| (number, input))
            .map_err(|e| RowError::new(number, "json", e.to_string()));
        return Some(Ok(row));
    });
    Ok(Box::new(rows))
}

/// How many rows the file holds, for the progress bar (a quick pass before the real one).
pub fn count_rows(path: &Path, csv: bool) -> anyhow::Result<u64> {
    if csv {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(open(path)?);
        let mut record = csv::ByteRecord::new();
        let mut count = 0;
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => count += 1,
                Ok(false) => return Ok(count),
                Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(e).context("reading the file"),
                Err(_) => count += 1,
            }
        }
    }
    let mut count = 0;
    for line in BufReader::new(open(path)?).split(b'\n') {
        let line = line.context("reading the file")?;
        if !line.iter().all(u8::is_ascii_whitespace) {
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn row(header: &str, line: &str) -> Row {
        let columns: Vec<String> = header.split(',').map(str::to_owned).collect();
        let record = csv::StringRecord::from(line.split(',').collect::<Vec<_>>());
        csv_row(&columns, &record, 2)
    }

    #[test]
    fn contact_points_carry_when_they_were_registered() {
        let header = "username,full_name,email,email_added_at,phone,phone_added_at";
        let (_, input) =
            row(header, "ann,Ann Lee,ann@example.com,2024-01-31,+12015550100,2023-05-01T08:30:00+02:00").unwrap();
        assert_eq!(input.emails[0].added_at.map(|t| t.to_rfc3339()), Some("2024-01-31T00:00:00+00:00".into()));
        assert_eq!(input.phones[0].added_at.map(|t| t.to_rfc3339()), Some("2023-05-01T06:30:00+00:00".into()));
        let (_, bare) = row("username,full_name,email", "ann,Ann Lee,ann@example.com").unwrap();
        assert_eq!(bare.emails[0].added_at, None, "left out: added now");
        let Err(bad) = row(header, "ann,Ann Lee,ann@example.com,last year,,") else { panic!("a bad date is refused") };
        assert_eq!((bad.field.as_str(), bad.line), ("email_added_at", 2));
    }
}
