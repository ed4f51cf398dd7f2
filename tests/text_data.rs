//! Text sources (IMDB `aclImdb` folders, text CSV files, the bundled sentences), the tokenizer,
//! the vocabulary, and the TF-IDF and token-id encodings.

use std::fs;
use std::path::Path;

use resprune::config::{Config, DataConfig, DataSource, TextEncoding};
use resprune::data::{
    self, load_imdb_split, parse_imdb_name, parse_text_csv, strip_html_breaks, tokenize,
    DataSummary, SkipCounts, Vocabulary, OOV_ID, PAD_ID,
};

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// A small aclImdb tree: 5 usable train reviews (plus one non-UTF-8, one empty and one
/// misnamed file), 3 test reviews, an `unsup/` folder and the extra files of the real archive.
fn imdb_tree(root: &Path) {
    let t = |p: &str, s: &str| write(&root.join(p), s.as_bytes());
    t("train/pos/3_9.txt", "Great film.<br /><br />Loved it");
    t("train/pos/10_7.txt", "Good<BR>fun, good cast");
    t("train/pos/1_10.txt", "the best film");
    t("train/pos/notes.txt", "not a review");
    write(&root.join("train/pos/7_8.txt"), &[b'o', b'k', 0xff, 0xfe]);
    t("train/neg/2_1.txt", "Awful<br/>boring film");
    t("train/neg/0_3.txt", "   \n\t <br /> ");
    t("train/neg/5_2.txt", "bad bad film");
    t("train/unsup/0_0.txt", "ignored");
    t(
        "train/urls_pos.txt",
        "http://www.imdb.com/title/tt0000001/usercomments",
    );
    t("train/labeledBow.feat", "0:1 1:2");
    t("imdb.vocab", "the\nfilm\n");
    t("test/pos/0_8.txt", "good film good fun");
    t("test/neg/0_4.txt", "bad film");
    t("test/neg/1_2.txt", "boring and bad");
}

#[test]
fn imdb_split_reads_ids_ratings_labels_in_numeric_order_and_counts_skips() {
    let dir = tempfile::tempdir().unwrap();
    imdb_tree(dir.path());
    let s = load_imdb_split(dir.path(), "train").unwrap();
    let ids: Vec<u64> = s.reviews.iter().map(|r| r.id).collect();
    let labels: Vec<usize> = s.reviews.iter().map(|r| r.label).collect();
    let ratings: Vec<u32> = s.reviews.iter().map(|r| r.rating).collect();
    // numeric order: 10 comes after 5 (as text it would come right after 1)
    assert_eq!(ids, vec![1, 2, 3, 5, 10]);
    assert_eq!(labels, vec![1, 0, 1, 0, 1]);
    assert_eq!(ratings, vec![10, 1, 9, 2, 7]);
    assert_eq!(s.reviews[2].text, "Great film.  Loved it");
    assert_eq!(s.reviews[1].text, "Awful boring film");
    assert_eq!(s.reviews[4].text, "Good fun, good cast");
    assert_eq!(
        s.skipped,
        SkipCounts {
            non_utf8: 1,
            empty: 1,
            malformed_name: 1
        }
    );
    assert!(s.reviews.iter().all(|r| r.text != "ignored"));

    let t = load_imdb_split(dir.path(), "test").unwrap();
    assert_eq!(t.reviews.len(), 3);
    // same id in neg and pos: neg first
    let order: Vec<(u64, usize)> = t.reviews.iter().map(|r| (r.id, r.label)).collect();
    assert_eq!(order, vec![(0, 0), (0, 1), (1, 0)]);
    assert!(t.skipped.is_zero());
}

#[test]
fn imdb_file_names_are_id_underscore_rating_dot_txt() {
    assert_eq!(parse_imdb_name("12_8.txt"), Some((12, 8)));
    assert_eq!(parse_imdb_name("0_10.txt"), Some((0, 10)));
    for bad in [
        "12_8.TXT",
        "12-8.txt",
        "12_.txt",
        "_8.txt",
        "a_8.txt",
        "12_8",
        "12_8_1.txt",
        "+1_8.txt",
        ".DS_Store",
    ] {
        assert_eq!(parse_imdb_name(bad), None, "{bad}");
    }
}

