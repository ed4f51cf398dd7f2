//! Tokens, vocabulary and TF-IDF features for short texts.

use std::collections::HashMap;

/// Lowercase words: runs of letters and digits, apostrophes kept inside a word (`don't`),
/// dropped at its ends (`'quoted'` -> `quoted`).
pub fn tokenize(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    for raw in lower.split(|c: char| !(c.is_alphanumeric() || c == '\'')) {
        let w = raw.trim_matches('\'');
        if w.is_empty() {
            continue;
        }
        // a run of apostrophes inside splits the word (`rock''s` is two tokens)
        if w.contains("''") {
            out.extend(
                w.split("''")
                    .map(|p| p.trim_matches('\''))
                    .filter(|p| !p.is_empty())
                    .map(str::to_string),
            );
        } else {
            out.push(w.to_string());
        }
    }
    out
}

/// Words by training-split frequency (ties by the word), at most `max_vocab`, each seen at
/// least `min_count` times. Index 0.. in that order; unknown words have no column.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    pub words: Vec<String>,
    index: HashMap<String, usize>,
}

impl Vocabulary {
    pub fn build(docs: &[&[String]], max_vocab: usize, min_count: usize) -> Vocabulary {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for doc in docs {
            for w in doc.iter() {
                *counts.entry(w.as_str()).or_default() += 1;
            }
        }
        let mut words: Vec<(&str, usize)> = counts
            .into_iter()
            .filter(|(_, c)| *c >= min_count.max(1))
            .collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        words.truncate(max_vocab);
        let words: Vec<String> = words.into_iter().map(|(w, _)| w.to_string()).collect();
        let index = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i))
            .collect();
        Vocabulary { words, index }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn id(&self, word: &str) -> Option<usize> {
        self.index.get(word).copied()
    }
}

/// scikit-learn's default TF-IDF: raw counts times smooth idf `ln((1 + N) / (1 + df)) + 1`,
/// rows scaled to unit L2 norm; idf from the training split only.
#[derive(Debug, Clone, PartialEq)]
pub struct TfIdf {
    pub idf: Vec<f64>,
}

impl TfIdf {
    pub fn fit(vocab: &Vocabulary, docs: &[&[String]]) -> TfIdf {
        let mut df = vec![0usize; vocab.len()];
        for doc in docs {
            let mut seen = vec![false; vocab.len()];
            for w in doc.iter() {
                if let Some(i) = vocab.id(w) {
                    if !seen[i] {
                        seen[i] = true;
                        df[i] += 1;
                    }
                }
            }
        }
        let n = docs.len() as f64;
        TfIdf {
            idf: df
                .iter()
                .map(|&d| ((1.0 + n) / (1.0 + d as f64)).ln() + 1.0)
                .collect(),
        }
    }

    pub fn transform(&self, vocab: &Vocabulary, doc: &[String]) -> Vec<f64> {
        let mut row = vec![0.0; vocab.len()];
        for w in doc {
            if let Some(i) = vocab.id(w) {
                row[i] += 1.0;
            }
        }
        for (v, idf) in row.iter_mut().zip(&self.idf) {
            *v *= idf;
        }
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v /= norm);
        }
        row
    }
}
