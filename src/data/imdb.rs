//! The IMDB large movie review dataset (Maas et al. 2011) in its `aclImdb` layout:
//! `{train,test}/{pos,neg}/ID_RATING.txt`, one review per file. `unsup/` and every other
//! folder or file (`urls_*.txt`, `*.feat`, `imdb.vocab`, ...) are ignored.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::text::strip_html_breaks;
use super::DataError;

/// What `data.path` must look like, for error messages.
pub const IMDB_LAYOUT: &str = "data.path must be an aclImdb folder holding train/pos, \
     train/neg, test/pos and test/neg with one review per file named ID_RATING.txt (e.g. \
     12_8.txt); unpack aclImdb_v1.tar.gz from https://ai.stanford.edu/~amaas/data/sentiment/ \
     and point data.path at its aclImdb folder";

/// Files left out while reading, reported in the record (none of them stops a run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipCounts {
    /// Files that are not UTF-8 text.
    pub non_utf8: usize,
    /// Files that are empty or hold only whitespace (after `<br />` removal).
    pub empty: usize,
    /// Files in `pos/` or `neg/` whose name is not `ID_RATING.txt`.
    pub malformed_name: usize,
}

impl SkipCounts {
    pub fn total(&self) -> usize {
        self.non_utf8 + self.empty + self.malformed_name
    }

    pub fn is_zero(&self) -> bool {
        self.total() == 0
    }

    pub fn add(&mut self, other: &SkipCounts) {
        self.non_utf8 += other.non_utf8;
        self.empty += other.empty;
        self.malformed_name += other.malformed_name;
    }
}

impl std::fmt::Display for SkipCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} non-UTF-8, {} empty, {} with a name that is not ID_RATING.txt",
            self.non_utf8, self.empty, self.malformed_name
        )
    }
}

/// One review file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImdbReview {
    /// The `ID` of `ID_RATING.txt` (unique within one `pos/` or `neg/` folder only).
    pub id: u64,
    /// The `RATING` of `ID_RATING.txt` (IMDB stars: 1-4 in `neg/`, 7-10 in `pos/`).
    pub rating: u32,
    /// 0 = `neg/`, 1 = `pos/`.
    pub label: usize,
    /// The review with `<br />` line breaks replaced by spaces.
    pub text: String,
}

/// The usable reviews of one split and what was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct ImdbSplit {
    /// Ordered by `id`, then label (neg before pos), then file name: the same on every run
    /// and machine, whatever order the file system lists them in.
    pub reviews: Vec<ImdbReview>,
    pub skipped: SkipCounts,
}

/// Class names of the IMDB labels: 0 = negative (`neg/`), 1 = positive (`pos/`).
pub const IMDB_CLASSES: [&str; 2] = ["negative", "positive"];

/// `ID_RATING.txt` -> `(ID, RATING)`; `None` for any other name.
pub fn parse_imdb_name(name: &str) -> Option<(u64, u32)> {
    let stem = name.strip_suffix(".txt")?;
    let (id, rating) = stem.split_once('_')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(id) || !digits(rating) {
        return None;
    }
    Some((id.parse().ok()?, rating.parse().ok()?))
}

/// Reads `root/split/{neg,pos}` (`split` is `"train"` or `"test"`).
///
/// Non-UTF-8 files, empty or whitespace-only files and files not named `ID_RATING.txt` are
/// skipped and counted; folders inside `pos/` or `neg/` are ignored. A missing `root`, a
/// missing `pos/` or `neg/`, or one of them without a usable review is an error naming the
/// path and the expected layout.
pub fn load_imdb_split(root: &Path, split: &str) -> Result<ImdbSplit, DataError> {
    check_root(root)?;
    let mut found = Vec::new();
    let mut skipped = SkipCounts::default();
    for (label, class) in [(0usize, "neg"), (1, "pos")] {
        let dir = root.join(split).join(class);
        let before = found.len();
        let mut here = SkipCounts::default();
        read_class(&dir, label, &mut found, &mut here)?;
        if found.len() == before {
            return Err(DataError::Layout {
                path: dir,
                message: format!(
                    "no usable review (skipped: {here}); the aclImdb layout keeps each review \
                     here as a UTF-8 text file named ID_RATING.txt (e.g. 12_8.txt)"
                ),
            });
        }
        skipped.add(&here);
    }
    found.sort_by(|a, b| (a.0.id, a.0.label, &a.1).cmp(&(b.0.id, b.0.label, &b.1)));
    Ok(ImdbSplit {
        reviews: found.into_iter().map(|(r, _)| r).collect(),
        skipped,
    })
}

fn check_root(root: &Path) -> Result<(), DataError> {
    if root.is_dir() {
        return Ok(());
    }
    let what = if root.exists() {
        "is not a directory"
    } else {
        "does not exist"
    };
    Err(DataError::Layout {
        path: root.to_path_buf(),
        message: format!("{what}; {IMDB_LAYOUT}"),
    })
}

/// Appends the usable reviews of one `pos/` or `neg/` folder with their file names.
fn read_class(
    dir: &Path,
    label: usize,
    out: &mut Vec<(ImdbReview, String)>,
    skipped: &mut SkipCounts,
) -> Result<(), DataError> {
    if !dir.is_dir() {
        return Err(DataError::Layout {
            path: dir.to_path_buf(),
            message: format!("missing folder; {IMDB_LAYOUT}"),
        });
    }
    let io = |path: &Path| {
        let path: PathBuf = path.to_path_buf();
        move |source| DataError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        if path.is_dir() {
            continue;
        }
        let name = entry.file_name();
        let Some((id, rating)) = name.to_str().and_then(parse_imdb_name) else {
            skipped.malformed_name += 1;
            continue;
        };
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let Ok(text) = String::from_utf8(bytes) else {
            skipped.non_utf8 += 1;
            continue;
        };
        let text = strip_html_breaks(text.strip_prefix('\u{feff}').unwrap_or(&text));
        if text.trim().is_empty() {
            skipped.empty += 1;
            continue;
        }
        out.push((
            ImdbReview {
                id,
                rating,
                label,
                text,
            },
            name.to_string_lossy().into_owned(),
        ));
    }
    Ok(())
}
