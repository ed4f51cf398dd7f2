//! Forward pass and gradient of the MLP over a flat `theta`, with dfdx tensors of runtime shape.
//!
//! Activations are kept transposed, `(features, batch)`, so every layer is `W @ h + b` with `W`
//! in PyTorch's `[out, in]` order and the input never needs a gradient.

use dfdx::prelude::*;

use super::{Activation, Eval, ModelSpec, ParamLayout, Variant};

type Mat<E, T> = Tensor<(usize, usize), E, Cpu, T>;

/// Examples ready for the device: inputs transposed to `(features, n)`, one-hot targets.
#[derive(Clone, Debug)]
pub struct PreparedBatch {
    xt: Tensor<(usize, usize), f64, Cpu>,
    onehot: Tensor<(usize, usize), f64, Cpu>,
    labels: Vec<usize>,
}

impl PreparedBatch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn labels(&self) -> &[usize] {
        &self.labels
    }
}

/// One member of a model pair, bound to a device.
#[derive(Clone, Debug)]
pub struct Network {
    spec: ModelSpec,
    layout: ParamLayout,
    variant: Variant,
    dev: Cpu,
}

impl Network {
    pub fn new(spec: &ModelSpec, variant: Variant) -> Self {
        Network {
            layout: spec.layout(),
            spec: spec.clone(),
            variant,
            dev: Cpu::default(),
        }
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    pub fn variant(&self) -> Variant {
        self.variant
    }

    pub fn dim(&self) -> usize {
        self.layout.len
    }

    /// Copies `n` rows of `x` (row-major, `inputs` columns) and their labels onto the device.
    pub fn prepare(&self, x: &[f64], y: &[usize]) -> PreparedBatch {
        let d = self.spec.inputs;
        let n = y.len();
        assert_eq!(x.len(), n * d, "x must hold n rows of {d} features");
        let mut xt = vec![0.0; n * d];
        for i in 0..n {
            for j in 0..d {
                xt[j * n + i] = x[i * d + j];
            }
        }
        let k = self.spec.classes;
        let mut onehot = vec![0.0; n * k];
        for (i, &c) in y.iter().enumerate() {
            assert!(c < k, "label {c} out of range for {k} classes");
            onehot[c * n + i] = 1.0;
        }
        PreparedBatch {
            xt: self.dev.tensor_from_vec(xt, (d, n)),
            onehot: self.dev.tensor_from_vec(onehot, (k, n)),
            labels: y.to_vec(),
        }
    }

    /// Mean cross-entropy and accuracy of `theta` on `batch`, without a gradient.
    pub fn evaluate(&self, theta: &[f64], batch: &PreparedBatch) -> Eval {
        self.run(theta, batch, None)
    }

    /// Mean cross-entropy and accuracy; the gradient of the mean loss is written to `grad`.
    pub fn loss_grad(&self, theta: &[f64], batch: &PreparedBatch, grad: &mut [f64]) -> Eval {
        self.run(theta, batch, Some(grad))
    }

    /// Per-example logits, row-major `(n, classes)`.
    pub fn logits(&self, theta: &[f64], batch: &PreparedBatch) -> Vec<f64> {
        let params = self.params(theta);
        let logits = self.forward(&params, batch);
        let (k, n) = (self.spec.classes, batch.len());
        let t = logits.as_vec();
        (0..n * k).map(|j| t[(j % k) * n + j / k]).collect()
    }

    fn params(&self, theta: &[f64]) -> Vec<Mat<f64, dfdx::prelude::NoneTape>> {
        assert_eq!(theta.len(), self.layout.len, "theta has the wrong length");
        // Biases are stored as (out, 1) matrices: broadcasting along the batch axis is then a
        // plain axis-1 broadcast on a 2-D tensor.
        self.layout
            .tensors
            .iter()
            .map(|t| {
                let (r, c) = match t.shape.as_slice() {
                    [r, c] => (*r, *c),
                    [r] => (*r, 1),
                    _ => unreachable!("MLP tensors are 1-D or 2-D"),
                };
                self.dev.tensor_from_vec(theta[t.range()].to_vec(), (r, c))
            })
            .collect()
    }

    fn forward(
        &self,
        params: &[Mat<f64, dfdx::prelude::NoneTape>],
        batch: &PreparedBatch,
    ) -> Mat<f64, OwnedTape<f64, Cpu>> {
        let n = batch.len();
        let act = self.spec.activation;
        let linear = |i: usize, h: Mat<f64, OwnedTape<f64, Cpu>>| {
            let w = params[2 * i].retaped::<OwnedTape<f64, Cpu>>();
            let b = params[2 * i + 1].retaped::<OwnedTape<f64, Cpu>>();
            let rows = w.shape().0;
            let b = b
                .reshape_like(&(rows,))
                .broadcast_like::<_, Axis<1>>(&(rows, n));
            w.matmul(h) + b
        };
        let activate = |z: Mat<f64, OwnedTape<f64, Cpu>>| match act {
            Activation::Relu => z.relu(),
            // dfdx 0.13's exact (erf) GELU has a wrong derivative (a missing 1/sqrt(2) in the
            // second term), so the tanh form is used; tests/model.rs checks its gradient
            Activation::Gelu => z.fast_gelu(),
            Activation::Tanh => z.tanh(),
        };
        // The stem: W is taped, the input is not, so no gradient is spent on the input.
        let w0 = params[0].retaped::<OwnedTape<f64, Cpu>>();
        let b0 = params[1].retaped::<OwnedTape<f64, Cpu>>();
        let rows = w0.shape().0;
        let b0 = b0
            .reshape_like(&(rows,))
            .broadcast_like::<_, Axis<1>>(&(rows, n));
        let mut h = activate(w0.matmul(batch.xt.clone()) + b0);
        for blk in 0..self.spec.depth {
            let f = activate(linear(1 + blk, h.with_empty_tape()));
            h = match self.variant {
                Variant::Residual => f * self.spec.alpha + h,
                Variant::Plain => {
                    // keep h's tape: it holds the ops of every earlier layer
                    let (_, tape) = h.split_tape();
                    let (f, ftape) = f.split_tape();
                    f.put_tape(tape.merge(ftape))
                }
            };
        }
        // logits stay (classes, n): dfdx 0.13's log_softmax backward is wrong on a permuted
        // (non-contiguous) tensor, which tests/model.rs caught
        linear(1 + self.spec.depth, h)
    }

    fn run(&self, theta: &[f64], batch: &PreparedBatch, grad: Option<&mut [f64]>) -> Eval {
        let params = self.params(theta);
        let logits = self.forward(&params, batch);
        let values = logits.as_vec();
        let n = batch.len();
        let correct = batch
            .labels
            .iter()
            .enumerate()
            .filter(|(i, &c)| argmax_strided(&values, *i, n) == c)
            .count();
        // mean over examples of -log softmax(z)[label]; classes run along axis 0
        let loss = (logits.log_softmax::<Axis<0>>() * batch.onehot.clone()).sum::<(), _>()
            * (-1.0 / n as f64);
        let loss_value = loss.array();
        if let Some(grad) = grad {
            let grads: Gradients<f64, Cpu> = loss.backward();
            for (t, p) in self.layout.tensors.iter().zip(&params) {
                let g = grads.get(p).as_vec();
                grad[t.range()].copy_from_slice(&g);
            }
        }
        Eval {
            loss: loss_value,
            accuracy: if batch.is_empty() {
                0.0
            } else {
                correct as f64 / batch.len() as f64
            },
        }
    }
}

/// Class with the largest logit for example `i` of a `(classes, n)` row-major matrix.
/// NaN never wins; ties go to the lower class (as `torch.argmax`).
fn argmax_strided(v: &[f64], i: usize, n: usize) -> usize {
    let k = v.len() / n.max(1);
    let mut best = 0;
    for c in 1..k {
        if v[c * n + i] > v[best * n + i] {
            best = c;
        }
    }
    best
}
