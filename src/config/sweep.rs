//! `[sweep]`: keys of the config mapped to lists of values; each combination is a *point*, a
//! full experiment of its own.
//!
//! ```toml
//! [sweep]
//! "model.depth" = [1, 2, 4, 8, 16]
//! "data.source" = ["synthetic", "breast_cancer"]
//! mode = "grid"        # every combination (default); "zip" pairs the lists
//! ```
//!
//! A point is made on the TOML value tree of the file (the swept key set to the point's value,
//! a table value merged into the table), then read and validated like a file
//! ([`super::Source`]), so a bad value gets the message a file would, naming the point.
//! `model.alpha_sweep` (alpha points inside one record) predates this section and still
//! works; `"model.alpha" = [0.0, 0.5, 1.0]` here gives one record per alpha, each with its
//! own plain model, replicates and verdicts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{bad, ConfigError};

/// How the lists of a sweep combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SweepMode {
    /// Every combination, the first axis outermost.
    #[default]
    Grid,
    /// The i-th value of every list together (the lists have one length).
    Zip,
}

impl SweepMode {
    pub fn name(self) -> &'static str {
        match self {
            SweepMode::Grid => "grid",
            SweepMode::Zip => "zip",
        }
    }
}

/// One swept key and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Dotted key path, e.g. `model.depth`.
    pub key: String,
    pub values: Vec<toml::Value>,
}

/// The `[sweep]` section: empty (no axes) for a config of one experiment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SweepConfig {
    pub mode: SweepMode,
    /// In the order the file writes them (see [`SweepConfig::order_as_in`]).
    pub axes: Vec<Axis>,
}

/// One combination of the axes' values.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Position in [`SweepConfig::points`] (shards take every N-th from here).
    pub index: usize,
    /// `model.depth=4` or `data.source=synthetic,model.depth=4`: the record's file stem.
    pub name: String,
    /// `(key, value)` per axis, in axis order.
    pub values: Vec<(String, toml::Value)>,
}

/// Keys a sweep may not set: the sweep itself, and the name its folder and records carry.
const UNSWEPT: &[&str] = &["sweep", "name"];

impl SweepConfig {
    pub fn is_empty(&self) -> bool {
        self.axes.is_empty()
    }