#[test]
fn imdb_source_trains_on_train_and_evaluates_on_test_through_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    imdb_tree(&dir.path().join("aclImdb"));
    let toml = "name = \"imdb\"\n[data]\nsource = \"imdb\"\npath = \"aclImdb\"\n\
                min_count = 1\nmax_vocab = 50\neval_fraction = 0.5\n";
    fs::write(dir.path().join("exp.toml"), toml).unwrap();
    // a relative path is taken from the config's folder, wherever the tool is started
    let cfg = Config::load(&dir.path().join("exp.toml")).unwrap();
    assert_eq!(cfg.data.path.as_deref(), Some(&*dir.path().join("aclImdb")));
    let s = data::load(&cfg.data, 0).unwrap();
    // eval_fraction is ignored: eval is the whole test split
    assert_eq!((s.train.len(), s.eval.len()), (5, 3));
    assert!(!s.eval_is_train && !s.summary.eval_is_train);
    assert_eq!(s.train.class_names, vec!["negative", "positive"]);
    let mut pos = s.train.y.clone();
    pos.sort();
    assert_eq!(pos, vec![0, 0, 1, 1, 1]);
    assert_eq!(s.summary.train_class_counts, vec![2, 3]);
    assert_eq!(s.eval.class_counts(), vec![2, 1]);
    // tfidf over the training vocabulary: "<br />" left no "br" word behind
    assert_eq!(s.summary.vocab_size, None);
    assert_eq!(
        s.summary.skipped,
        Some(SkipCounts {
            non_utf8: 1,
            empty: 1,
            malformed_name: 1
        })
    );
    let n: f64 = s.eval.row(0).iter().map(|v| v * v).sum();
    assert!((n - 1.0).abs() < 1e-12, "{n}");

    // the same seed gives the same order; limit caps each split
    let again = data::load(&cfg.data, 0).unwrap();
    assert_eq!(again.train, s.train);
    let limited = DataConfig {
        limit: 2,
        ..cfg.data.clone()
    };
    let l = data::load(&limited, 0).unwrap();
    assert_eq!((l.train.len(), l.eval.len()), (2, 2));
}

#[test]
fn imdb_vocabulary_has_no_html_break_words() {
    let dir = tempfile::tempdir().unwrap();
    imdb_tree(dir.path());
    let s = load_imdb_split(dir.path(), "train").unwrap();
    let docs: Vec<Vec<String>> = s.reviews.iter().map(|r| tokenize(&r.text)).collect();
    let v = Vocabulary::build_from(&docs, 100, 1);
    assert!(v.id("br").is_none(), "{:?}", v.words);
    assert_eq!(v.words[0], "film"); // 3 times, the most frequent
}

#[test]
fn imdb_missing_folders_and_empty_splits_are_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let e = load_imdb_split(&missing, "train").unwrap_err().to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");
    assert!(
        e.contains("does not exist") && e.contains("train/pos"),
        "{e}"
    );

    let root = dir.path().join("aclImdb");
    imdb_tree(&root);
    fs::remove_dir_all(root.join("test/neg")).unwrap();
    let cfg = DataConfig {
        source: DataSource::Imdb,
        path: Some(root.clone()),
        min_count: 1,
        ..DataConfig::default()
    };
    let e = data::load(&cfg, 0).unwrap_err().to_string();
    assert!(
        e.contains(&root.join("test").join("neg").display().to_string()),
        "{e}"
    );
    assert!(
        e.contains("missing folder") && e.contains("ID_RATING.txt"),
        "{e}"
    );

    // a class folder whose files are all unusable
    write(&root.join("test/neg/0_1.txt"), b"  ");
    write(&root.join("test/neg/readme"), b"x");
    let e = data::load(&cfg, 0).unwrap_err().to_string();
    assert!(
        e.contains(&root.join("test").join("neg").display().to_string()),
        "{e}"
    );
    assert!(e.contains("no usable review"), "{e}");
    assert!(e.contains("1 empty") && e.contains("0 non-UTF-8"), "{e}");

    // a file where the folder should be
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    let e = load_imdb_split(&file, "train").unwrap_err().to_string();
    assert!(e.contains("is not a directory"), "{e}");
}

