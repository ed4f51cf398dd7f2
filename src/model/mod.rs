//! The architecture as data, the flat parameter vector `theta`, and its loss and gradient.
//!
//! Everything downstream (optimizer, masks, Hessian, pruning, checkpoints) works on `theta:
//! &[f64]` and [`ParamLayout`]; dfdx is used only inside this module, so another device or
//! autodiff crate replaces one file.

mod dfdx_backend;

use rand::Rng;
use serde::{Deserialize, Serialize};

pub use dfdx_backend::{Backend, Network, PreparedBatch};

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

    pub fn name(self) -> &'static str {
        match self {
            Variant::Residual => "residual",
            Variant::Plain => "plain",
        }
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

/// An MLP: stem `Linear(inputs, width)` + act, `depth` blocks `Linear(width, width)` + act
/// (wrapped in the skip for the residual variant), head `Linear(width, classes)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub inputs: usize,
    pub width: usize,
    pub depth: usize,
    pub classes: usize,
    pub activation: Activation,
    /// Scale of the residual branch: `h + alpha * F(h)`.
    pub alpha: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    Weight,
    Bias,
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
    /// The `(name, in, out)` of every linear layer, in forward order.
    pub fn linears(&self) -> Vec<(String, usize, usize)> {
        let mut v = vec![("stem".to_string(), self.inputs, self.width)];
        for b in 0..self.depth {
            v.push((format!("blocks.{b}"), self.width, self.width));
        }
        v.push(("head".to_string(), self.width, self.classes));
        v
    }

    pub fn layout(&self) -> ParamLayout {
        let mut tensors = Vec::new();
        let mut offset = 0;
        for (layer, fan_in, fan_out) in self.linears() {
            for (kind, shape) in [
                (ParamKind::Weight, vec![fan_out, fan_in]),
                (ParamKind::Bias, vec![fan_out]),
            ] {
                let len = shape.iter().product();
                let suffix = match kind {
                    ParamKind::Weight => "weight",
                    ParamKind::Bias => "bias",
                };
                tensors.push(ParamTensor {
                    name: format!("{layer}.{suffix}"),
                    layer: layer.clone(),
                    kind,
                    shape,
                    offset,
                    len,
                });
                offset += len;
            }
        }
        ParamLayout {
            tensors,
            len: offset,
        }
    }

    pub fn num_params(&self) -> usize {
        self.layout().len
    }

    /// PyTorch's `nn.Linear` default: weights and biases `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`,
    /// drawn from the project's own RNG so a seed means the same `theta` on every device.
    pub fn init(&self, rng: &mut impl Rng) -> Vec<f64> {
        let layout = self.layout();
        let mut theta = vec![0.0; layout.len];
        for t in &layout.tensors {
            let fan_in = match t.kind {
                ParamKind::Weight => t.shape[1],
                ParamKind::Bias => {
                    // the bias shares its layer's fan-in
                    layout
                        .get(&format!("{}.weight", t.layer))
                        .map(|w| w.shape[1])
                        .unwrap_or(1)
                }
            };
            let bound = 1.0 / (fan_in as f64).sqrt();
            for v in &mut theta[t.range()] {
                *v = rng.gen_range(-bound..bound);
            }
        }
        theta
    }
}

/// Loss and accuracy of `theta` on a set of examples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Eval {
    pub loss: f64,
    pub accuracy: f64,
}
