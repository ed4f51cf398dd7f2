//! The architecture as data, the flat parameter vector `theta`, and its loss and gradient.
//!
//! Everything downstream (optimizer, masks, Hessian, pruning, checkpoints) works on `theta:
//! &[f64]` and [`ParamLayout`]; dfdx is used only inside this module, so another device or
//! autodiff crate replaces one file.

mod dfdx_backend;
mod exact;
mod transformer;

use rand::Rng;
use serde::{Deserialize, Serialize};

pub use dfdx_backend::{cpu_kernels, Backend, Network, PreparedBatch, CHUNK_WORK};
pub use exact::{ExactHvp, ExactUnsupported};

/// The two members of a model pair: same layers, same initial `theta`, differing only in the skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// Each block computes `h + alpha * F(h)`.
    Residual,
    /// Each block computes `F(h)`.
    Plain,
}

impl Variant {
    pub const BOTH: [Variant; 2] = [Variant::Residual, Variant::Plain];

    /// `residual` or `plain`, as the record writes it.
    pub fn name(self) -> &'static str {
        crate::names::serde_name(&self)
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Relu,
    /// GELU in its tanh form, PyTorch's `nn.GELU(approximate="tanh")`.
    Gelu,
    Tanh,
}

/// The transformer's extra dimensions (`ModelSpec::transformer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformerShape {
    /// Token ids `0..vocab`; 0 is padding, 1 out-of-vocabulary.
    pub vocab: usize,
    /// Sequence length (padded); equals `ModelSpec::inputs`.
    pub max_len: usize,
    /// Attention heads; `width` must be a multiple.
    pub heads: usize,
    /// Hidden width of each block's MLP.
    pub ff: usize,
}

/// An MLP: stem `Linear(inputs, width)` + act, `depth` blocks `Linear(width, width)` + act
/// (wrapped in the skip for the residual variant), head `Linear(width, classes)`.
///
/// With `transformer` set it is instead a pre-LayerNorm transformer encoder classifier of
/// model width `width` and `depth` blocks over `inputs = max_len` token ids (see
/// `transformer.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub inputs: usize,
    pub width: usize,
    pub depth: usize,
    pub classes: usize,
    pub activation: Activation,
    /// Scale of the residual branch: `h + alpha * F(h)`; with `learned_alpha`, the initial
    /// value of each block's scale.
    pub alpha: f64,
    /// One trainable scale per block (residual variant only): `h + alpha_b * F(h)`, stored at
    /// the end of `theta` as `blocks.b.alpha`, so the plain model's `theta` is a prefix.
    pub learned_alpha: bool,
    pub transformer: Option<TransformerShape>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// A linear layer's matrix: always prunable.
    Weight,
    /// A linear layer's bias: prunable with `prune.include_bias`.
    Bias,
    /// Token or position embedding table: prunable with `prune.include_embeddings`.
    Embedding,
    /// LayerNorm gain (`.weight`) or shift (`.bias`): never pruned.
    Norm,
    /// A learned residual scale (`blocks.b.alpha`): never pruned.
    Scale,
}

impl ParamKind {
    /// Whether pruning may zero parameters of this kind.
    pub fn prunable(self, include_bias: bool, include_embeddings: bool) -> bool {
        match self {
            ParamKind::Weight => true,
            ParamKind::Bias => include_bias,
            ParamKind::Embedding => include_embeddings,
            ParamKind::Norm | ParamKind::Scale => false,
        }
    }
}

/// One tensor inside `theta`. Weights are stored `[out, in]` row-major, as PyTorch's
/// `nn.Linear.weight`, so checkpoints map one to one onto a `state_dict`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamTensor {
    /// `stem.weight`, `blocks.0.bias`, `head.weight`, ...
    pub name: String,
    /// `stem`, `blocks.0`, `head`.
    pub layer: String,
    pub kind: ParamKind,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
}

impl ParamTensor {
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// Where each tensor lives in the flat parameter vector.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamLayout {
    pub tensors: Vec<ParamTensor>,
    pub len: usize,
}

