//! `[data]`: where the examples come from and how texts become features.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{bad, ConfigError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// The article's data: features ~ N(0, 1), labels uniform at random.
    #[default]
    Synthetic,
    /// Features ~ N(0, 1), labels = argmax of a random tanh network: something to learn.
    Teacher,
    /// A CSV table with a header; `label` names the class column.
    Csv,
    /// 569 x 30 Wisconsin diagnostic breast cancer table (bundled).
    BreastCancer,
    /// 10,568 rated movie-review sentences as TF-IDF bags of words (bundled).
    MovieReviews,
    /// A directory in the IMDB `aclImdb` layout (`path`): train from `train/{pos,neg}`, eval
    /// from `test/{pos,neg}`, files `ID_RATING.txt`; `eval_fraction` is ignored (the test split
    /// exists) and `limit` caps each split after a seeded shuffle.
    Imdb,
    /// A CSV file (`path`) with a header, a text column (`text_column`) and a class column
    /// (`label`); split like `movie_reviews`.
    TextCsv,
}

/// How texts become features (movie_reviews, imdb, text_csv).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TextEncoding {
    /// One row of `max_vocab` TF-IDF weights per text (unit L2 norm).
    #[default]
    Tfidf,
    /// `max_len` token ids per text, stored as `f64`: 0 = padding (at the end), 1 = unknown
    /// word, word `i` of the vocabulary = `i + 2`; longer texts keep their first `max_len`
    /// tokens.
    Tokens,
}

impl DataSource {
    /// Sources made of texts, which `data.encoding` applies to.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            DataSource::MovieReviews | DataSource::Imdb | DataSource::TextCsv
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub source: DataSource,
    /// Examples drawn (synthetic, teacher).
    pub samples: usize,
    /// Input features (synthetic, teacher).
    pub features: usize,
    /// Classes (synthetic, teacher).
    pub classes: usize,
    /// Hidden width of the random teacher network.
    pub teacher_width: usize,
    /// CSV file (csv, text_csv) or `aclImdb` directory (imdb); relative paths are taken from
    /// the config's folder.
    pub path: Option<PathBuf>,
    /// Name of the CSV class column (csv, text_csv).
    pub label: String,
    /// Name of the CSV text column (text_csv).
    pub text_column: String,
    /// Fraction held out for evaluation; 0 evaluates on the training set (the article's choice).
    pub eval_fraction: f64,
    /// Standardise features with the training split's mean and sd (csv, breast_cancer).
    pub standardize: bool,
    /// Vocabulary size cap (movie_reviews, imdb, text_csv).
    pub max_vocab: usize,
    /// Minimum training-split count for a word to enter the vocabulary (movie_reviews, imdb,
    /// text_csv).
    pub min_count: usize,
    /// Use only the first N examples after shuffling (0 = all); handy for quick runs. For imdb
    /// it caps the train and the test split each.
    pub limit: usize,
    /// Text features (movie_reviews, imdb, text_csv): `tfidf` rows or `tokens` id sequences.
    pub encoding: TextEncoding,
    /// Token ids per text when `encoding = "tokens"` (truncated or padded to this length).
    pub max_len: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: DataSource::Synthetic,
            samples: 100,
            features: 10,
            classes: 2,
            teacher_width: 32,
            path: None,
            label: "label".into(),
            text_column: "text".into(),
            eval_fraction: 0.2,
            standardize: true,
            max_vocab: 1000,
            min_count: 2,
            limit: 0,
            encoding: TextEncoding::Tfidf,
            max_len: 64,
        }
    }
}

