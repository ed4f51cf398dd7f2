//! A config file with values from elsewhere: `--set KEY=VALUE` overrides and sweep points.
//!
//! Both are applied to the file's TOML value tree before anything is deserialised (a key set
//! to a value; a table value merged into the table), and the tree is then read and validated
//! exactly as a file is. So a bad `--set model.width=abc` or a bad sweep point gets the
//! message the same value in the file would get, naming the key and what is allowed, and
//! saying where the value came from.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::ConfigError;
use super::sweep::{Point, SweepConfig};
use super::Config;
use crate::tomlpos;

/// One `--set KEY=VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Dotted key path, e.g. `model.width`; `sweep.<key>` sets a sweep axis.
    pub key: String,
    pub value: toml::Value,
    /// The argument as given, for messages.
    pub raw: String,
}

impl Override {
    /// Reads `KEY=VALUE`: the value as TOML (`4`, `0.5`, `true`, `[0.1, 0.2]`,
    /// `{ source = "csv" }`, `"text"`), or else as a bare string (`breast_cancer`).
    pub fn parse(arg: &str) -> Result<Override, ConfigError> {
        let origin = format!("--set {arg}");
        let Some((key, value)) = arg.split_once('=') else {
            return Err(ConfigError::invalid(
                arg.trim(),
                "needs a value: write KEY=VALUE, e.g. --set model.width=32",
            )
            .from_origin(origin));
        };
        let key = key.trim();
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if key.is_empty() || !key.chars().all(valid) || key.split('.').any(str::is_empty) {
            return Err(ConfigError::invalid(
                key,
                "is not a key path: write e.g. model.width or train.lr",
            )
            .from_origin(origin));
        }
        let value = value.trim();
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        Ok(Override {
            key: key.to_string(),
            value: parsed,
            raw: arg.to_string(),
        })
    }

    /// Every argument of a repeated `--set`.
    pub fn parse_all<S: AsRef<str>>(args: &[S]) -> Result<Vec<Override>, ConfigError> {
        args.iter().map(|a| Override::parse(a.as_ref())).collect()
    }

    /// The path in the value tree: `sweep.<key>` is the one key `<key>` under `[sweep]`.
    fn path(&self) -> Vec<&str> {
        match self.key.strip_prefix("sweep.") {
            Some(axis) => vec!["sweep", axis],
            None => self.key.split('.').collect(),
        }
    }
}

/// A config file's text, read once; every resolved config of it (with overrides, or one sweep
/// point) is made from this text.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file as the caller named it (in messages).
    pub file: String,
    /// Its folder: relative `data.path`s are taken from here.
    pub dir: Option<PathBuf>,
    pub text: String,
}

/// Where a value in a resolved config came from, when not from the file's own text.
enum From<'a> {
    Set(&'a Override),
    Point(&'a Point, &'a str),
}