    /// Checks the section alone: non-empty lists, one length each in zip mode, no key twice,
    /// no key inside another swept key, no key that a sweep may not set.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for a in &self.axes {
            let key = format!("sweep.{}", a.key);
            if a.key.is_empty() || a.key.split('.').any(str::is_empty) {
                return bad(&key, "is not a key path (write e.g. \"model.depth\")");
            }
            let first = a.key.split('.').next().unwrap_or("");
            if UNSWEPT.contains(&first) {
                return bad(
                    &key,
                    format!("`{}` cannot be swept (it names the sweep)", a.key),
                );
            }
            if a.values.is_empty() {
                return bad(&key, "is an empty list: give at least one value");
            }
        }
        for (i, a) in self.axes.iter().enumerate() {
            for b in &self.axes[i + 1..] {
                let nested = |x: &str, y: &str| x == y || y.starts_with(&format!("{x}."));
                if nested(&a.key, &b.key) || nested(&b.key, &a.key) {
                    return bad(
                        &format!("sweep.{}", b.key),
                        format!("overlaps the swept key `{}`: sweep each key once", a.key),
                    );
                }
            }
        }
        if self.mode == SweepMode::Zip {
            if let Some(first) = self.axes.first() {
                let n = first.values.len();
                if let Some(b) = self.axes.iter().find(|b| b.values.len() != n) {
                    return bad(
                        &format!("sweep.{}", b.key),
                        format!(
                            "has {} values but `{}` has {n}: mode = \"zip\" pairs lists of \
                             one length (or use mode = \"grid\")",
                            b.values.len(),
                            first.key
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// Every point, in order: the grid's product with the first axis outermost, or the
    /// zipped lists. One point (no values) when there are no axes.
    pub fn points(&self) -> Vec<Point> {
        let combos: Vec<Vec<usize>> = match self.mode {
            _ if self.axes.is_empty() => vec![Vec::new()],
            SweepMode::Zip => {
                let n = self.axes.iter().map(|a| a.values.len()).min().unwrap_or(0);
                (0..n).map(|i| vec![i; self.axes.len()]).collect()
            }
            SweepMode::Grid => {
                let mut out = vec![Vec::new()];
                for a in &self.axes {
                    out = out
                        .into_iter()
                        .flat_map(|c: Vec<usize>| {
                            (0..a.values.len()).map(move |i| {
                                let mut c = c.clone();
                                c.push(i);
                                c
                            })
                        })
                        .collect();
                }
                out
            }
        };
        combos
            .into_iter()
            .enumerate()
            .map(|(index, c)| {
                let values: Vec<(String, toml::Value)> = self
                    .axes
                    .iter()
                    .zip(&c)
                    .map(|(a, &i)| (a.key.clone(), a.values[i].clone()))
                    .collect();
                Point {
                    index,
                    name: point_name(&values),
                    values,
                }
            })
            .collect()
    }

    /// Puts the axes in the order `src` writes them (serde hands them over sorted).
    pub fn order_as_in(&mut self, src: &str) {
        self.axes
            .sort_by_key(|a| SweepConfig::line_in(src, &a.key).unwrap_or(usize::MAX));
    }

    /// The line of the axis `key` in `src` (`"model.depth" = ..`, `model.depth = ..` or a
    /// `[sweep.model]` table), if the file writes it.
    pub fn line_in(src: &str, key: &str) -> Option<usize> {
        let dotted: Vec<&str> = std::iter::once("sweep").chain(key.split('.')).collect();
        crate::tomlpos::line_of(src, &["sweep", key])
            .or_else(|| crate::tomlpos::line_of(src, &dotted))
    }
}

/// A value as it appears in a file name: numbers as written (`4`, `0.5`), strings bare, lists
/// joined with `+`, tables as `key-value` leaves joined with `+`.
pub fn value_label(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(items) => items.iter().map(value_label).collect::<Vec<_>>().join("+"),
        toml::Value::Table(t) => t
            .iter()
            .map(|(k, v)| format!("{k}-{}", value_label(v)))
            .collect::<Vec<_>>()
            .join("+"),
    }
}

/// `key=value,key=value`, made safe for a file name (no `/`, no spaces, no control characters).
fn point_name(values: &[(String, toml::Value)]) -> String {
    if values.is_empty() {
        return "point".into();
    }
    let raw = values
        .iter()
        .map(|(k, v)| format!("{k}={}", value_label(v)))
        .collect::<Vec<_>>()
        .join(",");
    raw.chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_whitespace() || c.is_control() || c == '"' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

impl Serialize for SweepConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        if self.mode != SweepMode::Grid {
            m.serialize_entry("mode", &self.mode)?;
        }
        for a in &self.axes {
            m.serialize_entry(&a.key, &a.values)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for SweepConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let table = BTreeMap::<String, toml::Value>::deserialize(d)?;
        let mut out = SweepConfig::default();
        fn walk<E: Error>(
            prefix: &str,
            table: impl IntoIterator<Item = (String, toml::Value)>,
            out: &mut SweepConfig,
        ) -> Result<(), E> {
            for (k, v) in table {
                if prefix.is_empty() && k == "mode" {
                    out.mode = SweepMode::deserialize(v).map_err(|e| {
                        E::custom(format!(
                            "sweep.mode: {}",
                            e.to_string().trim().trim_end_matches('\n')
                        ))
                    })?;
                    continue;
                }
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                match v {
                    toml::Value::Array(values) => out.axes.push(Axis { key, values }),
                    // `model.depth = [..]` unquoted, or a `[sweep.model]` table
                    toml::Value::Table(t) => walk::<E>(&key, t, out)?,
                    other => {
                        return Err(E::custom(format!(
                            "`sweep.{key}` is {}, must be a list of values, e.g. [1, 2, 4]",
                            other.type_str()
                        )))
                    }
                }
            }
            Ok(())
        }
        walk::<D::Error>("", table, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> SweepConfig {
        #[derive(Deserialize)]
        struct S {
            sweep: SweepConfig,
        }
        let mut s = toml::from_str::<S>(src).unwrap().sweep;
        s.order_as_in(src);
        s
    }

    fn key(s: &SweepConfig) -> Option<String> {
        s.validate().err().and_then(|e| e.key().map(str::to_string))
    }

    #[test]
    fn the_default_is_no_sweep_with_one_point() {
        let s = SweepConfig::default();
        assert!(s.is_empty() && s.validate().is_ok());
        assert_eq!(s.mode, SweepMode::Grid);
        assert_eq!(s.points().len(), 1);
    }

    #[test]
    fn a_grid_is_the_product_in_file_order_and_zip_pairs() {
        let src = "[sweep]\n\"model.width\" = [8, 16]\n\"model.depth\" = [1, 2, 4]\n";
        let s = parse(src);
        assert_eq!(s.axes[0].key, "model.width");
        let p = s.points();
        assert_eq!(p.len(), 6);
        assert_eq!(p[0].name, "model.width=8,model.depth=1");
        assert_eq!(p[1].name, "model.width=8,model.depth=2");
        assert_eq!(p[5].name, "model.width=16,model.depth=4");
        assert_eq!(p[4].index, 4);
        let z =
            parse("[sweep]\nmode = \"zip\"\nmodel.alpha = [0.5, 1.0]\ntrain.lr = [0.1, 0.01]\n");
        assert_eq!(z.mode, SweepMode::Zip);
        let p = z.points();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].name, "model.alpha=1,train.lr=0.01");
    }

    #[test]
    fn nested_tables_and_table_values_are_keys_and_labels() {
        let s = parse("[sweep.model]\ndepth = [1]\n[sweep.data]\nsource = [\"breast_cancer\"]\n");
        let keys: Vec<&str> = s.axes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["model.depth", "data.source"]);
        let s = parse("[sweep]\ndata = [{ source = \"teacher\", samples = 50 }]\n");
        assert_eq!(s.points()[0].name, "data=samples-50+source-teacher");
        assert_eq!(value_label(&toml::Value::String("a b/c".into())), "a b/c");
        let odd = parse("[sweep]\n\"data.path\" = [\"a b/c.csv\"]\n");
        assert_eq!(odd.points()[0].name, "data.path=a_b_c.csv");
    }

    #[test]
    fn each_rule_names_the_axis() {
        let s = parse("[sweep]\n\"model.depth\" = []\n");
        assert_eq!(key(&s).as_deref(), Some("sweep.model.depth"));
        let s = parse("[sweep]\n\"name\" = [\"a\"]\n");
        assert_eq!(key(&s).as_deref(), Some("sweep.name"));
        let s = parse("[sweep]\n\"model\" = [{ depth = 2 }]\n\"model.depth\" = [1]\n");
        assert!(key(&s).is_some_and(|k| k.starts_with("sweep.model")));
        let s = parse("[sweep]\nmode = \"zip\"\n\"model.depth\" = [1, 2]\n\"model.width\" = [3]\n");
        let e = s.validate().unwrap_err();
        assert_eq!(e.key(), Some("sweep.model.width"));
        assert!(
            e.to_string()
                .contains("has 1 values but `model.depth` has 2"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_section_is_a_located_error() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct S {
            sweep: SweepConfig,
        }
        let e = toml::from_str::<S>("[sweep]\n\"model.depth\" = 4\n").unwrap_err();
        assert!(e.message().contains("must be a list of values"), "{e}");
        let e = toml::from_str::<S>("[sweep]\nmode = \"cross\"\n").unwrap_err();
        assert!(e.message().contains("sweep.mode"), "{e}");
    }

    #[test]
    fn it_serialises_back_to_what_it_read() {
        let src = "[sweep]\nmode = \"zip\"\n\"model.depth\" = [1, 2]\n\"train.lr\" = [0.1, 0.2]\n";
        let s = parse(src);
        #[derive(Serialize)]
        struct S<'a> {
            sweep: &'a SweepConfig,
        }
        let text = toml::to_string(&S { sweep: &s }).unwrap();
        assert_eq!(parse(&text), s);
    }
}
