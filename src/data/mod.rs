//! Datasets of `f64` features and class labels, split into train and eval by the seed.

mod imdb;
mod text;
mod text_csv;

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::config::{DataConfig, DataSource, TextEncoding};
use crate::rng::{stream, Stream};

pub use imdb::{
    load_imdb_split, parse_imdb_name, ImdbReview, ImdbSplit, SkipCounts, IMDB_CLASSES, IMDB_LAYOUT,
};
pub use text::{strip_html_breaks, tokenize, TfIdf, Vocabulary, FIRST_WORD_ID, OOV_ID, PAD_ID};
pub use text_csv::{parse_text_csv, TextTable};

const BREAST_CANCER_CSV: &str = include_str!("../../data/breast_cancer/breast_cancer.csv");
const MOVIE_REVIEWS_TXT: &str =
    include_str!("../../data/movie_review_snippets/movieReviewSnippets_GroundTruth.txt");

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
    /// A file or folder that is missing or not what the source expects.
    #[error("{path}: {message}")]
    Layout { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Row-major features and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub x: Vec<f64>,
    pub y: Vec<usize>,
    pub features: usize,
    pub classes: usize,
    pub class_names: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.features..(i + 1) * self.features]
    }

    /// The examples at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(idx.len() * self.features);
        for &i in idx {
            x.extend_from_slice(self.row(i));
        }
        Dataset {
            x,
            y: idx.iter().map(|&i| self.y[i]).collect(),
            features: self.features,
            classes: self.classes,
            class_names: self.class_names.clone(),
        }
    }

    /// The first `n` examples (all when `n` is 0 or too large).
    pub fn head(&self, n: usize) -> Dataset {
        let n = if n == 0 {
            self.len()
        } else {
            n.min(self.len())
        };
        self.select(&(0..n).collect::<Vec<_>>())
    }

    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.classes];
        for &y in &self.y {
            c[y] += 1;
        }
        c
    }
}

/// What the record keeps about the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSummary {
    pub source: DataSource,
    pub features: usize,
    pub classes: usize,
    pub class_names: Vec<String>,
    pub train_samples: usize,
    pub eval_samples: usize,
    pub train_class_counts: Vec<usize>,
    /// True when the evaluation split is the training set (`eval_fraction = 0`).
    pub eval_is_train: bool,
    /// Distinct token ids when `data.encoding = "tokens"`: vocabulary + 2 (0 = padding,
    /// 1 = unknown word); the rows of a model's embedding table. `features` is then
    /// `data.max_len`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    /// Files left out while reading (imdb; train and test together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<SkipCounts>,
}

#[derive(Debug, Clone)]
pub struct Split {
    pub train: Dataset,
    pub eval: Dataset,
    pub eval_is_train: bool,
    pub summary: DataSummary,
    /// Where the rows came from (not for `imdb`, whose splits are its folders).
    pub provenance: Option<Provenance>,
}

/// Which rows of the source each split holds, and how tables were standardised, so a split
/// can be rebuilt from the source file without this crate's random streams.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// Source row (file order, header excluded; generation order for generated data) of
    /// each training example, in split order.
    pub train_index: Vec<usize>,
    /// The same for the evaluation split (the training rows when `eval_is_train`).
    pub eval_index: Vec<usize>,
    /// `data.standardize` on a table: per column the training split's mean and population
    /// sd (divided by n; 1 where it is 0); both splits hold `(x − mean) / sd`.
    pub standardize: Option<(Vec<f64>, Vec<f64>)>,
}

