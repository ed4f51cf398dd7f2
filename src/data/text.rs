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

/// HTML line breaks (`<br />`, `<br/>`, `<br>`, any case, spaces allowed before `/` and `>`)
/// replaced by a space; IMDB reviews are full of them. Other tags are left alone.
pub fn strip_html_breaks(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut last, mut i) = (0, 0);
    while let Some(off) = b[i..].iter().position(|&c| c == b'<') {
        let start = i + off;
        match br_end(b, start) {
            Some(end) => {
                // `<` and `>` are ASCII, so both ends are char boundaries
                out.push_str(&text[last..start]);
                out.push(' ');
                last = end;
                i = end;
            }
            None => i = start + 1,
        }
    }
    out.push_str(&text[last..]);
    out
}

/// The index after the `>` of a `<br>` tag starting at `start`, if there is one.
fn br_end(b: &[u8], start: usize) -> Option<usize> {
    let mut j = start + 1;
    if !b.get(j..j + 2)?.eq_ignore_ascii_case(b"br") {
        return None;
    }
    j += 2;
    let skip_space = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        j
    };
    j = skip_space(j);
    if b.get(j) == Some(&b'/') {
        j = skip_space(j + 1);
    }
    (b.get(j) == Some(&b'>')).then_some(j + 1)
}

/// Token id of padding (after the last token of a short text).
pub const PAD_ID: usize = 0;
/// Token id of a word that is not in the vocabulary.
pub const OOV_ID: usize = 1;
/// Token id of word 0 of the vocabulary; word `i` is `FIRST_WORD_ID + i`.
pub const FIRST_WORD_ID: usize = 2;

/// Words by training-split frequency (ties by the word), at most `max_vocab`, each seen at
/// least `min_count` times (a `min_count` of 0 counts as 1). Index 0.. in that order; unknown
/// words have no column.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    pub words: Vec<String>,
    index: HashMap<String, usize>,
}

impl Vocabulary {
    pub fn build(docs: &[&[String]], max_vocab: usize, min_count: usize) -> Vocabulary {
        Vocabulary::build_from(docs.iter().copied(), max_vocab, min_count)
    }

    /// [`Vocabulary::build`] over documents produced one at a time (a large corpus need not
    /// hold every token list at once).
    pub fn build_from<I, D>(docs: I, max_vocab: usize, min_count: usize) -> Vocabulary
    where
        I: IntoIterator<Item = D>,
        D: AsRef<[String]>,
    {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for doc in docs {
            for w in doc.as_ref() {
                match counts.get_mut(w.as_str()) {
                    Some(c) => *c += 1,
                    None => {
                        counts.insert(w.clone(), 1);
                    }
                }
            }
        }
        let mut words: Vec<(String, usize)> = counts
            .into_iter()
            .filter(|(_, c)| *c >= min_count.max(1))
            .collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        words.truncate(max_vocab);
        let words: Vec<String> = words.into_iter().map(|(w, _)| w).collect();
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

    /// Distinct token ids of [`Vocabulary::encode_tokens`]: the words plus padding and
    /// unknown (`len() + 2`), the row count of a model's embedding table.
    pub fn token_vocab_size(&self) -> usize {
        self.len() + FIRST_WORD_ID
    }

    /// Token ids of one tokenized text, exactly `max_len` of them: word `i` is `i + 2`, an
    /// unknown word [`OOV_ID`] (1); a longer text keeps its first `max_len` tokens, a shorter
    /// one is padded with [`PAD_ID`] (0) at the end.
    ///
    /// A text with no token at all becomes a single [`OOV_ID`] followed by padding, so every
    /// row holds at least one non-padding id and a mean over non-padding positions never
    /// divides by zero. `max_len = 0` gives an empty row (config validation refuses it).
    pub fn token_ids(&self, doc: &[String], max_len: usize) -> Vec<usize> {
        let mut ids: Vec<usize> = doc
            .iter()
            .take(max_len)
            .map(|w| self.id(w).map_or(OOV_ID, |i| i + FIRST_WORD_ID))
            .collect();
        if ids.is_empty() && max_len > 0 {
            ids.push(OOV_ID);
        }
        ids.resize(max_len, PAD_ID);
        ids
    }

    /// [`Vocabulary::token_ids`] as `f64`, the form a [`crate::data::Dataset`] row holds.
    pub fn encode_tokens(&self, doc: &[String], max_len: usize) -> Vec<f64> {
        self.token_ids(doc, max_len)
            .into_iter()
            .map(|i| i as f64)
            .collect()
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
        TfIdf::fit_from(vocab, docs.iter().copied())
    }

    /// [`TfIdf::fit`] over documents produced one at a time.
    pub fn fit_from<I, D>(vocab: &Vocabulary, docs: I) -> TfIdf
    where
        I: IntoIterator<Item = D>,
        D: AsRef<[String]>,
    {
        let mut df = vec![0usize; vocab.len()];
        let mut n = 0usize;
        for doc in docs {
            n += 1;
            let mut seen = vec![false; vocab.len()];
            for w in doc.as_ref() {
                if let Some(i) = vocab.id(w) {
                    if !seen[i] {
                        seen[i] = true;
                        df[i] += 1;
                    }
                }
            }
        }
        let n = n as f64;
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
