//! What one pruned unit is: the sets of parameter indices a granularity removes together.
//!
//! - `unstructured`: one eligible parameter ([`super::eligible`]), ranked within the scope's
//!   groups (one group, or one per layer), exactly as before granularities existed.
//! - `N:M`: every weight matrix (`ParamKind::Weight`, plus the embedding tables with
//!   `include_embeddings`; never biases) is cut, row by row, into groups of `M` consecutive
//!   inputs; the `N` lowest-scoring weights of each group are removed. The sparsity is `N/M`
//!   whatever `prune.ratios` says.
//! - `neuron`: a hidden unit. In the plain MLP unit `j` of `stem` or `blocks.b` is row `j` of
//!   its weight, bias `j` and column `j` of the next linear's weight, so removing it equals an
//!   explicitly narrower network. In the residual MLP the skip carries the stream's width, so a
//!   unit is only row `j` and bias `j` (the branch output; the stream keeps its width), for
//!   `stem` too. In the transformer (both variants) unit `j` of block `b`'s MLP is `fc1` row
//!   `j`, `fc1` bias `j` and `fc2` column `j`. The head's outputs are never units.
//! - `head` (transformer only): head `h` of block `b` is rows `h·dh..(h+1)·dh` of the `q`, `k`,
//!   `v` weights and biases and those columns of `out.weight`.
//! - `block`: every weight and bias of block `b` (the MLP's `blocks.b.*`; the transformer's
//!   `attn.{q,k,v,out}` and `mlp.{fc1,fc2}`, not the LayerNorms). A masked residual block is
//!   the identity; a masked plain block outputs `act(0) = 0`.
//!
//! A structured unit (neuron, head, block) is removed whole, its biases included, whatever
//! `prune.include_bias` says. Structured units are ranked in one group over the model
//! (`prune.scope` only shapes unstructured pruning) and `floor(ratio × units)` are removed.

use std::ops::Range;

use crate::config::{Granularity, PruneConfig, PruneScope};
use crate::model::{ModelSpec, ParamKind, ParamLayout, ParamTensor, Variant};

/// One structured unit: where it is and the parameters removed with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// `stem`, `blocks.1`, `blocks.0.mlp`, `blocks.0.attn`.
    pub layer: String,
    /// The neuron, head or block number within `layer`.
    pub index: usize,
    /// Indices into `theta`, ascending.
    pub params: Vec<usize>,
}

/// The units of one granularity for one network.
#[derive(Debug, Clone, PartialEq)]
pub enum Units {
    /// Single parameters: which are eligible, and the scope group of each.
    Parameters {
        eligible: Vec<bool>,
        groups: Vec<usize>,
    },
    /// Groups of `m` consecutive weights of a row, `n` of each removed.
    NOfM {
        n: usize,
        m: usize,
        groups: Vec<Range<usize>>,
    },
    /// Whole units, ranked together.
    Whole(Vec<Unit>),
}

impl Units {
    /// How many units could be removed (parameters for unstructured and `N:M`).
    pub fn count(&self) -> usize {
        match self {
            Units::Parameters { eligible, .. } => eligible.iter().filter(|e| **e).count(),
            Units::NOfM { groups, .. } => groups.iter().map(|g| g.len()).sum(),
            Units::Whole(units) => units.len(),
        }
    }
}

/// The units of `granularity` for a network of `spec` and `variant` whose `theta` has
/// `layout`. `cfg` supplies `include_bias`, `include_embeddings` and `scope` (unstructured)
/// and `include_embeddings` (`N:M`); structured units ignore them.
pub fn units(
    spec: &ModelSpec,
    variant: Variant,
    layout: &ParamLayout,
    granularity: Granularity,
    cfg: &PruneConfig,
) -> Units {
    match granularity {
        Granularity::Unstructured => Units::Parameters {
            eligible: super::eligible(layout, cfg.include_bias, cfg.include_embeddings),
            groups: match cfg.scope {
                PruneScope::Global => vec![0; layout.len],
                PruneScope::Layer => layout.layer_of_each(),
            },
        },
        Granularity::NOfM { n, m } => Units::NOfM {
            n,
            m,
            groups: n_of_m_groups(layout, m, cfg.include_embeddings),
        },
        Granularity::Neuron => Units::Whole(neuron_units(spec, variant, layout)),
        Granularity::Head => Units::Whole(head_units(spec, layout)),
        Granularity::Block => Units::Whole(block_units(spec, layout)),
    }
}