/// Loads the configured source and splits it with `seed`.
pub fn load(cfg: &DataConfig, seed: u64) -> Result<Split, DataError> {
    match cfg.source {
        DataSource::Synthetic | DataSource::Teacher => {
            let all = synthetic(cfg, seed);
            split(all, cfg, seed)
        }
        DataSource::Csv => {
            let path = cfg.path.as_deref().ok_or_else(|| {
                DataError::Invalid("data.path is required for data.source = \"csv\"".into())
            })?;
            let src = std::fs::read_to_string(path).map_err(|source| DataError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            let all = parse_csv(&src, &path.display().to_string(), &cfg.label)?;
            split(all, cfg, seed)
        }
        DataSource::BreastCancer => {
            let all = breast_cancer()?;
            split(all, cfg, seed)
        }
        DataSource::MovieReviews => {
            let reviews = movie_reviews()?;
            let (train_idx, eval_idx) = split_indices(reviews.len(), cfg, seed);
            let pick = |idx: &[usize]| Texts {
                texts: idx.iter().map(|&i| reviews[i].text.as_str()).collect(),
                y: idx.iter().map(|&i| reviews[i].label).collect(),
            };
            let names = IMDB_CLASSES.map(String::from);
            text_split(cfg, &names, pick(&train_idx), pick(&eval_idx), None)
        }
        DataSource::TextCsv => {
            let path = required_path(cfg, "text_csv")?;
            let bytes = std::fs::read(path).map_err(|source| DataError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            let src = utf8(bytes, path)?;
            let table = parse_text_csv(
                &src,
                &path.display().to_string(),
                &cfg.text_column,
                &cfg.label,
            )?;
            let (train_idx, eval_idx) = split_indices(table.len(), cfg, seed);
            let pick = |idx: &[usize]| Texts {
                texts: idx.iter().map(|&i| table.texts[i].as_str()).collect(),
                y: idx.iter().map(|&i| table.y[i]).collect(),
            };
            text_split(
                cfg,
                &table.class_names,
                pick(&train_idx),
                pick(&eval_idx),
                None,
            )
        }
        DataSource::Imdb => {
            let root = required_path(cfg, "imdb")?;
            let train = load_imdb_split(root, "train")?;
            let test = load_imdb_split(root, "test")?;
            let mut skipped = train.skipped;
            skipped.add(&test.skipped);
            // one stream for both shuffles: the train order, then the test order
            let mut rng = stream(seed, Stream::Split);
            let train = shuffled_reviews(&train.reviews, cfg.limit, &mut rng);
            let eval = shuffled_reviews(&test.reviews, cfg.limit, &mut rng);
            let names = IMDB_CLASSES.map(String::from);
            text_split(cfg, &names, train, eval, Some(skipped))
        }
    }
}

/// The reviews in a seeded random order, the first `limit` of them (0 = all).
fn shuffled_reviews<'a>(reviews: &'a [ImdbReview], limit: usize, rng: &mut impl Rng) -> Texts<'a> {
    let mut idx: Vec<usize> = (0..reviews.len()).collect();
    idx.shuffle(rng);
    if limit > 0 {
        idx.truncate(limit);
    }
    Texts {
        texts: idx.iter().map(|&i| reviews[i].text.as_str()).collect(),
        y: idx.iter().map(|&i| reviews[i].label).collect(),
    }
}

fn required_path<'a>(cfg: &'a DataConfig, source: &str) -> Result<&'a Path, DataError> {
    cfg.path.as_deref().ok_or_else(|| {
        DataError::Invalid(format!(
            "data.path is required for data.source = \"{source}\"; set it in [data]"
        ))
    })
}

/// The file's text, or an error naming the line of its first byte that is not UTF-8.
fn utf8(bytes: Vec<u8>, path: &Path) -> Result<String, DataError> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        DataError::Parse {
            path: path.display().to_string(),
            line,
            message: format!("byte {at} is not UTF-8; save the file as UTF-8 text"),
        }
    })
}

