//! Lines and key paths inside a TOML source, so every error can say where it is.

use toml::de::{DeTable, DeValue};

/// 1-based line and column of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

/// The line of the key at `path` (`["train", "lr"]`), if the file writes it.
pub fn line_of(src: &str, path: &[&str]) -> Option<usize> {
    let root = DeTable::parse(src).ok()?;
    let mut table = root.get_ref();
    let mut span = None;
    for (i, key) in path.iter().enumerate() {
        let (k, v) = table.iter().find(|(k, _)| k.get_ref() == key)?;
        span = Some(k.span());
        if i + 1 < path.len() {
            match v.get_ref() {
                DeValue::Table(t) => table = t,
                _ => return None,
            }
        }
    }
    span.map(|s| line_col(src, s.start).0)
}

/// The dotted path of the innermost key whose key or value contains `offset`.
pub fn path_at(src: &str, offset: usize) -> Option<String> {
    let root = DeTable::parse(src).ok()?;
    let mut path = Vec::new();
    // an unknown key's own span is the error's; its table is the deepest match
    walk(root.get_ref(), offset, &mut path);
    if path.is_empty() {
        None
    } else {
        Some(path.join("."))
    }
}

fn walk(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
    for (k, v) in table.iter() {
        let ks = k.span();
        let vs = v.span();
        let here = ks.contains(&offset) || vs.contains(&offset);
        path.push(k.get_ref().to_string());
        // a `[section]` table's span is only its header: look inside it as well
        let inside = match v.get_ref() {
            DeValue::Table(t) => walk(t, offset, path),
            DeValue::Array(items) => items.iter().enumerate().any(|(i, item)| {
                path.push(i.to_string());
                let found = item.span().contains(&offset)
                    || matches!(item.get_ref(), DeValue::Table(t) if walk(t, offset, path));
                if !found {
                    path.pop();
                }
                found
            }),
            _ => false,
        };
        if here || inside {
            return true;
        }
        path.pop();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_of_nested_keys() {
        let src = "name = \"a\"\n\n[train]\nepochs = 3\nlr = 0.1\n";
        assert_eq!(line_of(src, &["name"]), Some(1));
        assert_eq!(line_of(src, &["train", "lr"]), Some(5));
        assert_eq!(line_of(src, &["train", "missing"]), None);
        assert_eq!(
            path_at(src, src.find("0.1").unwrap()),
            Some("train.lr".into())
        );
        assert_eq!(line_col(src, src.find("lr").unwrap()), (5, 1));
    }
}