#[test]
fn html_breaks_become_spaces_in_any_spelling() {
    assert_eq!(
        strip_html_breaks("a<br />b<BR>c<br/>d<Br  / >e<bra>f<b>g<br"),
        "a b c d e<bra>f<b>g<br"
    );
    assert_eq!(strip_html_breaks("né<br />été"), "né été");
    assert_eq!(strip_html_breaks(""), "");
}

#[test]
fn text_csv_handles_quotes_string_labels_and_breaks() {
    let src = "id,text,label\n1,\"Fun, fast, loud\",pos\n2,\"two\nlines<br />here\",neg\n\
               3,\"say \"\"hi\"\"\",pos\n";
    let t = parse_text_csv(src, "t.csv", "text", "label").unwrap();
    assert_eq!(
        t.texts,
        vec!["Fun, fast, loud", "two\nlines here", "say \"hi\""]
    );
    assert_eq!(t.class_names, vec!["neg", "pos"]);
    assert_eq!(t.y, vec![1, 0, 1]);

    // integer labels order numerically
    let t = parse_text_csv("body,stars\na,10\nb,2\nc,2\n", "t.csv", "body", "stars").unwrap();
    assert_eq!(t.class_names, vec!["2", "10"]);
    assert_eq!(t.y, vec![1, 0, 0]);
}

#[test]
fn text_csv_errors_name_the_file_and_line() {
    // the bad row starts on line 4: the quoted text before it spans two lines
    let e = parse_text_csv(
        "text,label\n\"x\ny\",pos\nb,neg,extra\n",
        "t.csv",
        "text",
        "label",
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("t.csv:4: 3 fields, the header has 2"), "{e}");
    assert!(e.contains("quote"), "{e}");

    let e = parse_text_csv("review,label\na,pos\n", "t.csv", "text", "label")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("t.csv:1: no column named `text`"), "{e}");
    assert!(
        e.contains("data.text_column") && e.contains("review, label"),
        "{e}"
    );

    let e = parse_text_csv("text,label\na,pos\nb,\n", "t.csv", "text", "label")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("t.csv:3: column `label` is empty"), "{e}");

    let e = parse_text_csv("text,label\na,pos\nb,pos\n", "t.csv", "text", "label")
        .unwrap_err()
        .to_string();
    assert!(e.contains("single class (`pos`)"), "{e}");
}

#[test]
fn text_csv_source_splits_like_movie_reviews() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reviews.csv");
    let mut src = String::from("text,label\n");
    for i in 0..10 {
        let (t, l) = if i % 2 == 0 {
            ("\"a good, fun film<br />good\"", "pos")
        } else {
            ("a bad dull film", "neg")
        };
        src.push_str(&format!("{t},{l}\n"));
    }
    fs::write(&path, src).unwrap();
    let cfg = DataConfig {
        source: DataSource::TextCsv,
        path: Some(path.clone()),
        min_count: 1,
        eval_fraction: 0.2,
        ..DataConfig::default()
    };
    let s = data::load(&cfg, 3).unwrap();
    assert_eq!((s.train.len(), s.eval.len()), (8, 2));
    assert_eq!(s.train.class_names, vec!["neg", "pos"]);
    // a, bad, dull, film, fun, good: "film" in every row, "good" twice in each pos row
    assert_eq!(s.train.features, 6);
    assert_eq!(s.summary.skipped, None);

    // a file that is not UTF-8 names its line
    fs::write(&path, b"text,label\nok,pos\n\xff,neg\n").unwrap();
    let e = data::load(&cfg, 3).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:3:", path.display())), "{e}");
    assert!(e.contains("UTF-8"), "{e}");
}

#[test]
fn tokenizer_edge_cases() {
    assert!(tokenize("").is_empty());
    assert!(tokenize(" \t\n ").is_empty());
    assert!(tokenize("'' -- !!").is_empty());
    assert_eq!(
        tokenize("Rock'n'roll ISN'T 'it' o'"),
        vec!["rock'n'roll", "isn't", "it", "o"]
    );
    assert_eq!(
        tokenize("1990s 3.5/10 #1 x2"),
        vec!["1990s", "3", "5", "10", "1", "x2"]
    );
    assert_eq!(
        tokenize("Café ÉLAN naïve Straße 日本語"),
        vec!["café", "élan", "naïve", "straße", "日本語"]
    );
    // a typographic apostrophe is not an apostrophe to the tokenizer: it splits the word
    assert_eq!(tokenize("don\u{2019}t"), vec!["don", "t"]);
    assert_eq!(tokenize("snake_case"), vec!["snake", "case"]);
}