fn synthetic(cfg: &DataConfig, seed: u64) -> Dataset {
    let mut rng = stream(seed, Stream::Data);
    let (n, d, k) = (cfg.samples, cfg.features, cfg.classes);
    let x: Vec<f64> = (0..n * d).map(|_| rng.sample(StandardNormal)).collect();
    let y: Vec<usize> = match cfg.source {
        DataSource::Teacher => {
            let h = cfg.teacher_width;
            let w1: Vec<f64> = (0..h * d)
                .map(|_| rng.sample::<f64, _>(StandardNormal) / (d as f64).sqrt())
                .collect();
            let w2: Vec<f64> = (0..k * h)
                .map(|_| rng.sample::<f64, _>(StandardNormal) / (h as f64).sqrt())
                .collect();
            (0..n)
                .map(|i| {
                    let xi = &x[i * d..(i + 1) * d];
                    let hid: Vec<f64> = (0..h)
                        .map(|j| (0..d).map(|l| w1[j * d + l] * xi[l]).sum::<f64>().tanh())
                        .collect();
                    let logits: Vec<f64> = (0..k)
                        .map(|c| (0..h).map(|j| w2[c * h + j] * hid[j]).sum())
                        .collect();
                    argmax(&logits)
                })
                .collect()
        }
        _ => (0..n).map(|_| rng.gen_range(0..k)).collect(),
    };
    Dataset {
        x,
        y,
        features: d,
        classes: k,
        class_names: (0..k).map(|c| c.to_string()).collect(),
    }
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// A CSV with a header row; `label` names the class column, every other column is a number.
/// Class names are the distinct label strings in sorted order.
pub fn parse_csv(src: &str, path: &str, label: &str) -> Result<Dataset, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(src.as_bytes());
    let err = |line: usize, message: String| DataError::Parse {
        path: path.to_string(),
        line,
        message,
    };
    let headers = reader
        .headers()
        .map_err(|e| err(1, format!("cannot read the header: {e}")))?
        .clone();
    let label_col = headers.iter().position(|h| h == label).ok_or_else(|| {
        err(
            1,
            format!(
                "no column named `{label}` (set data.label to one of: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let features = headers.len() - 1;
    if features == 0 {
        return Err(err(
            1,
            "the table has no feature column besides the label".into(),
        ));
    }
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| err(line, e.to_string()))?;
        if rec.len() != headers.len() {
            return Err(err(
                line,
                format!("{} fields, the header has {}", rec.len(), headers.len()),
            ));
        }
        for (j, field) in rec.iter().enumerate() {
            let at = |what: String| {
                err(
                    line,
                    format!("column {} (`{}`): {what}", j + 1, &headers[j]),
                )
            };
            if j == label_col {
                if field.is_empty() {
                    return Err(at("the label is empty; every row needs a class".into()));
                }
                labels.push(field.to_string());
            } else {
                let v: f64 = field
                    .parse()
                    .map_err(|_| at(format!("`{field}` is not a number")))?;
                // Rust reads `NaN`, `inf` and `1e400` (overflow to inf) as numbers: refuse them
                if !v.is_finite() {
                    return Err(at(format!(
                        "`{field}` is not a finite number (NaN, infinite or beyond ±1.8e308)"
                    )));
                }
                x.push(v);
            }
        }
    }
    if labels.is_empty() {
        return Err(err(2, "the table has no rows".into()));
    }
    let mut names: Vec<String> = labels.clone();
    names.sort();
    names.dedup();
    if names.len() < 2 {
        return Err(err(
            2,
            format!("column `{label}` holds a single class; at least 2 are needed"),
        ));
    }
    let y = labels
        .iter()
        .map(|l| names.binary_search(l).expect("label is in the list"))
        .collect();
    Ok(Dataset {
        x,
        y,
        features,
        classes: names.len(),
        class_names: names,
    })
}

/// The bundled Wisconsin diagnostic breast cancer table (569 x 30; 0 = malignant, 1 = benign).
pub fn breast_cancer() -> Result<Dataset, DataError> {
    let path = "data/breast_cancer/breast_cancer.csv";
    let mut lines = BREAST_CANCER_CSV.lines();
    let head: Vec<&str> = lines.next().unwrap_or("").trim().split(',').collect();
    let bad = |line, message: String| DataError::Parse {
        path: path.into(),
        line,
        message,
    };
    if head.len() < 4 {
        return Err(bad(1, "expected `rows,features,class names...`".into()));
    }
    let rows: usize = head[0]
        .parse()
        .map_err(|_| bad(1, "row count is not a number".into()))?;
    let features: usize = head[1]
        .parse()
        .map_err(|_| bad(1, "feature count is not a number".into()))?;
    let class_names: Vec<String> = head[2..].iter().map(|s| s.to_string()).collect();
    let mut x = Vec::with_capacity(rows * features);
    let mut y = Vec::with_capacity(rows);
    for (i, line) in lines.enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != features + 1 {
            return Err(bad(
                i + 2,
                format!("{} fields, expected {}", fields.len(), features + 1),
            ));
        }
        for f in &fields[..features] {
            x.push(
                f.parse()
                    .map_err(|_| bad(i + 2, format!("`{f}` is not a number")))?,
            );
        }
        let c: usize = fields[features]
            .parse()
            .map_err(|_| bad(i + 2, "target is not a class index".into()))?;
        if c >= class_names.len() {
            return Err(bad(i + 2, format!("target {c} has no class name")));
        }
        y.push(c);
    }
    if y.len() != rows {
        return Err(bad(
            1,
            format!("header says {rows} rows, found {}", y.len()),
        ));
    }
    Ok(Dataset {
        x,
        y,
        features,
        classes: class_names.len(),
        class_names,
    })
}

/// One rated sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub text: String,
    pub rating: f64,
    pub label: usize,
}