/// Whether `granularity` can prune a model of `spec` at all; the error is the message for
/// `prune.granularities` (called by config validation before any training).
pub fn check(spec: &ModelSpec, granularity: Granularity) -> Result<(), String> {
    match granularity {
        Granularity::Unstructured | Granularity::Neuron => Ok(()),
        Granularity::NOfM { n, m } => {
            let layout = spec.layout();
            match layout
                .tensors
                .iter()
                .find(|t| t.kind == ParamKind::Weight && !t.shape[1].is_multiple_of(m))
            {
                Some(t) => Err(format!(
                    "prune.granularities: {n}:{m} needs every pruned layer's input width to be \
                     a multiple of {m}; layer `{}` has {} inputs",
                    t.name.strip_suffix(".weight").unwrap_or(&t.name),
                    t.shape[1]
                )),
                None => Ok(()),
            }
        }
        Granularity::Head if spec.transformer.is_none() => Err(
            "prune.granularities: `head` prunes attention heads, and this model is an MLP \
             (it has none): use `neuron` or `block`"
                .into(),
        ),
        Granularity::Head => Ok(()),
        Granularity::Block if spec.depth < 2 => Err(format!(
            "prune.granularities: `block` at model.depth = {} removes floor(ratio × {}) = 0 \
             blocks at every ratio below 1 (only a ratio of 1 would remove the only block): \
             use model.depth ≥ 2 or another granularity",
            spec.depth, spec.depth
        )),
        Granularity::Block => Ok(()),
    }
}

/// Rows of every weight matrix (and embedding table with `include_embeddings`) cut into
/// groups of `m` consecutive entries; a row's last group is shorter when `m` does not divide
/// it ([`check`] refuses such models before training).
fn n_of_m_groups(layout: &ParamLayout, m: usize, include_embeddings: bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for t in &layout.tensors {
        let take = match t.kind {
            ParamKind::Weight => true,
            ParamKind::Embedding => include_embeddings,
            _ => false,
        };
        if !take || m == 0 {
            continue;
        }
        let (rows, cols) = (t.shape[0], t.shape[1]);
        for r in 0..rows {
            let start = t.offset + r * cols;
            let mut c = 0;
            while c < cols {
                let end = (c + m).min(cols);
                out.push(start + c..start + end);
                c = end;
            }
        }
    }
    out
}

fn tensor<'a>(layout: &'a ParamLayout, name: &str) -> &'a ParamTensor {
    layout
        .get(name)
        .unwrap_or_else(|| panic!("the layout of this model has no tensor `{name}`"))
}

/// Row `r` of a `[out, in]` weight.
fn row(t: &ParamTensor, r: usize) -> Range<usize> {
    let cols = t.shape[1];
    t.offset + r * cols..t.offset + (r + 1) * cols
}

/// Column `c` of a `[out, in]` weight.
fn column(t: &ParamTensor, c: usize) -> impl Iterator<Item = usize> + '_ {
    (0..t.shape[0]).map(move |r| t.offset + r * t.shape[1] + c)
}

fn unit(layer: &str, index: usize, mut params: Vec<usize>) -> Unit {
    params.sort_unstable();
    Unit {
        layer: layer.to_string(),
        index,
        params,
    }
}