fn docs(texts: &[&str]) -> Vec<Vec<String>> {
    texts.iter().map(|s| tokenize(s)).collect()
}

#[test]
fn vocabulary_is_count_then_word_and_independent_of_document_order() {
    let d = docs(&["b a c", "c b a", "d"]);
    let v = Vocabulary::build_from(&d, 10, 1);
    assert_eq!(v.words, vec!["a", "b", "c", "d"]); // a, b, c tie at 2: by word
    let mut r = d.clone();
    r.reverse();
    assert_eq!(Vocabulary::build_from(&r, 10, 1), v);
    assert_eq!(Vocabulary::build_from(&d, 2, 1).words, vec!["a", "b"]);
    assert_eq!(Vocabulary::build_from(&d, 10, 2).words, vec!["a", "b", "c"]);
    assert_eq!(Vocabulary::build_from(&d, 10, 0), v); // min_count 0 counts as 1
    assert!(Vocabulary::build_from(&d, 10, 3).is_empty());
    let refs: Vec<&[String]> = d.iter().map(|x| x.as_slice()).collect();
    assert_eq!(Vocabulary::build(&refs, 10, 1), v);

    let d = docs(&["z z z y y x"]);
    assert_eq!(Vocabulary::build_from(&d, 10, 1).words, vec!["z", "y", "x"]);
}

#[test]
fn token_ids_pad_at_the_end_mark_unknown_words_and_truncate() {
    let v = Vocabulary::build_from(docs(&["a a b"]), 10, 1);
    assert_eq!(v.words, vec!["a", "b"]);
    assert_eq!(v.token_vocab_size(), 4);
    let doc = |s: &str| tokenize(s);
    assert_eq!(v.token_ids(&doc("a zz b"), 5), vec![2, 1, 3, 0, 0]);
    assert_eq!(v.token_ids(&doc("b a a b"), 2), vec![3, 2]);
    assert_eq!(v.token_ids(&doc("b a"), 2), vec![3, 2]);
    // an empty text is one unknown token, never all padding
    assert_eq!(v.token_ids(&doc(""), 3), vec![OOV_ID, PAD_ID, PAD_ID]);
    assert_eq!(v.token_ids(&doc("..."), 1), vec![OOV_ID]);
    assert_eq!(v.encode_tokens(&doc("a q"), 3), vec![2.0, 1.0, 0.0]);
}

#[test]
fn movie_reviews_as_tokens_through_load() {
    let cfg = DataConfig {
        source: DataSource::MovieReviews,
        encoding: TextEncoding::Tokens,
        max_len: 16,
        max_vocab: 200,
        limit: 2000,
        eval_fraction: 0.2,
        standardize: true,
        ..DataConfig::default()
    };
    let s = data::load(&cfg, 0).unwrap();
    assert_eq!((s.train.len(), s.eval.len()), (1600, 400));
    assert_eq!(s.train.features, 16);
    assert_eq!(s.summary.features, 16);
    assert_eq!(s.summary.vocab_size, Some(202));
    let mut truncated = 0;
    for ds in [&s.train, &s.eval] {
        for i in 0..ds.len() {
            let row = ds.row(i);
            // whole ids below vocab_size: standardisation never touches them
            assert!(row
                .iter()
                .all(|&v| v.fract() == 0.0 && (0.0..202.0).contains(&v)));
            assert_ne!(row[0], 0.0, "row {i} starts with padding");
            // padding only at the end
            let first_pad = row.iter().position(|&v| v == 0.0).unwrap_or(row.len());
            assert!(row[first_pad..].iter().all(|&v| v == 0.0), "{row:?}");
            truncated += usize::from(first_pad == row.len());
        }
    }
    assert!(truncated > 0, "some sentences are longer than 16 tokens");
    // the same words get the same ids as the tf-idf vocabulary's columns + 2
    let tf = data::load(
        &DataConfig {
            encoding: TextEncoding::Tfidf,
            ..cfg.clone()
        },
        0,
    )
    .unwrap();
    assert_eq!(tf.train.features, 200);
    assert_eq!(tf.summary.vocab_size, None);
    assert_eq!(tf.train.y, s.train.y);
}

