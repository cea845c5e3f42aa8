//! Message templates: `{{name}}` placeholders, parsed once, rendered as plain text.
//!
//! A template names the placeholders it may use when it is parsed, so a typo
//! in a tenant's template (`{{cdoe}}`) is refused when it is saved, not
//! discovered when a customer gets a message without their code.

use std::collections::BTreeMap;

use crate::TemplateError;

/// A parsed template: a subject and a body, each text with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    name: String,
    subject: Vec<Piece>,
    body: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value(String),
}

impl Template {
    /// Parses `subject` and `body`. A placeholder is `{{name}}`, spaces inside
    /// the braces allowed (`{{ code }}`), and `name` must be one of `allowed`.
    /// A `{{` that is never closed is an error; a lone `{` or `}` is text.
    /// `name` names the template in errors.
    pub fn parse(name: &str, subject: &str, body: &str, allowed: &[&str]) -> Result<Self, TemplateError> {
        Ok(Template {
            name: name.to_owned(),
            subject: parse_part(name, "subject", subject, allowed)?,
            body: parse_part(name, "body", body, allowed)?,
        })
    }

    /// The name given to [`Template::parse`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The placeholder names this template uses, each once, in sorted order.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .subject
            .iter()
            .chain(&self.body)
            .filter_map(|piece| match piece {
                Piece::Value(name) => Some(name.as_str()),
                Piece::Text(_) => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Fills in the placeholders and returns `(subject, body)`. Values are
    /// inserted as they are, as plain text: nothing is escaped or interpreted,
    /// and a value containing `{{…}}` is not expanded again. Line breaks in a
    /// value become spaces in the subject, which is one header line. A value
    /// the template uses but `values` lacks is an error naming it; values it
    /// does not use are ignored.
    pub fn render(&self, values: &BTreeMap<&str, String>) -> Result<(String, String), TemplateError> {
        let subject = self.render_part(&self.subject, values)?;
        let subject = subject.replace("\r\n", " ").replace(['\r', '\n'], " ");
        let body = self.render_part(&self.body, values)?;
        Ok((subject, body))
    }

    fn render_part(&self, pieces: &[Piece], values: &BTreeMap<&str, String>) -> Result<String, TemplateError> {
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Value(name) => match values.get(name.as_str()) {
                    Some(value) => out.push_str(value),
                    None => {
                        return Err(TemplateError::MissingValue { template: self.name.clone(), name: name.clone() })
                    }
                },
            }
        }
        Ok(out)
    }
}

fn parse_part(template: &str, part: &'static str, text: &str, allowed: &[&str]) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        let after_open = &rest[open + 2..];
        let offset = text.len() - rest.len() + open;
        let (line, column) = line_column(text, offset);
        let Some(close) = after_open.find("}}") else {
            return Err(TemplateError::Unclosed { template: template.to_owned(), part, line, column });
        };
        let name = after_open[..close].trim();
        if !allowed.contains(&name) {
            return Err(TemplateError::UnknownPlaceholder {
                template: template.to_owned(),
                part,
                line,
                column,
                name: name.to_owned(),
                allowed: allowed.join(", "),
            });
        }
        pieces.push(Piece::Value(name.to_owned()));
        rest = &after_open[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}