impl Source {
    pub fn read(path: &Path) -> Result<Source, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Source {
            file: path.display().to_string(),
            dir: path.parent().map(Path::to_path_buf),
            text,
        })
    }

    /// A text not read from a file (tests, the notebook); `file` names it in messages.
    pub fn from_text(text: &str, file: &str) -> Source {
        Source {
            file: file.to_string(),
            dir: None,
            text: text.to_string(),
        }
    }

    /// The config with `sets` applied, validated (its `[sweep]`, if any, kept and checked).
    /// With no sets this is [`Config::load`].
    pub fn resolve(&self, sets: &[Override]) -> Result<Config, ConfigError> {
        self.resolve_with(sets, None, true)
    }

    /// The sweep (after `sets`) and every point's resolved, validated config, in point order.
    /// The first bad point is the error, naming the point and the key. A config without a
    /// `[sweep]` gives one point.
    pub fn points(
        &self,
        sets: &[Override],
    ) -> Result<(SweepConfig, Vec<(Point, Config)>), ConfigError> {
        let base = self.resolve_with(sets, None, false)?;
        let sweep = base.sweep.clone();
        sweep.validate().map_err(|e| self.locate(e, None, sets))?;
        for s in sets {
            if let Some(a) = sweep.axes.iter().find(|a| overlaps(&a.key, &s.key)) {
                return Err(ConfigError::invalid(
                    &s.key,
                    format!(
                        "is swept by [sweep] (`{}`): change its list there, or replace the list \
                         with --set 'sweep.{}=[...]'",
                        a.key, a.key
                    ),
                )
                .from_origin(format!("--set {}", s.raw)));
            }
        }
        let points = sweep.points();
        let mut names = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(points.len());
        for p in points {
            if let Some(other) = names.insert(p.name.clone(), p.index) {
                return Err(ConfigError::invalid(
                    "sweep",
                    format!(
                        "points {other} and {} both make the file name `{}`: give distinct values",
                        p.index, p.name
                    ),
                ));
            }
            let cfg = self.resolve_with(sets, Some(&p), true)?;
            out.push((p, cfg));
        }
        Ok((sweep, out))
    }

    fn resolve_with(
        &self,
        sets: &[Override],
        point: Option<&Point>,
        validate: bool,
    ) -> Result<Config, ConfigError> {
        if sets.is_empty() && point.is_none() && validate {
            let cfg = Config::parse(&self.text, &self.file)?;
            return Ok(self.relative_paths(cfg, sets));
        }
        // a file that is not TOML at all: the file's own error
        let Ok(mut table) = self.text.parse::<toml::Table>() else {
            return Config::parse(&self.text, &self.file);
        };
        for s in sets {
            set(&mut table, &s.path(), s.value.clone()).map_err(|(key, message)| {
                ConfigError::invalid(&key, message).from_origin(format!("--set {}", s.raw))
            })?;
        }
        if let Some(p) = point {
            table.remove("sweep");
            for (k, v) in &p.values {
                let path: Vec<&str> = k.split('.').collect();
                set(&mut table, &path, v.clone()).map_err(|(key, message)| {
                    self.locate(ConfigError::invalid(&key, message), point, sets)
                })?;
            }
        }
        let text = toml::to_string(&table).map_err(|e| {
            ConfigError::invalid("(top level)", e.to_string()).from_origin(self.file.clone())
        })?;
        let mut cfg: Config = toml::from_str(&text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let key = tomlpos::path_at(&text, offset).unwrap_or_else(|| "(top level)".into());
            self.locate(ConfigError::invalid(&key, e.message().trim()), point, sets)
        })?;
        cfg.sweep.order_as_in(&self.text);
        if validate {
            cfg.validate().map_err(|e| self.locate(e, point, sets))?;
        }
        Ok(self.relative_paths(cfg, sets))
    }

    /// A relative `data.path` from the file is taken from the file's folder (one from `--set`
    /// from the working folder).
    fn relative_paths(&self, mut cfg: Config, sets: &[Override]) -> Config {
        let from_set = sets.iter().any(|s| overlaps(&s.key, "data.path"));
        if let (Some(p), Some(dir), false) = (&cfg.data.path, &self.dir, from_set) {
            if p.is_relative() {
                cfg.data.path = Some(dir.join(p));
            }
        }
        cfg
    }

    /// Places an unlocated error: at the value's origin when a point or a `--set` gave the key
    /// (the last one that did), else at the key's line in the file; inside a point, the
    /// point is named either way.
    fn locate(&self, e: ConfigError, point: Option<&Point>, sets: &[Override]) -> ConfigError {
        let ConfigError::Invalid { key, message, .. } = e else {
            return e;
        };
        let from = point
            .and_then(|p| {
                p.values
                    .iter()
                    .rev()
                    .find(|(k, _)| overlaps(k, &key))
                    .map(|(k, _)| From::Point(p, k))
            })
            .or_else(|| {
                sets.iter()
                    .rev()
                    .find(|s| overlaps(&s.key, &key))
                    .map(From::Set)
            });
        let point_origin = |p: &Point| format!("sweep point `{}`", p.name);
        match from {
            Some(From::Set(s)) => {
                let e = ConfigError::invalid(&key, message).from_origin(format!("--set {}", s.raw));
                match point {
                    Some(p) => e.from_origin(point_origin(p)),
                    None => e,
                }
            }
            Some(From::Point(p, axis)) => ConfigError::Invalid {
                file: Some(self.file.clone()),
                line: SweepConfig::line_in(&self.text, axis),
                key,
                message,
            }
            .from_origin(point_origin(p)),
            None => {
                let parts: Vec<&str> = key.split('.').collect();
                let e = ConfigError::Invalid {
                    file: Some(self.file.clone()),
                    line: tomlpos::line_of(&self.text, &parts),
                    key,
                    message,
                };
                match point {
                    Some(p) => e.from_origin(point_origin(p)),
                    None => e,
                }
            }
        }
    }
}