/// The bundled movie-review sentences with label `rating > 0`; rating 0 is dropped.
pub fn movie_reviews() -> Result<Vec<Review>, DataError> {
    parse_reviews(
        MOVIE_REVIEWS_TXT,
        "data/movie_review_snippets/movieReviewSnippets_GroundTruth.txt",
    )
}

/// `ID<TAB>MEAN_RATING<TAB>TEXT` lines.
pub fn parse_reviews(src: &str, path: &str) -> Result<Vec<Review>, DataError> {
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, '\t');
        let (_id, rating, text) = (parts.next(), parts.next(), parts.next());
        let (Some(rating), Some(text)) = (rating, text) else {
            return Err(DataError::Parse {
                path: path.into(),
                line: i + 1,
                message: "expected ID<TAB>RATING<TAB>TEXT".into(),
            });
        };
        let rating: f64 = rating.trim().parse().map_err(|_| DataError::Parse {
            path: path.into(),
            line: i + 1,
            message: format!("rating `{rating}` is not a number"),
        })?;
        if rating == 0.0 {
            continue;
        }
        out.push(Review {
            text: text.to_string(),
            rating,
            label: usize::from(rating > 0.0),
        });
    }
    Ok(out)
}

fn shuffled_order(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut stream(seed, Stream::Split));
    idx
}

fn split_indices(n: usize, cfg: &DataConfig, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order = shuffled_order(n, seed);
    if cfg.limit > 0 {
        order.truncate(cfg.limit);
    }
    let n_eval = (order.len() as f64 * cfg.eval_fraction).floor() as usize;
    let eval = order[..n_eval].to_vec();
    let train = order[n_eval..].to_vec();
    (train, eval)
}

fn split(all: Dataset, cfg: &DataConfig, seed: u64) -> Result<Split, DataError> {
    let standardize =
        cfg.standardize && matches!(cfg.source, DataSource::Csv | DataSource::BreastCancer);
    // Generated data keeps its generation order (the article draws and uses it as is);
    // tables are shuffled before the split.
    let (train_idx, eval_idx) = if cfg.eval_fraction == 0.0 && cfg.limit == 0 {
        ((0..all.len()).collect(), Vec::new())
    } else {
        split_indices(all.len(), cfg, seed)
    };
    let mut train = all.select(&train_idx);
    let eval_is_train = cfg.eval_fraction == 0.0;
    if !eval_is_train && eval_idx.is_empty() {
        return Err(DataError::Invalid(format!(
            "data.eval_fraction = {} of {} examples leaves no evaluation example; raise it, \
             or set it to 0 to evaluate on the training split",
            cfg.eval_fraction,
            train_idx.len()
        )));
    }
    let mut eval = if eval_is_train {
        train.clone()
    } else {
        all.select(&eval_idx)
    };
    let stats = standardize.then(|| column_stats(&train));
    if let Some((mean, sd)) = &stats {
        for ds in [&mut train, &mut eval] {
            for i in 0..ds.len() {
                for j in 0..ds.features {
                    let v = &mut ds.x[i * ds.features + j];
                    *v = (*v - mean[j]) / sd[j];
                }
            }
        }
    }
    let mut split = finish(cfg, train, eval, eval_is_train)?;
    split.provenance = Some(Provenance {
        eval_index: if eval_is_train {
            train_idx.clone()
        } else {
            eval_idx
        },
        train_index: train_idx,
        standardize: stats,
    });
    Ok(split)
}

