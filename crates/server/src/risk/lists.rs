//! The IP and email-domain lists in force, loaded from a folder and reloaded when it changes.
//!
//! Layout of `risk.lists_dir`:
//!
//! ```text
//! tor-exit.deny.txt          every tenant: IP deny list "tor-exit"
//! disposable.domains.txt     every tenant: disposable-email domains "disposable"
//! acme/office.allow.txt      tenant `acme` only: IP allow list "office"
//! acme/blocked.deny.txt      tenant `acme` only: IP deny list "blocked"
//! ```
//!
//! A file that does not parse is refused with its name and the line that is wrong: at start-up
//! that stops the start; on a reload the lists in force stay and the error is reported
//! (`GET /api/v1/risk/lists`, the log).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use regain_core::risk::lists::{DomainList, IpList};
use regain_core::risk::ListAction;
use regain_core::Timestamp;

/// A file in the folder is at most this large.
pub const LIST_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub enum ListBody {
    Ip { action: ListAction, list: IpList },
    Domains(DomainList),
}

#[derive(Debug, Clone)]
pub struct NamedList {
    pub name: String,
    /// `None` for every tenant, else the tenant's slug.
    pub tenant: Option<String>,
    pub file: PathBuf,
    pub body: ListBody,
}

impl NamedList {
    pub fn entries(&self) -> usize {
        match &self.body {
            ListBody::Ip { list, .. } => list.len(),
            ListBody::Domains(list) => list.len(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match &self.body {
            ListBody::Ip { action: ListAction::Allow, .. } => "ip_allow",
            ListBody::Ip { action: ListAction::Deny, .. } => "ip_deny",
            ListBody::Domains(_) => "disposable_email_domains",
        }
    }
}

/// Every list, as loaded at `loaded_at`.
#[derive(Debug, Clone, Default)]
pub struct ListSet {
    pub lists: Vec<NamedList>,
    pub loaded_at: Option<Timestamp>,
    /// What the folder looked like (file, length, modification time), to notice a change.
    signature: Vec<(PathBuf, u64, Option<SystemTime>)>,
}

impl ListSet {
    /// The lists `tenant` sees: everyone's and its own.
    pub fn for_tenant<'a>(&'a self, tenant_slug: &'a str) -> impl Iterator<Item = &'a NamedList> + 'a {
        self.lists.iter().filter(move |l| l.tenant.as_deref().is_none_or(|t| t == tenant_slug))
    }

    /// The IP lists that hold `ip`, by name and action.
    pub fn ip_matches(&self, tenant_slug: &str, ip: IpAddr) -> Vec<(String, ListAction)> {
        self.for_tenant(tenant_slug)
            .filter_map(|l| match &l.body {
                ListBody::Ip { action, list } if list.contains(ip) => Some((l.name.clone(), *action)),
                _ => None,
            })
            .collect()
    }

    /// The first domain list that holds `domain`.
    pub fn domain_match(&self, tenant_slug: &str, domain: &str) -> Option<String> {
        self.for_tenant(tenant_slug).find_map(|l| match &l.body {
            ListBody::Domains(list) if list.contains(domain) => Some(l.name.clone()),
            _ => None,
        })
    }
}

/// A list file that could not be loaded: which file, which line (0: the file itself), why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", file.display(), if *line > 0 { format!(":{line}") } else { String::new() })]
pub struct ListLoadError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// Loads every list under `dir` (see the module documentation).
pub fn load_dir(dir: &Path, now: Timestamp) -> Result<ListSet, ListLoadError> {
    let signature = signature(dir)?;
    let mut lists = Vec::new();
    for (path, _, _) in &signature {
        let tenant = match path.parent() {
            Some(parent) if parent != dir => parent.file_name().map(|n| n.to_string_lossy().into_owned()),
            _ => None,
        };
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let error = |line: usize, message: String| ListLoadError { file: path.clone(), line, message };
        let (name, kind) = match file_name.strip_suffix(".txt").and_then(|stem| stem.rsplit_once('.')) {
            Some((name, kind)) if !name.is_empty() => (name.to_owned(), kind.to_owned()),
            _ => continue,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(0, format!("cannot be read: {e}")))?;
        let body = match kind.as_str() {
            "allow" | "deny" => {
                let action = if kind == "allow" { ListAction::Allow } else { ListAction::Deny };
                let list = IpList::parse(&text).map_err(|e| error(e.line, e.message))?;
                ListBody::Ip { action, list }
            }
            "domains" => ListBody::Domains(DomainList::parse(&text).map_err(|e| error(e.line, e.message))?),
            // Other files (a README, a download script's notes) are not lists.
            _ => continue,
        };
        lists.push(NamedList { name, tenant, file: path.clone(), body });
    }
    Ok(ListSet { lists, loaded_at: Some(now), signature })
}

/// The `*.txt` files directly in `dir` and one level down, sorted, with size and mtime.
fn signature(dir: &Path) -> Result<Vec<(PathBuf, u64, Option<SystemTime>)>, ListLoadError> {
    let unreadable = |path: &Path, e: std::io::Error| ListLoadError {
        file: path.to_owned(),
        line: 0,
        message: format!("cannot be read: {e}"),
    };
    let mut files = Vec::new();
    let visit = |folder: &Path, depth: u8, files: &mut Vec<_>| -> Result<Vec<PathBuf>, ListLoadError> {
        let mut subfolders = Vec::new();
        for entry in std::fs::read_dir(folder).map_err(|e| unreadable(folder, e))? {
            let entry = entry.map_err(|e| unreadable(folder, e))?;
            let path = entry.path();
            let meta = entry.metadata().map_err(|e| unreadable(&path, e))?;
            if meta.is_dir() && depth == 0 {
                subfolders.push(path);
            } else if meta.is_file() && path.extension().is_some_and(|e| e == "txt") {
                if meta.len() > LIST_FILE_BYTES_MAX {
                    return Err(ListLoadError {
                        file: path,
                        line: 0,
                        message: format!("is larger than {LIST_FILE_BYTES_MAX} bytes"),
                    });
                }
                files.push((path, meta.len(), meta.modified().ok()));
            }
        }
        Ok(subfolders)
    };
    for folder in visit(dir, 0, &mut files)? {
        visit(&folder, 1, &mut files)?;
    }
    files.sort();
    Ok(files)
}

/// The lists in force, shared by every request, and the outcome of the last reload.
#[derive(Debug, Default)]
pub struct Lists {
    dir: Option<PathBuf>,
    current: RwLock<Arc<ListSet>>,
    last_error: RwLock<Option<ListLoadError>>,
}

impl Lists {
    /// Loads `dir` (if any) now; an error here should stop the start.
    pub fn load(dir: Option<PathBuf>, now: Timestamp) -> Result<Self, ListLoadError> {
        let current = match &dir {
            Some(dir) => load_dir(dir, now)?,
            None => ListSet::default(),
        };
        Ok(Self { dir, current: RwLock::new(Arc::new(current)), last_error: RwLock::new(None) })
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn current(&self) -> Arc<ListSet> {
        self.current.read().map(|g| Arc::clone(&g)).unwrap_or_default()
    }

    pub fn last_error(&self) -> Option<ListLoadError> {
        self.last_error.read().ok().and_then(|g| g.clone())
    }

    /// Reloads when `force` or when the folder changed. On an error the lists in force stay.
    /// Returns whether new lists were put in force.
    pub fn reload(&self, now: Timestamp, force: bool) -> Result<bool, ListLoadError> {
        let Some(dir) = &self.dir else { return Ok(false) };
        let outcome = (|| {
            if !force && signature(dir)? == self.current().signature {
                return Ok(false);
            }
            let loaded = load_dir(dir, now)?;
            if let Ok(mut current) = self.current.write() {
                *current = Arc::new(loaded);
            }
            Ok(true)
        })();
        if let Ok(mut last) = self.last_error.write() {
            *last = outcome.as_ref().err().cloned();
        }
        outcome
    }
}
