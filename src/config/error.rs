//! The one error a config can give, and the one place it becomes a message.

use std::fmt;
use std::path::PathBuf;

use crate::tomlpos;

/// A config that could not be read or is not valid.
///
/// Every section's `validate` returns [`ConfigError::Invalid`] with the key path and what is
/// allowed, not yet located; [`Config::parse`](super::Config::parse) and
/// [`Config::load`](super::Config::load) add the file and, where the file writes the key, its
/// line. The message (`Display`) is made in [`fmt::Display`] below and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Refused before parsing (see `MAX_CONFIG_BYTES`).
    #[error("{file}: is {bytes} bytes; a config is at most 1 MiB (a few hundred lines)")]
    TooLarge { file: String, bytes: usize },
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", Located { file: file.as_deref(), line: *line, key, message })]
    Invalid {
        /// The file as the caller named it; `None` for a config built in code.
        file: Option<String>,
        /// 1-based line of the key; `None` when the file does not write it (a default).
        line: Option<usize>,
        /// Dotted key path, e.g. `prune.ratios`.
        key: String,
        /// What is wrong and what is allowed, written to follow the key (`is 0, must be at
        /// least 1`).
        message: String,
    },
    /// An error in a value given outside the file's own text: a `--set KEY=VALUE`
    /// (`origin = "--set model.width=abc"`) or a sweep point (`sweep point
    /// \`model.depth=0\``); `error` says the key and what is allowed.
    #[error("{origin}: {error}")]
    In {
        origin: String,
        error: Box<ConfigError>,
    },
}

impl ConfigError {
    /// An invalid value at `key`, not yet located in a file.
    pub fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: None,
            line: None,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The key path this error is about (`None` for an I/O error).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Io { .. } | ConfigError::TooLarge { .. } => None,
            ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::In { error, .. } => error.key(),
        }
    }

    /// This error placed in `file`, whose text is `src`: the line of its key when the file
    /// writes the key.
    pub fn in_file(self, file: &str, src: &str) -> ConfigError {
        match self {
            ConfigError::Invalid {
                key, message, line, ..
            } => {
                let parts: Vec<&str> = key.split('.').collect();
                ConfigError::Invalid {
                    file: Some(file.to_string()),
                    line: line.or_else(|| tomlpos::line_of(src, &parts)),
                    key,
                    message,
                }
            }
            other => other,
        }
    }

    /// This error said to come from `origin` (a `--set`, a sweep point).
    pub fn from_origin(self, origin: impl Into<String>) -> ConfigError {
        ConfigError::In {
            origin: origin.into(),
            error: Box::new(self),
        }
    }

    /// A TOML syntax or type error in `file` (text `src`), at the key it falls in.
    pub(crate) fn from_toml(e: &toml::de::Error, file: &str, src: &str) -> ConfigError {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let (line, _) = tomlpos::line_col(src, offset);
        let mut key = tomlpos::path_at(src, offset).unwrap_or_else(|| "(top level)".into());
        let message = e.message().trim();
        // a duplicate key's span is the key itself: name it, under its table
        if message.starts_with("duplicate key") {
            if let Some(dup) = e.span().and_then(|s| src.get(s)).map(str::trim) {
                let dup = dup.trim_matches('"');
                // the document does not parse, so its table comes from the last header above
                let table = src[..offset.min(src.len())].lines().rev().find_map(|l| {
                    let l = l.trim();
                    l.strip_prefix('[')?
                        .strip_suffix(']')
                        .map(|t| t.trim_matches(['[', ']']).trim().to_string())
                });
                key = match table {
                    Some(t) => format!("{t}.{dup}"),
                    None => dup.to_string(),
                };
            }
        }
        ConfigError::Invalid {
            file: Some(file.to_string()),
            line: Some(line),
            key,
            message: e.message().trim().to_string(),
        }
    }
}

/// `Err(ConfigError::invalid(key, message))`, for the sections' `validate`.
pub(crate) fn bad(key: &str, message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError::invalid(key, message))
}

/// The message of [`ConfigError::Invalid`], by how much of its place is known.
struct Located<'a> {
    file: Option<&'a str>,
    line: Option<usize>,
    key: &'a str,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Located {
            file,
            line,
            key,
            message,
        } = self;
        match (file, line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: `{key}`: {message}"),
            // the key is not in the file: its default is what is wrong
            (Some(file), None) => write!(f, "{file}: `{key}` (default): {message}"),
            (None, _) => write!(f, "`{key}` {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_as_much_of_the_place_as_is_known() {
        let e = ConfigError::invalid("train.lr", "is 0, must be > 0");
        assert_eq!(e.key(), Some("train.lr"));
        assert_eq!(e.to_string(), "`train.lr` is 0, must be > 0");
        let src = "name = \"a\"\n[train]\nlr = 0.0\n";
        let located = ConfigError::invalid("train.lr", "is 0, must be > 0").in_file("a.toml", src);
        assert_eq!(
            located.to_string(),
            "a.toml:3: `train.lr`: is 0, must be > 0"
        );
        let default = ConfigError::invalid("data.path", "is required").in_file("a.toml", src);
        assert_eq!(
            default.to_string(),
            "a.toml: `data.path` (default): is required"
        );
    }

    #[test]
    fn io_errors_name_the_path_and_keep_it_when_placed() {
        let e = ConfigError::Io {
            path: PathBuf::from("/x/exp.toml"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let e = e.in_file("other.toml", "");
        assert!(e
            .to_string()
            .starts_with("cannot read config /x/exp.toml: "));
        assert_eq!(e.key(), None);
    }
}