fn finish(
    cfg: &DataConfig,
    train: Dataset,
    eval: Dataset,
    eval_is_train: bool,
) -> Result<Split, DataError> {
    if train.len() < 2 {
        return Err(DataError::Invalid(format!(
            "the training split has {} examples; lower data.eval_fraction or raise data.limit",
            train.len()
        )));
    }

    let summary = DataSummary {
        source: cfg.source,
        features: train.features,
        classes: train.classes,
        class_names: train.class_names.clone(),
        train_samples: train.len(),
        eval_samples: eval.len(),
        train_class_counts: train.class_counts(),
        eval_is_train,
        vocab_size: None,
        skipped: None,
    };
    Ok(Split {
        train,
        eval,
        eval_is_train,
        summary,
        provenance: None,
    })
}

/// Mean and population sd of each column (sd 0 becomes 1: a constant column stays constant).
fn column_stats(ds: &Dataset) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (ds.len() as f64, ds.features);
    let mut mean = vec![0.0; d];
    for row in ds.x.chunks(d) {
        for (m, x) in mean.iter_mut().zip(row) {
            *m += x / n;
        }
    }
    let mut var = vec![0.0; d];
    for row in ds.x.chunks(d) {
        for ((v, x), m) in var.iter_mut().zip(row).zip(&mean) {
            *v += (x - m).powi(2) / n;
        }
    }
    let sd = var
        .into_iter()
        .map(|v| if v > 0.0 { v.sqrt() } else { 1.0 })
        .collect();
    (mean, sd)
}

/// One tokenized text -> one feature row.
type Encoder<'a> = Box<dyn Fn(&[String]) -> Vec<f64> + 'a>;

/// Texts and their labels, before encoding.
struct Texts<'a> {
    texts: Vec<&'a str>,
    y: Vec<usize>,
}

/// Tokenizes, builds the vocabulary on the training texts and encodes both splits as
/// `data.encoding` says (TF-IDF rows or token ids; never standardised). An empty `eval`
/// means evaluating on the training set.
fn text_split(
    cfg: &DataConfig,
    class_names: &[String],
    train: Texts,
    eval: Texts,
    skipped: Option<SkipCounts>,
) -> Result<Split, DataError> {
    let train_docs = || train.texts.iter().map(|t| tokenize(t));
    let vocab = Vocabulary::build_from(train_docs(), cfg.max_vocab, cfg.min_count);
    if vocab.is_empty() {
        return Err(DataError::Invalid(format!(
            "no word occurs {} times in the training split; lower data.min_count",
            cfg.min_count
        )));
    }
    let vocab = &vocab;
    let (features, encode): (usize, Encoder) = match cfg.encoding {
        TextEncoding::Tfidf => {
            let tfidf = TfIdf::fit_from(vocab, train_docs());
            (
                vocab.len(),
                Box::new(move |doc| tfidf.transform(vocab, doc)),
            )
        }
        TextEncoding::Tokens => (
            cfg.max_len,
            Box::new(move |doc| vocab.encode_tokens(doc, cfg.max_len)),
        ),
    };
    let make = |t: &Texts| Dataset {
        x: t.texts.iter().flat_map(|s| encode(&tokenize(s))).collect(),
        y: t.y.clone(),
        features,
        classes: class_names.len(),
        class_names: class_names.to_vec(),
    };
    let train = make(&train);
    let eval_is_train = eval.y.is_empty();
    let eval = if eval_is_train {
        train.clone()
    } else {
        make(&eval)
    };
    let mut split = finish(cfg, train, eval, eval_is_train)?;
    if cfg.encoding == TextEncoding::Tokens {
        split.summary.vocab_size = Some(vocab.token_vocab_size());
    }
    split.summary.skipped = skipped;
    Ok(split)
}

/// Path of a bundled data file inside the repository (for documentation and notices).
pub fn bundled_path(source: DataSource) -> Option<&'static Path> {
    match source {
        DataSource::BreastCancer => Some(Path::new("data/breast_cancer/breast_cancer.csv")),
        DataSource::MovieReviews => Some(Path::new(
            "data/movie_review_snippets/movieReviewSnippets_GroundTruth.txt",
        )),
        _ => None,
    }
}