#[test]
fn text_config_keys_are_checked() {
    let parse = |data: &str| Config::parse(&format!("name = \"t\"\n[data]\n{data}\n"), "t.toml");
    // token ids are for the transformer (config.rs checks the pairing)
    let c = parse(
        "source = \"movie_reviews\"\nencoding = \"tokens\"\nmax_len = 32\n\
         [model]\nkind = \"transformer\"\nwidth = 8",
    )
    .unwrap();
    assert_eq!(
        (c.data.encoding, c.data.max_len),
        (TextEncoding::Tokens, 32)
    );
    let d = DataConfig::default();
    assert_eq!(
        (d.encoding, d.max_len, d.text_column.as_str()),
        (TextEncoding::Tfidf, 64, "text")
    );

    let e = parse("source = \"teacher\"\nencoding = \"tokens\"")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("t.toml:4: `data.encoding`"), "{e}");
    assert!(e.contains("movie_reviews, imdb or text_csv"), "{e}");
    let e = parse("source = \"imdb\"").unwrap_err().to_string();
    assert!(e.contains("data.path") && e.contains("aclImdb"), "{e}");
    let e = parse("source = \"text_csv\"\npath = \"x.csv\"\nencoding = \"tokens\"\nmax_len = 0")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("data.max_len") && e.contains("at least 1"),
        "{e}"
    );
    let e = parse("source = \"text_csv\"\npath = \"x.csv\"\ntext_column = \"label\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("data.text_column") && e.contains("same column"),
        "{e}"
    );
    let e = parse("encoding = \"words\"").unwrap_err().to_string();
    assert!(e.contains("tfidf") && e.contains("tokens"), "{e}");
}

#[test]
fn data_summaries_without_the_new_fields_still_load() {
    let old = "source = \"movie_reviews\"\nfeatures = 3\nclasses = 2\n\
               class_names = [\"negative\", \"positive\"]\ntrain_samples = 8\n\
               eval_samples = 2\ntrain_class_counts = [4, 4]\neval_is_train = false\n";
    let s: DataSummary = toml::from_str(old).unwrap();
    assert_eq!((s.vocab_size, s.skipped), (None, None));
    // and the new ones round-trip, written only when set
    assert!(!toml::to_string(&s).unwrap().contains("skipped"));
    let new = DataSummary {
        source: DataSource::Imdb,
        vocab_size: Some(1002),
        skipped: Some(SkipCounts {
            non_utf8: 1,
            empty: 2,
            malformed_name: 3,
        }),
        ..s
    };
    let text = toml::to_string(&new).unwrap();
    assert_eq!(toml::from_str::<DataSummary>(&text).unwrap(), new);
}

/// The real dataset, when there is a copy: `RESPRUNE_ACLIMDB=/path/to/aclImdb cargo test
/// --release --test text_data -- --ignored`.
#[test]
#[ignore = "needs the aclImdb folder in RESPRUNE_ACLIMDB"]
fn the_real_aclimdb_has_25000_reviews_per_split() {
    let Some(root) = std::env::var_os("RESPRUNE_ACLIMDB") else {
        eprintln!("RESPRUNE_ACLIMDB is not set; nothing to check");
        return;
    };
    let cfg = DataConfig {
        source: DataSource::Imdb,
        path: Some(root.into()),
        encoding: TextEncoding::Tokens,
        max_len: 256,
        max_vocab: 10_000,
        ..DataConfig::default()
    };
    let t = std::time::Instant::now();
    let s = data::load(&cfg, 0).unwrap();
    eprintln!("loaded in {:.1?}: {:?}", t.elapsed(), s.summary);
    assert_eq!((s.train.len(), s.eval.len()), (25_000, 25_000));
    assert_eq!(s.summary.train_class_counts, vec![12_500, 12_500]);
    assert_eq!(s.summary.vocab_size, Some(10_002));
}