impl ParamLayout {
    /// Layer names in order, each once.
    pub fn layers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in &self.tensors {
            if out.last() != Some(&t.layer) {
                out.push(t.layer.clone());
            }
        }
        out
    }

    /// The layer of each parameter index, as an index into [`ParamLayout::layers`].
    pub fn layer_of_each(&self) -> Vec<usize> {
        let layers = self.layers();
        let mut out = vec![0; self.len];
        for t in &self.tensors {
            let l = layers.iter().position(|x| *x == t.layer).unwrap_or(0);
            out[t.range()].iter_mut().for_each(|v| *v = l);
        }
        out
    }

    pub fn get(&self, name: &str) -> Option<&ParamTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

impl ModelSpec {
    /// Whether [`ExactHvp`] can differentiate this model (the MLP: yes; the transformer: no,
    /// its products are finite differences).
    pub fn has_exact_products(&self) -> bool {
        self.transformer.is_none()
    }

    /// The `(name, in, out)` of every linear layer, in forward order.
    pub fn linears(&self) -> Vec<(String, usize, usize)> {
        let mut v = vec![("stem".to_string(), self.inputs, self.width)];
        for b in 0..self.depth {
            v.push((format!("blocks.{b}"), self.width, self.width));
        }
        v.push(("head".to_string(), self.width, self.classes));
        v
    }

    /// The tensors both variants share, in `theta` order: for the MLP the linears of
    /// [`ModelSpec::linears`], for the transformer those of `transformer::tensors`.
    pub fn layout(&self) -> ParamLayout {
        let specs: Vec<TensorSpec> = match &self.transformer {
            Some(shape) => transformer::tensors(self, shape),
            None => self
                .linears()
                .into_iter()
                .flat_map(|(layer, fan_in, fan_out)| {
                    [
                        TensorSpec::new(&layer, "weight", ParamKind::Weight, vec![fan_out, fan_in]),
                        TensorSpec::new(&layer, "bias", ParamKind::Bias, vec![fan_out]),
                    ]
                })
                .collect(),
        };
        ParamLayout::from_specs(specs)
    }

    /// The layout of one variant: the shared tensors, then (residual with `learned_alpha`
    /// only) one scale `blocks.b.alpha` per block.
    pub fn layout_for(&self, variant: Variant) -> ParamLayout {
        let mut layout = self.layout();
        if self.learned_alpha && variant == Variant::Residual {
            for b in 0..self.depth {
                let len = 1;
                layout.tensors.push(ParamTensor {
                    name: format!("blocks.{b}.alpha"),
                    // one group: per-layer spectra show the scales together
                    layer: "alpha".to_string(),
                    kind: ParamKind::Scale,
                    shape: vec![1],
                    offset: layout.len,
                    len,
                });
                layout.len += len;
            }
        }
        layout
    }

    /// Parameters shared by both variants.
    pub fn num_params(&self) -> usize {
        self.layout().len
    }

    /// Draws the shared `theta`: linear weights and biases as PyTorch's `nn.Linear`
    /// (`U(-1/sqrt(fan_in), 1/sqrt(fan_in))`), embeddings as `nn.Embedding` (`N(0, 1)`),
    /// LayerNorm gains 1 and shifts 0; from the project's own RNG so a seed means the same
    /// `theta` on every device.
    pub fn init(&self, rng: &mut impl Rng) -> Vec<f64> {
        let layout = self.layout();
        let mut theta = vec![0.0; layout.len];
        for t in &layout.tensors {
            let out = &mut theta[t.range()];
            match t.kind {
                ParamKind::Weight | ParamKind::Bias => {
                    let fan_in = match t.kind {
                        ParamKind::Weight => t.shape[1],
                        // the bias shares its linear's fan-in
                        _ => t
                            .name
                            .strip_suffix(".bias")
                            .and_then(|base| layout.get(&format!("{base}.weight")))
                            .map(|w| w.shape[1])
                            .unwrap_or(1),
                    };
                    let bound = 1.0 / (fan_in as f64).sqrt();
                    out.iter_mut()
                        .for_each(|v| *v = rng.gen_range(-bound..bound));
                }
                ParamKind::Embedding => out
                    .iter_mut()
                    .for_each(|v| *v = rng.sample(rand_distr::StandardNormal)),
                ParamKind::Norm => {
                    let gain = if t.name.ends_with(".weight") {
                        1.0
                    } else {
                        0.0
                    };
                    out.fill(gain);
                }
                ParamKind::Scale => out.fill(self.alpha),
            }
        }
        theta
    }