fn neuron_units(spec: &ModelSpec, variant: Variant, layout: &ParamLayout) -> Vec<Unit> {
    let mut out = Vec::new();
    if let Some(shape) = &spec.transformer {
        for b in 0..spec.depth {
            let layer = format!("blocks.{b}.mlp");
            let fc1 = tensor(layout, &format!("{layer}.fc1.weight"));
            let bias = tensor(layout, &format!("{layer}.fc1.bias"));
            let fc2 = tensor(layout, &format!("{layer}.fc2.weight"));
            for j in 0..shape.ff {
                let mut p: Vec<usize> = row(fc1, j).collect();
                p.push(bias.offset + j);
                p.extend(column(fc2, j));
                out.push(unit(&layer, j, p));
            }
        }
        return out;
    }
    let hidden: Vec<String> = std::iter::once("stem".to_string())
        .chain((0..spec.depth).map(|b| format!("blocks.{b}")))
        .collect();
    for (l, layer) in hidden.iter().enumerate() {
        let w = tensor(layout, &format!("{layer}.weight"));
        let bias = tensor(layout, &format!("{layer}.bias"));
        let next = hidden.get(l + 1).map_or("head", String::as_str);
        let next = tensor(layout, &format!("{next}.weight"));
        for j in 0..w.shape[0] {
            let mut p: Vec<usize> = row(w, j).collect();
            p.push(bias.offset + j);
            // the plain model reads unit j only through the next linear's column j; the
            // residual stream carries it on past the next layer, so it stays
            if variant == Variant::Plain {
                p.extend(column(next, j));
            }
            out.push(unit(layer, j, p));
        }
    }
    out
}

fn head_units(spec: &ModelSpec, layout: &ParamLayout) -> Vec<Unit> {
    let Some(shape) = &spec.transformer else {
        return Vec::new();
    };
    let dh = spec.width / shape.heads;
    let mut out = Vec::new();
    for b in 0..spec.depth {
        let layer = format!("blocks.{b}.attn");
        let proj = tensor(layout, &format!("{layer}.out.weight"));
        for h in 0..shape.heads {
            let mut p = Vec::new();
            for qkv in ["q", "k", "v"] {
                let w = tensor(layout, &format!("{layer}.{qkv}.weight"));
                let bias = tensor(layout, &format!("{layer}.{qkv}.bias"));
                for r in h * dh..(h + 1) * dh {
                    p.extend(row(w, r));
                    p.push(bias.offset + r);
                }
            }
            for c in h * dh..(h + 1) * dh {
                p.extend(column(proj, c));
            }
            out.push(unit(&layer, h, p));
        }
    }
    out
}

