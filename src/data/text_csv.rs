//! Labelled texts from a CSV file with a header: a text column and a class column.

use super::text::strip_html_breaks;
use super::DataError;

/// Texts with class indices into `class_names`.
#[derive(Debug, Clone, PartialEq)]
pub struct TextTable {
    /// Each text with `<br />` line breaks replaced by spaces.
    pub texts: Vec<String>,
    pub y: Vec<usize>,
    pub class_names: Vec<String>,
}

impl TextTable {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// A CSV with a header row naming `text_column` and `label` (other columns are ignored).
/// Fields may be quoted (`"a, b"`, with commas, newlines and `""` inside). Labels are class
/// names: when every label is an integer they are ordered numerically (`2` before `10`),
/// otherwise as strings; class `i` is the `i`-th distinct label in that order. Errors are
/// `path:line: what is wrong`, the line being where the offending row starts.
pub fn parse_text_csv(
    src: &str,
    path: &str,
    text_column: &str,
    label: &str,
) -> Result<TextTable, DataError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let err = |line: u64, message: String| DataError::Parse {
        path: path.to_string(),
        line: line as usize,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(src.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| err(1, format!("cannot read the header: {e}")))?
        .clone();
    let column = |name: &str, key: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                err(
                    1,
                    format!(
                        "no column named `{name}` (set {key} to one of: {})",
                        headers.iter().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
    };
    let text_col = column(text_column, "data.text_column")?;
    let label_col = column(label, "data.label")?;
    let mut texts = Vec::new();
    let mut labels = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            err(line, e.to_string())
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() != headers.len() {
            return Err(err(
                line,
                format!(
                    "{} fields, the header has {}; quote a text that holds commas: \"a, b\"",
                    rec.len(),
                    headers.len()
                ),
            ));
        }
        let l = rec[label_col].trim();
        if l.is_empty() {
            return Err(err(
                line,
                format!("column `{label}` is empty; every row needs a class"),
            ));
        }
        labels.push(l.to_string());
        texts.push(strip_html_breaks(&rec[text_col]));
    }
    if labels.is_empty() {
        return Err(err(2, "the table has no rows".into()));
    }
    let all_int = labels.iter().all(|l| l.parse::<i64>().is_ok());
    let mut names = labels.clone();
    if all_int {
        names.sort_by_key(|l| (l.parse::<i64>().expect("checked"), l.clone()));
    } else {
        names.sort();
    }
    names.dedup();
    if names.len() < 2 {
        return Err(err(
            2,
            format!(
                "column `{label}` holds a single class (`{}`); at least 2 are needed",
                names[0]
            ),
        ));
    }
    let index: std::collections::HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let y = labels.iter().map(|l| index[l.as_str()]).collect();
    Ok(TextTable {
        texts,
        y,
        class_names: names,
    })
}