/// Whether key paths `a` and `b` are one key or one holds the other.
fn overlaps(a: &str, b: &str) -> bool {
    a == b || b.starts_with(&format!("{a}.")) || a.starts_with(&format!("{b}."))
}

/// Sets `path` in `table` to `value`, making the tables on the way; a table value is merged
/// into a table already there. The error is `(key, message)`.
fn set(table: &mut toml::Table, path: &[&str], value: toml::Value) -> Result<(), (String, String)> {
    let (last, parents) = path.split_last().expect("a key path is not empty");
    let mut t = table;
    for (i, p) in parents.iter().enumerate() {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(inner) => t = inner,
            other => {
                let key = path[..=i].join(".");
                return Err((
                    key,
                    format!(
                        "is {}, not a table: `{}` cannot be set inside it",
                        other.type_str(),
                        path.join(".")
                    ),
                ));
            }
        }
    }
    match (t.get_mut(*last), value) {
        (Some(toml::Value::Table(old)), toml::Value::Table(new)) => merge(old, new),
        (_, v) => {
            t.insert(last.to_string(), v);
        }
    }
    Ok(())
}

fn merge(old: &mut toml::Table, new: toml::Table) {
    for (k, v) in new {
        match (old.get_mut(&k), v) {
            (Some(toml::Value::Table(o)), toml::Value::Table(n)) => merge(o, n),
            (_, v) => {
                old.insert(k, v);
            }
        }
    }
}

impl Config {
    /// Reads a config file with `--set` overrides applied (see [`Source::resolve`]).
    pub fn load_with(path: &Path, sets: &[Override]) -> Result<Config, ConfigError> {
        Source::read(path)?.resolve(sets)
    }