    /// One variant's initial `theta` from the shared `theta0`: the residual model with
    /// `learned_alpha` appends its block scales, each `alpha`.
    pub fn theta_for(&self, variant: Variant, theta0: &[f64]) -> Vec<f64> {
        let mut theta = theta0.to_vec();
        let n = self.layout_for(variant).len;
        theta.resize(n, self.alpha);
        theta
    }
}

/// A tensor before offsets are assigned: `layer.suffix`, its kind and shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorSpec {
    pub name: String,
    pub layer: String,
    pub kind: ParamKind,
    pub shape: Vec<usize>,
}

impl TensorSpec {
    pub(crate) fn new(layer: &str, suffix: &str, kind: ParamKind, shape: Vec<usize>) -> Self {
        TensorSpec {
            name: format!("{layer}.{suffix}"),
            layer: layer.to_string(),
            kind,
            shape,
        }
    }
}

impl ParamLayout {
    pub(crate) fn from_specs(specs: Vec<TensorSpec>) -> ParamLayout {
        let mut tensors = Vec::with_capacity(specs.len());
        let mut offset = 0;
        for t in specs {
            let len = t.shape.iter().product();
            tensors.push(ParamTensor {
                name: t.name,
                layer: t.layer,
                kind: t.kind,
                shape: t.shape,
                offset,
                len,
            });
            offset += len;
        }
        ParamLayout {
            tensors,
            len: offset,
        }
    }
}

/// The input of one linear layer over the calibration examples: `rows` examples (MLP) or
/// real, non-padding tokens (transformer) of `cols` features, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerInput {
    /// The layer's weight tensor, e.g. `blocks.0.weight`, `blocks.1.attn.q.weight`.
    pub weight: String,
    pub rows: usize,
    pub cols: usize,
    pub x: Vec<f64>,
}

/// The stream entering and leaving block `b` (for the transformer: before its attention
/// sub-layer and after its MLP sub-layer), `rows × cols` row-major as [`LayerInput`].
#[derive(Debug, Clone, PartialEq)]
pub struct BlockStream {
    pub rows: usize,
    pub cols: usize,
    pub h_in: Vec<f64>,
    pub h_out: Vec<f64>,
}

/// What the calibration criteria read from one forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Activations {
    /// One per linear layer, in `theta` order (the head included).
    pub inputs: Vec<LayerInput>,
    /// One per block, in order.
    pub blocks: Vec<BlockStream>,
}

impl Activations {
    pub fn input(&self, weight: &str) -> Option<&LayerInput> {
        self.inputs.iter().find(|i| i.weight == weight)
    }

    /// Appends the rows of `more` (the same layers and blocks, later examples) to these;
    /// into empty activations it moves `more` as it is.
    pub(crate) fn append_rows(&mut self, more: Activations) {
        if self.inputs.is_empty() && self.blocks.is_empty() {
            *self = more;
            return;
        }
        for (a, b) in self.inputs.iter_mut().zip(more.inputs) {
            debug_assert_eq!((&a.weight, a.cols), (&b.weight, b.cols));
            a.rows += b.rows;
            a.x.extend(b.x);
        }
        for (a, b) in self.blocks.iter_mut().zip(more.blocks) {
            a.rows += b.rows;
            a.h_in.extend(b.h_in);
            a.h_out.extend(b.h_out);
        }
    }
}

/// Loss and accuracy of `theta` on a set of examples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Eval {
    pub loss: f64,
    pub accuracy: f64,
}
