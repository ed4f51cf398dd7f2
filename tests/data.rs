//! Dataset counts, splits and parsing errors.

use resprune::config::{DataConfig, DataSource};
use resprune::data::{self, tokenize, TfIdf, Vocabulary};

#[test]
fn breast_cancer_is_569_by_30_with_212_malignant() {
    let d = data::breast_cancer().unwrap();
    assert_eq!((d.len(), d.features, d.classes), (569, 30, 2));
    assert_eq!(d.class_counts(), vec![212, 357]);
    assert_eq!(d.class_names, vec!["malignant", "benign"]);
    assert_eq!(d.x[0], 17.99);
}

#[test]
fn movie_reviews_keep_10568_rated_sentences() {
    let r = data::movie_reviews().unwrap();
    assert_eq!(r.len(), 10_568);
    assert_eq!(r.iter().filter(|x| x.label == 1).count(), 5_242);
    assert_eq!(r.iter().filter(|x| x.label == 0).count(), 5_326);
    assert!(r.iter().all(|x| (x.rating > 0.0) == (x.label == 1)));
    assert!(!r[0].text.ends_with('\r'));
}

#[test]
fn movie_reviews_become_tfidf_rows_of_unit_norm() {
    let cfg = DataConfig {
        source: DataSource::MovieReviews,
        max_vocab: 300,
        min_count: 2,
        eval_fraction: 0.2,
        ..DataConfig::default()
    };
    let s = data::load(&cfg, 0).unwrap();
    assert_eq!(s.train.features, 300);
    assert_eq!(s.train.len() + s.eval.len(), 10_568);
    assert_eq!(s.eval.len(), (10_568f64 * 0.2).floor() as usize);
    for i in 0..20 {
        let n: f64 = s.train.row(i).iter().map(|v| v * v).sum();
        // a sentence with no in-vocabulary word is the zero row
        assert!((n - 1.0).abs() < 1e-12 || n == 0.0, "row {i} norm² {n}");
    }
}

#[test]
fn synthetic_split_counts_and_determinism() {
    let cfg = DataConfig {
        samples: 50,
        features: 4,
        classes: 3,
        eval_fraction: 0.2,
        ..DataConfig::default()
    };
    let a = data::load(&cfg, 7).unwrap();
    let b = data::load(&cfg, 7).unwrap();
    let c = data::load(&cfg, 8).unwrap();
    assert_eq!((a.train.len(), a.eval.len()), (40, 10));
    assert_eq!(a.train, b.train);
    assert_ne!(a.train.x, c.train.x);
    assert!(a.train.y.iter().all(|&y| y < 3));
}

#[test]
fn eval_fraction_zero_evaluates_on_the_training_set() {
    let cfg = DataConfig {
        eval_fraction: 0.0,
        ..DataConfig::default()
    };
    let s = data::load(&cfg, 0).unwrap();
    assert!(s.eval_is_train && s.summary.eval_is_train);
    assert_eq!(s.train, s.eval);
    assert_eq!(s.train.len(), 100);
}

#[test]
fn teacher_labels_are_a_function_of_the_inputs() {
    let cfg = DataConfig {
        source: DataSource::Teacher,
        samples: 400,
        eval_fraction: 0.0,
        ..DataConfig::default()
    };
    let s = data::load(&cfg, 1).unwrap();
    let counts = s.train.class_counts();
    // both classes occur: the random teacher is not constant
    assert!(counts.iter().all(|&c| c > 40), "{counts:?}");
}

#[test]
fn standardised_tables_have_zero_mean_unit_sd_on_the_train_split() {
    let cfg = DataConfig {
        source: DataSource::BreastCancer,
        eval_fraction: 0.25,
        ..DataConfig::default()
    };
    let s = data::load(&cfg, 0).unwrap();
    let n = s.train.len() as f64;
    for j in [0, 13, 29] {
        let col: Vec<f64> = (0..s.train.len()).map(|i| s.train.row(i)[j]).collect();
        let mean = col.iter().sum::<f64>() / n;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12, "col {j}");
    }
}

#[test]
fn csv_labels_by_name_and_errors_by_line() {
    let src = "a,kind,b\n1,x,2\n3,y,4\n5,x,6\n";
    let d = data::parse_csv(src, "t.csv", "kind").unwrap();
    assert_eq!(d.features, 2);
    assert_eq!(d.x, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(d.y, vec![0, 1, 0]);
    assert_eq!(d.class_names, vec!["x", "y"]);

    let e = data::parse_csv("a,kind\n1,x\nzz,y\n", "t.csv", "kind").unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.csv:3: column 1 (`a`): `zz` is not a number"
    );
    // numbers Rust would read but no model can use, and empty labels, name row and column
    for (cell, why) in [
        ("NaN", "not a finite"),
        ("inf", "not a finite"),
        ("1e400", "not a finite"),
    ] {
        let e = data::parse_csv(&format!("a,kind,b\n1,x,2\n3,y,{cell}\n"), "t.csv", "kind")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.csv:3: column 3 (`b`): "), "{e}");
        assert!(e.contains(why) && e.contains(cell), "{e}");
    }
    let e = data::parse_csv("a,kind\n1,x\n2,\n", "t.csv", "kind").unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.csv:3: column 2 (`kind`): the label is empty; every row needs a class"
    );
    let e = data::parse_csv(src, "t.csv", "label").unwrap_err();
    assert!(e.to_string().contains("no column named `label`"), "{e}");
    assert!(e.to_string().contains("a, kind, b"), "{e}");
}

#[test]
fn tokenizer_keeps_inner_apostrophes() {
    assert_eq!(
        tokenize("Don't stop -- it's ''The Rock''s'' BEST, 21st!"),
        vec!["don't", "stop", "it's", "the", "rock", "s", "best", "21st"]
    );
    assert_eq!(tokenize("'quoted' words"), vec!["quoted", "words"]);
    assert!(tokenize("... !!").is_empty());
}

#[test]
fn vocabulary_orders_by_count_then_word() {
    let docs: Vec<Vec<String>> = ["b a c a", "b a d", "e"]
        .iter()
        .map(|s| tokenize(s))
        .collect();
    let refs: Vec<&[String]> = docs.iter().map(|d| d.as_slice()).collect();
    let v = Vocabulary::build(&refs, 10, 1);
    assert_eq!(v.words, vec!["a", "b", "c", "d", "e"]);
    let v = Vocabulary::build(&refs, 10, 2);
    assert_eq!(v.words, vec!["a", "b"]);
    let tf = TfIdf::fit(&v, &refs);
    // idf = ln((1 + 3) / (1 + df)) + 1; a in 2 docs, b in 2 docs
    assert!((tf.idf[0] - ((4.0f64 / 3.0).ln() + 1.0)).abs() < 1e-15);
}

#[test]
fn an_eval_fraction_that_leaves_no_evaluation_example_is_refused() {
    let cfg = resprune::config::DataConfig {
        source: resprune::config::DataSource::Synthetic,
        samples: 10,
        eval_fraction: 0.01,
        ..Default::default()
    };
    let e = data::load(&cfg, 0).unwrap_err().to_string();
    assert!(
        e.contains("data.eval_fraction = 0.01") && e.contains("no evaluation example"),
        "{e}"
    );
}