    /// SHA-256 (lower-case hex) of the config as a record stores it: two configs with one
    /// digest run the same experiment.
    pub fn digest(&self) -> String {
        // `auto` runs what it resolves to: a sweep point planned as `auto` is the record of
        // the same point with the products written out (an old transformer point stays done)
        let mut same = self.clone();
        same.hessian.products = match self.hessian.products_for(self.model.kind) {
            super::Products::Exact => super::ProductsChoice::Exact,
            super::Products::FiniteDifferences => super::ProductsChoice::FiniteDifferences,
        };
        let d = Sha256::digest(same.to_toml().as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_(arg: &str) -> Override {
        Override::parse(arg).unwrap()
    }

    const BASE: &str = "name = \"x\"\n[model]\nwidth = 8\n";

    #[test]
    fn auto_products_digest_as_what_they_resolve_to() {
        let with = |products: &str, kind: &str| {
            let src = format!("name = \"x\"\n[model]\nwidth = 8\n{kind}[hessian]\n{products}");
            toml::from_str::<Config>(&src).unwrap().digest()
        };
        let (mlp, tf) = ("", "kind = \"transformer\"\n");
        let auto = "";
        let (fd, exact) = (
            "products = \"finite_differences\"\n",
            "products = \"exact\"\n",
        );
        assert_eq!(with(auto, mlp), with(exact, mlp));
        assert_ne!(with(auto, mlp), with(fd, mlp));
        assert_eq!(with(auto, tf), with(fd, tf));
        assert_ne!(with(fd, mlp), with(exact, mlp));
    }

    #[test]
    fn set_reads_toml_values_or_bare_strings() {
        assert_eq!(set_("model.width=32").value, toml::Value::Integer(32));
        assert_eq!(set_("train.lr = 0.5").value, toml::Value::Float(0.5));
        assert_eq!(
            set_("data.source=breast_cancer").value,
            toml::Value::String("breast_cancer".into())
        );
        assert!(set_("prune.ratios=[0.1, 0.2]").value.is_array());
        assert!(Override::parse("model.width").is_err());
        assert!(Override::parse("model..width=1").is_err());
        assert!(Override::parse("=1").is_err());
    }

    #[test]
    fn overrides_reach_every_section_and_merge_tables() {
        let src = Source::from_text(BASE, "x.toml");
        let cfg = src
            .resolve(&[
                set_("model.width=16"),
                set_("seed=3"),
                set_("train.epochs=2"),
                set_("data={ samples = 40 }"),
                set_("hessian.method=lanczos"),
                set_("prune.ratios=[0.25]"),
            ])
            .unwrap();
        assert_eq!(cfg.model.width, 16);
        assert_eq!(cfg.seed, 3);
        assert_eq!(cfg.train.epochs, 2);
        assert_eq!(cfg.data.samples, 40);
        assert_eq!(cfg.data.features, 10, "a table value merges");
        assert_eq!(cfg.prune.ratios, vec![0.25]);
    }

    #[test]
    fn a_bad_set_names_itself_the_key_and_what_is_allowed() {
        let src = Source::from_text(BASE, "x.toml");
        let e = src.resolve(&[set_("model.width=abc")]).unwrap_err();
        assert_eq!(e.key(), Some("model.width"));
        let msg = e.to_string();
        assert!(
            msg.starts_with("--set model.width=abc: `model.width`"),
            "{msg}"
        );
        assert!(msg.contains("expected"), "{msg}");
        let e = src.resolve(&[set_("model.width=0")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--set model.width=0: `model.width` is 0, must be at least 1"
        );
        let e = src.resolve(&[set_("model.dept=2")]).unwrap_err();
        assert_eq!(e.key(), Some("model.dept"));
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = src.resolve(&[set_("name.x=2")]).unwrap_err();
        assert_eq!(e.key(), Some("name"));
    }

    #[test]
    fn an_error_not_caused_by_the_set_stays_in_the_file() {
        let src = Source::from_text("name = \"x\"\n[train]\nlr = 0.0\n", "x.toml");
        let e = src.resolve(&[set_("model.width=4")]).unwrap_err();
        assert_eq!(e.to_string(), "x.toml:3: `train.lr`: is 0, must be > 0");
        assert_eq!(
            src.resolve(&[]).unwrap_err().to_string(),
            "x.toml:3: `train.lr`: is 0, must be > 0"
        );
    }

    const SWEPT: &str = "name = \"s\"\n[model]\nwidth = 8\n[sweep]\n\"model.width\" = [1, 0]\n";

    #[test]
    fn a_bad_point_names_the_point_the_key_and_its_line() {
        let src = Source::from_text(SWEPT, "s.toml");
        let e = src.points(&[]).unwrap_err();
        assert_eq!(e.key(), Some("model.width"));
        assert_eq!(
            e.to_string(),
            "sweep point `model.width=0`: s.toml:5: `model.width`: is 0, must be at least 1"
        );
    }

    #[test]
    fn points_resolve_with_sets_and_drop_the_sweep() {
        let src = Source::from_text(
            "name = \"s\"\n[sweep]\n\"model.depth\" = [1, 3]\n\"train.lr\" = [0.1]\n",
            "s.toml",
        );
        let (sweep, points) = src.points(&[set_("train.epochs=2")]).unwrap();
        assert_eq!(sweep.axes.len(), 2);
        assert_eq!(points.len(), 2);
        let (p, cfg) = &points[1];
        assert_eq!(p.name, "model.depth=3,train.lr=0.1");
        assert_eq!(
            (cfg.model.depth, cfg.train.lr, cfg.train.epochs),
            (3, 0.1, 2)
        );
        assert!(cfg.sweep.is_empty());
        assert_ne!(points[0].1.digest(), cfg.digest());
        let e = src.points(&[set_("model.depth=2")]).unwrap_err();
        assert!(e.to_string().contains("is swept by [sweep]"), "{e}");
        let (_, one) = src.points(&[set_("sweep.model.depth=[2]")]).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].1.model.depth, 2);
    }

    #[test]
    fn a_point_that_breaks_a_rule_of_another_key_names_both() {
        let src = Source::from_text(
            "name = \"s\"\n[model]\nkind = \"transformer\"\nheads = 2\n[data]\nsource = \"movie_reviews\"\nencoding = \"tokens\"\n[sweep]\n\"model.width\" = [4, 5]\n",
            "s.toml",
        );
        let e = src.points(&[]).unwrap_err();
        assert_eq!(e.key(), Some("model.heads"));
        assert!(
            e.to_string()
                .starts_with("sweep point `model.width=5`: s.toml:4: `model.heads`"),
            "{e}"
        );
    }

    #[test]
    fn the_digest_follows_the_config() {
        let a = Config::named("x");
        let mut b = a.clone();
        assert_eq!(a.digest(), b.digest());
        b.model.depth = 2;
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest().len(), 64);
    }
}