impl DataConfig {
    /// Checks the `[data]` keys alone; the model's reading of them is checked with the model.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_drawn()?;
        self.validate_files()?;
        if self.encoding == TextEncoding::Tokens {
            if !self.source.is_text() {
                return bad(
                    "data.encoding",
                    "\"tokens\" needs a text source (movie_reviews, imdb or text_csv); use \
                     \"tfidf\" or remove the key",
                );
            }
            if self.max_len == 0 {
                return bad("data.max_len", "is 0, must be at least 1");
            }
        }
        if !(0.0..1.0).contains(&self.eval_fraction) || self.eval_fraction.is_nan() {
            return bad(
                "data.eval_fraction",
                format!(
                    "is {}, must be in [0, 1) (0 evaluates on the training set)",
                    self.eval_fraction
                ),
            );
        }
        if self.max_vocab == 0 {
            return bad("data.max_vocab", "is 0, must be at least 1");
        }
        Ok(())
    }

    /// The sizes of drawn data (synthetic, teacher).
    fn validate_drawn(&self) -> Result<(), ConfigError> {
        if !matches!(self.source, DataSource::Synthetic | DataSource::Teacher) {
            return Ok(());
        }
        if self.samples < 2 {
            return bad(
                "data.samples",
                format!("is {}, must be at least 2", self.samples),
            );
        }
        if self.features == 0 {
            return bad("data.features", "is 0, must be at least 1");
        }
        if self.classes < 2 {
            return bad(
                "data.classes",
                format!("is {}, must be at least 2", self.classes),
            );
        }
        if self.source == DataSource::Teacher && self.teacher_width == 0 {
            return bad("data.teacher_width", "is 0, must be at least 1");
        }
        Ok(())
    }

    /// The path and columns of data read from files (csv, text_csv, imdb).
    fn validate_files(&self) -> Result<(), ConfigError> {
        if self.path.is_none() {
            let what = match self.source {
                DataSource::Csv => Some(("csv", "a CSV file with a header")),
                DataSource::TextCsv => Some((
                    "text_csv",
                    "a CSV file with a header holding a text and a label column",
                )),
                DataSource::Imdb => Some((
                    "imdb",
                    "the aclImdb directory holding train/pos, train/neg, test/pos, test/neg",
                )),
                _ => None,
            };
            if let Some((source, file)) = what {
                return bad(
                    "data.path",
                    format!("is required when data.source = \"{source}\" (path to {file})"),
                );
            }
        }
        if self.source == DataSource::TextCsv {
            if self.text_column.trim().is_empty() {
                return bad(
                    "data.text_column",
                    "must not be empty (the CSV's text column)",
                );
            }
            if self.text_column == self.label {
                return bad(
                    "data.text_column",
                    format!(
                        "is `{}`, the same column as data.label: name the text and the class \
                         columns apart",
                        self.text_column
                    ),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(d: &DataConfig) -> Option<String> {
        d.validate().err().and_then(|e| e.key().map(str::to_string))
    }

    #[test]
    fn the_defaults_are_valid_synthetic_data() {
        let d = DataConfig::default();
        assert_eq!(d.source, DataSource::Synthetic);
        assert_eq!((d.samples, d.features, d.classes), (100, 10, 2));
        assert!(d.validate().is_ok());
    }

    #[test]
    fn drawn_sizes_are_checked_only_for_drawn_sources() {
        let d = DataConfig {
            classes: 1,
            ..DataConfig::default()
        };
        assert_eq!(key(&d).as_deref(), Some("data.classes"));
        let d = DataConfig {
            source: DataSource::BreastCancer,
            ..d
        };
        assert!(d.validate().is_ok());
        let d = DataConfig {
            source: DataSource::Teacher,
            teacher_width: 0,
            ..DataConfig::default()
        };
        assert_eq!(key(&d).as_deref(), Some("data.teacher_width"));
    }

    #[test]
    fn file_sources_need_a_path_and_distinct_columns() {
        for source in [DataSource::Csv, DataSource::TextCsv, DataSource::Imdb] {
            let d = DataConfig {
                source,
                ..DataConfig::default()
            };
            let e = d.validate().unwrap_err().to_string();
            assert!(e.contains("data.path") && e.contains("is required"), "{e}");
        }
        let d = DataConfig {
            source: DataSource::TextCsv,
            path: Some("x.csv".into()),
            text_column: "label".into(),
            ..DataConfig::default()
        };
        assert_eq!(key(&d).as_deref(), Some("data.text_column"));
    }

    #[test]
    fn tokens_need_a_text_source_and_a_length() {
        let d = DataConfig {
            encoding: TextEncoding::Tokens,
            ..DataConfig::default()
        };
        assert_eq!(key(&d).as_deref(), Some("data.encoding"));
        let d = DataConfig {
            source: DataSource::MovieReviews,
            max_len: 0,
            ..d
        };
        assert_eq!(key(&d).as_deref(), Some("data.max_len"));
    }

    #[test]
    fn eval_fraction_is_in_the_half_open_unit_interval() {
        for f in [1.0, -0.1, f64::NAN] {
            let d = DataConfig {
                eval_fraction: f,
                ..DataConfig::default()
            };
            assert_eq!(key(&d).as_deref(), Some("data.eval_fraction"), "{f}");
        }
        let d = DataConfig {
            eval_fraction: 0.0,
            ..DataConfig::default()
        };
        assert!(d.validate().is_ok());
    }
}