fn block_units(spec: &ModelSpec, layout: &ParamLayout) -> Vec<Unit> {
    (0..spec.depth)
        .map(|b| {
            let prefix = format!("blocks.{b}");
            let params = layout
                .tensors
                .iter()
                .filter(|t| {
                    matches!(t.kind, ParamKind::Weight | ParamKind::Bias)
                        && (t.layer == prefix || t.layer.starts_with(&format!("{prefix}.")))
                })
                .flat_map(|t| t.range())
                .collect();
            unit(&prefix, b, params)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, TransformerShape};

    fn mlp(inputs: usize, width: usize, depth: usize) -> ModelSpec {
        ModelSpec {
            inputs,
            width,
            depth,
            classes: 3,
            activation: Activation::Relu,
            alpha: 1.0,
            learned_alpha: false,
            transformer: None,
        }
    }

    fn transformer(depth: usize) -> ModelSpec {
        ModelSpec {
            inputs: 5,
            width: 8,
            depth,
            classes: 3,
            activation: Activation::Gelu,
            alpha: 1.0,
            learned_alpha: false,
            transformer: Some(TransformerShape {
                vocab: 11,
                max_len: 5,
                heads: 2,
                ff: 12,
            }),
        }
    }

    fn whole(u: Units) -> Vec<Unit> {
        match u {
            Units::Whole(v) => v,
            other => panic!("not whole units: {other:?}"),
        }
    }

    #[test]
    fn check_names_the_layer_the_model_and_the_depth() {
        let e = check(&mlp(30, 8, 2), Granularity::NOfM { n: 2, m: 4 }).unwrap_err();
        assert_eq!(
            e,
            "prune.granularities: 2:4 needs every pruned layer's input width to be a multiple \
             of 4; layer `stem` has 30 inputs"
        );
        assert!(check(&mlp(32, 8, 2), Granularity::NOfM { n: 2, m: 4 }).is_ok());
        // the transformer's fc2 reads ff = 12 inputs: 8 does not divide it
        let e = check(&transformer(1), Granularity::NOfM { n: 1, m: 8 }).unwrap_err();
        assert!(e.contains("`blocks.0.mlp.fc2` has 12 inputs"), "{e}");
        assert!(check(&mlp(4, 8, 2), Granularity::Head)
            .unwrap_err()
            .contains("MLP"));
        assert!(check(&transformer(1), Granularity::Head).is_ok());
        let e = check(&mlp(4, 8, 1), Granularity::Block).unwrap_err();
        assert!(e.contains("0 blocks") && e.contains("only block"), "{e}");
        assert!(check(&transformer(2), Granularity::Block).is_ok());
        assert!(check(&mlp(3, 5, 1), Granularity::Neuron).is_ok());
    }

    #[test]
    fn plain_neurons_take_the_next_column_residual_ones_do_not() {
        let s = mlp(3, 4, 2);
        let l = s.layout();
        let plain = whole(units(
            &s,
            Variant::Plain,
            &l,
            Granularity::Neuron,
            &PruneConfig::default(),
        ));
        let res = whole(units(
            &s,
            Variant::Residual,
            &l,
            Granularity::Neuron,
            &PruneConfig::default(),
        ));
        assert_eq!(plain.len(), 12);
        assert_eq!(res.len(), 12);
        // stem unit: 3 inputs + bias (+ 4 rows of blocks.0 in the plain model)
        assert_eq!(res[0].params.len(), 4);
        assert_eq!(plain[0].params.len(), 8);
        // blocks.1 unit feeds the head (3 classes)
        assert_eq!(plain[8].layer, "blocks.1");
        assert_eq!(plain[8].params.len(), 4 + 1 + 3);
        let head = l.get("head.weight").unwrap();
        assert!(
            plain[9].params.contains(&(head.offset + 4 + 1)),
            "head[1][1]"
        );
    }

    #[test]
    fn transformer_units_count_and_sizes() {
        let s = transformer(2);
        let l = s.layout();
        let cfg = PruneConfig::default();
        let n = whole(units(&s, Variant::Residual, &l, Granularity::Neuron, &cfg));
        assert_eq!(n.len(), 24);
        assert!(n.iter().all(|u| u.params.len() == 8 + 1 + 8));
        let h = whole(units(&s, Variant::Plain, &l, Granularity::Head, &cfg));
        assert_eq!(h.len(), 4);
        // dh = 4: 3 projections × 4 rows × (8 + 1), plus 4 columns of out (8 rows each)
        assert!(h.iter().all(|u| u.params.len() == 3 * 4 * 9 + 4 * 8));
        let b = whole(units(&s, Variant::Plain, &l, Granularity::Block, &cfg));
        // 4 × (64 + 8) attention, fc1 12×8 + 12, fc2 8×12 + 8
        assert_eq!(b[1].params.len(), 4 * 72 + 108 + 104);
        let norm = l.get("blocks.1.mlp.norm.weight").unwrap();
        assert!(!b[1].params.contains(&norm.offset));
    }

    #[test]
    fn n_of_m_groups_cover_weights_row_by_row() {
        let s = mlp(4, 8, 1);
        let l = s.layout();
        let u = units(
            &s,
            Variant::Plain,
            &l,
            Granularity::NOfM { n: 1, m: 4 },
            &PruneConfig::default(),
        );
        let Units::NOfM { groups, .. } = &u else {
            panic!("{u:?}")
        };
        // stem 8 rows × 1 group, blocks.0 8 × 2, head 3 × 2
        assert_eq!(groups.len(), 8 + 16 + 6);
        assert_eq!(u.count(), 32 + 64 + 24);
        let stem = l.get("stem.weight").unwrap();
        assert_eq!(groups[1], stem.offset + 4..stem.offset + 8);
    }
}
