//! Forward pass and gradient of the MLP over a flat `theta`, with dfdx tensors of runtime shape,
//! on the CPU or (with the `cuda` feature) a CUDA GPU.
//!
//! Activations are kept transposed, `(features, batch)`, so every layer is `W @ h + b` with `W`
//! in PyTorch's `[out, in]` order and the input never needs a gradient. The examples stay on
//! the device between steps; `theta` crosses once per evaluation (it is the optimiser's flat
//! vector on the host).
//!
//! There is one forward pass per architecture (`forward_mlp`, `transformer::forward`); besides
//! the logits it can do two things, chosen by [`Network`]'s entry points:
//!
//! - **Lesion** ([`Network::evaluate_lesioned`]): every block `b` with `skip[b]` is replaced by
//!   the identity, so the stream leaves it unchanged: the residual `h + alpha * F(h)` (a learned
//!   `alpha` included) and the plain `F(h)` both become `h`. A transformer block is both of its
//!   sub-layers, attention and MLP. The block's parameters are then unused. With no block
//!   lesioned the ops are exactly those of [`Network::evaluate`], so its results are
//!   bit-identical.
//! - **Capture** ([`Network::activations`]): copies to the host, in `theta` order, the input
//!   of every linear layer (a [`LayerInput`] named by its weight tensor in
//!   [`Network::layout`]) and the stream entering and leaving each block (a [`BlockStream`]).
//!   Rows are examples for the MLP and real (non-padding) tokens for the transformer, except
//!   the transformer's head, whose input is the pooled vector of each example. MLP: `stem`
//!   reads the features, `blocks.{b}` the stream entering block `b`, `head` the final stream.
//!   Transformer block `b`: `attn.{q,k,v}` each read `LN(h)`, `attn.out` the merged heads,
//!   `mlp.fc1` the MLP's `LN(h)`, `mlp.fc2` the activated hidden layer.

use dfdx::prelude::*;

use super::transformer::{self, TokenBatch};
use super::{
    Activation, Activations, BlockStream, Eval, LayerInput, ModelSpec, ParamLayout, Variant,
};

type Mat<D, T> = Tensor<(usize, usize), f64, D, T>;

/// Where the tensors live.
#[derive(Clone, Debug)]
pub enum Backend {
    Cpu(Cpu),
    #[cfg(feature = "cuda")]
    Cuda(Cuda, usize),
}

impl Backend {
    pub fn cpu() -> Backend {
        Backend::Cpu(Cpu::default())
    }

    /// The CUDA GPU with this ordinal.
    #[cfg(feature = "cuda")]
    pub fn cuda(ordinal: usize) -> Result<Backend, String> {
        Cuda::try_build(ordinal, 0)
            .map(|d| Backend::Cuda(d, ordinal))
            .map_err(|e| {
                format!(
                    "cannot open CUDA device {ordinal}: {e:?}; check `nvidia-smi` lists it and \
                     the driver matches the CUDA toolkit this binary was built with"
                )
            })
    }

    /// `cpu`, `cuda:0`, ...
    pub fn describe(&self) -> String {
        match self {
            Backend::Cpu(_) => "cpu".into(),
            #[cfg(feature = "cuda")]
            Backend::Cuda(_, i) => format!("cuda:{i}"),
        }
    }
}

/// The model's input: features `(features, n)` for the MLP, token ids for the transformer.
#[derive(Clone, Debug)]
enum Input<D: Device<f64>> {
    Features(Mat<D, NoneTape>),
    Tokens(TokenBatch<D>),
}

#[derive(Clone, Debug)]
struct OnDevice<D: Device<f64>> {
    input: Input<D>,
    onehot: Mat<D, NoneTape>,
}

#[derive(Clone, Debug)]
enum BatchData {
    Cpu(OnDevice<Cpu>),
    #[cfg(feature = "cuda")]
    Cuda(OnDevice<Cuda>),
}

/// Examples ready for the device: inputs transposed to `(features, n)`, one-hot targets.
#[derive(Clone, Debug)]
pub struct PreparedBatch {
    data: BatchData,
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
    backend: Backend,
}

impl Network {
    /// On the CPU.
    pub fn new(spec: &ModelSpec, variant: Variant) -> Self {
        Self::on(spec, variant, Backend::cpu())
    }

    pub fn on(spec: &ModelSpec, variant: Variant, backend: Backend) -> Self {
        Network {
            layout: spec.layout_for(variant),
            spec: spec.clone(),
            variant,
            backend,
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

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn dim(&self) -> usize {
        self.layout.len
    }

    /// Copies `n` rows of `x` (row-major, `inputs` columns) and their labels onto the device.
    /// For the transformer each row holds `max_len` token ids (as `f64`, 0 = padding).
    pub fn prepare(&self, x: &[f64], y: &[usize]) -> PreparedBatch {
        let d = self.spec.inputs;
        let n = y.len();
        assert_eq!(x.len(), n * d, "x must hold n rows of {d} features");
        let tokens = self.spec.transformer.map(|t| {
            x.iter()
                .map(|&v| {
                    let id = v as usize;
                    assert!(
                        v >= 0.0 && v.fract() == 0.0 && id < t.vocab,
                        "token id {v} is not an integer in 0..{}",
                        t.vocab
                    );
                    id
                })
                .collect::<Vec<usize>>()
        });
        let mut xt = Vec::new();
        if tokens.is_none() {
            xt = vec![0.0; n * d];
            for i in 0..n {
                for j in 0..d {
                    xt[j * n + i] = x[i * d + j];
                }
            }
        }
        let k = self.spec.classes;
        let mut onehot = vec![0.0; n * k];
        for (i, &c) in y.iter().enumerate() {
            assert!(c < k, "label {c} out of range for {k} classes");
            onehot[c * n + i] = 1.0;
        }
        fn put<D: Device<f64>>(
            dev: &D,
            xt: Vec<f64>,
            tokens: Option<Vec<usize>>,
            oh: Vec<f64>,
            (d, n, k): (usize, usize, usize),
        ) -> OnDevice<D> {
            OnDevice {
                input: match tokens {
                    Some(ids) => Input::Tokens(TokenBatch::new(dev, ids, n, d)),
                    None => Input::Features(dev.tensor_from_vec(xt, (d, n))),
                },
                onehot: dev.tensor_from_vec(oh, (k, n)),
            }
        }
        let data = match &self.backend {
            Backend::Cpu(dev) => BatchData::Cpu(put(dev, xt, tokens, onehot, (d, n, k))),
            #[cfg(feature = "cuda")]
            Backend::Cuda(dev, _) => BatchData::Cuda(put(dev, xt, tokens, onehot, (d, n, k))),
        };
        PreparedBatch {
            data,
            labels: y.to_vec(),
        }
    }

    /// Mean cross-entropy and accuracy of `theta` on `batch`, without a gradient.
    pub fn evaluate(&self, theta: &[f64], batch: &PreparedBatch) -> Eval {
        self.dispatch(theta, batch, Pass::Intact(None)).0
    }

    /// Mean cross-entropy and accuracy; the gradient of the mean loss is written to `grad`.
    pub fn loss_grad(&self, theta: &[f64], batch: &PreparedBatch, grad: &mut [f64]) -> Eval {
        self.dispatch(theta, batch, Pass::Intact(Some(grad))).0
    }

    /// Mean cross-entropy and accuracy with every block `b` where `skip[b]` replaced by the
    /// identity (see the module docs); without a gradient. All `false` is [`Network::evaluate`]
    /// bit for bit.
    ///
    /// # Panics
    /// If `skip` does not hold one flag per block.
    pub fn evaluate_lesioned(&self, theta: &[f64], batch: &PreparedBatch, skip: &[bool]) -> Eval {
        assert_eq!(
            skip.len(),
            self.spec.depth,
            "skip must hold one flag per block: {} flags for a depth-{} model",
            skip.len(),
            self.spec.depth
        );
        self.dispatch(theta, batch, Pass::Lesioned(skip)).0
    }

    /// The input of every linear layer and the stream around every block, from one forward
    /// pass over `batch` without a gradient (see the module docs).
    pub fn activations(&self, theta: &[f64], batch: &PreparedBatch) -> Activations {
        let mut acts = Activations {
            inputs: Vec::new(),
            blocks: Vec::new(),
        };
        self.dispatch(theta, batch, Pass::Capture(&mut acts));
        acts
    }

    /// Per-example logits, row-major `(n, classes)`.
    pub fn logits(&self, theta: &[f64], batch: &PreparedBatch) -> Vec<f64> {
        let t = self.dispatch(theta, batch, Pass::Intact(None)).1;
        let (k, n) = (self.spec.classes, batch.len());
        (0..n * k).map(|j| t[(j % k) * n + j / k]).collect()
    }

    fn dispatch(&self, theta: &[f64], batch: &PreparedBatch, pass: Pass) -> (Eval, Vec<f64>) {
        assert_eq!(theta.len(), self.layout.len, "theta has the wrong length");
        match (&self.backend, &batch.data) {
            (Backend::Cpu(dev), BatchData::Cpu(b)) => self.run(dev, theta, b, &batch.labels, pass),
            #[cfg(feature = "cuda")]
            (Backend::Cuda(dev, _), BatchData::Cuda(b)) => {
                self.run(dev, theta, b, &batch.labels, pass)
            }
            #[cfg(feature = "cuda")]
            _ => panic!("a batch prepared for one device was used on another"),
        }
    }

    fn params<D: Device<f64>>(&self, dev: &D, theta: &[f64]) -> Vec<Mat<D, NoneTape>> {
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
                dev.tensor_from_vec(theta[t.range()].to_vec(), (r, c))
            })
            .collect()
    }

    /// `lesioned[b]`: block `b` is the identity (empty: none is); `capture`: where to copy
    /// the layers' inputs.
    fn forward<D: Device<f64>>(
        &self,
        params: &[Mat<D, NoneTape>],
        input: &Input<D>,
        n: usize,
        lesioned: &[bool],
        capture: Option<&mut Activations>,
    ) -> Mat<D, OwnedTape<f64, D>> {
        match (input, &self.spec.transformer) {
            (Input::Features(xt), None) => self.forward_mlp(params, xt, n, lesioned, capture),
            (Input::Tokens(tokens), Some(shape)) => transformer::forward(
                &self.spec,
                shape,
                self.variant,
                params,
                tokens,
                lesioned,
                capture,
            ),
            _ => unreachable!("prepare() builds the input the model takes"),
        }
    }

    fn forward_mlp<D: Device<f64>>(
        &self,
        params: &[Mat<D, NoneTape>],
        xt: &Mat<D, NoneTape>,
        n: usize,
        lesioned: &[bool],
        mut capture: Option<&mut Activations>,
    ) -> Mat<D, OwnedTape<f64, D>> {
        let width = self.spec.width;
        // the learned scales follow the shared tensors: 2 per linear, depth + 2 linears
        let first_scale = 2 * (self.spec.depth + 2);
        let act = self.spec.activation;
        let bias = |i: usize| {
            let b = params[i].retaped::<OwnedTape<f64, D>>();
            let rows = b.shape().0;
            b.reshape_like(&(rows,))
                .broadcast_like::<_, Axis<1>>(&(rows, n))
        };
        let activate = |z: Mat<D, OwnedTape<f64, D>>| match act {
            Activation::Relu => z.relu(),
            // dfdx 0.13's exact (erf) GELU has a wrong derivative (a missing 1/sqrt(2) in the
            // second term), so the tanh form is used; tests/model.rs checks its gradient
            Activation::Gelu => z.fast_gelu(),
            Activation::Tanh => z.tanh(),
        };
        // the layer input named by its weight tensor, `theta` index `w`
        let input = |w: usize, x: &Rows| LayerInput {
            weight: self.layout.tensors[w].name.clone(),
            rows: x.rows,
            cols: x.cols,
            x: x.x.clone(),
        };
        // The stem: W is taped, the input is not, so no gradient is spent on the input.
        if let Some(c) = capture.as_deref_mut() {
            c.inputs.push(input(0, &by_example(xt)));
        }
        let w0 = params[0].retaped::<OwnedTape<f64, D>>();
        let mut h = activate(w0.matmul(xt.clone()) + bias(1));
        for blk in 0..self.spec.depth {
            let h_in = capture.as_ref().map(|_| by_example(&h));
            // a lesioned block is the identity: h passes through, its weights and scale unused
            if !lesioned.get(blk).copied().unwrap_or(false) {
                let i = 1 + blk;
                if let (Some(c), Some(x)) = (capture.as_deref_mut(), &h_in) {
                    c.inputs.push(input(2 * i, x));
                }
                let w = params[2 * i].retaped::<OwnedTape<f64, D>>();
                let f = activate(w.matmul(h.with_empty_tape()) + bias(2 * i + 1));
                h = match self.variant {
                    Variant::Residual if self.spec.learned_alpha => {
                        let a = params[first_scale + blk]
                            .retaped::<OwnedTape<f64, D>>()
                            .reshape_like(&())
                            .broadcast_like(&(width, n));
                        f * a + h
                    }
                    Variant::Residual => f * self.spec.alpha + h,
                    Variant::Plain => {
                        // keep h's tape: it holds the ops of every earlier layer
                        let (_, tape) = h.split_tape();
                        let (f, ftape) = f.split_tape();
                        f.put_tape(tape.merge(ftape))
                    }
                };
            }
            if let (Some(c), Some(x)) = (capture.as_deref_mut(), h_in) {
                c.blocks.push(BlockStream {
                    rows: x.rows,
                    cols: x.cols,
                    h_in: x.x,
                    h_out: by_example(&h).x,
                });
            }
        }
        let i = 1 + self.spec.depth;
        if let Some(c) = capture {
            c.inputs.push(input(2 * i, &by_example(&h)));
        }
        let w = params[2 * i].retaped::<OwnedTape<f64, D>>();
        // logits stay (classes, n): dfdx 0.13's log_softmax backward is wrong on a permuted
        // (non-contiguous) tensor, which tests/model.rs caught
        w.matmul(h) + bias(2 * i + 1)
    }

    fn run<D: Device<f64>>(
        &self,
        dev: &D,
        theta: &[f64],
        batch: &OnDevice<D>,
        labels: &[usize],
        pass: Pass,
    ) -> (Eval, Vec<f64>) {
        let params = self.params(dev, theta);
        let n = labels.len();
        let (grad, lesioned, capture) = match pass {
            Pass::Intact(grad) => (grad, &[][..], None),
            Pass::Lesioned(skip) => (None, skip, None),
            Pass::Capture(acts) => (None, &[][..], Some(acts)),
        };
        let logits = self.forward(&params, &batch.input, n, lesioned, capture);
        let values = logits.as_vec();
        let correct = labels
            .iter()
            .enumerate()
            .filter(|(i, &c)| argmax_strided(&values, *i, n) == c)
            .count();
        // mean over examples of -log softmax(z)[label]; classes run along axis 0
        let loss = (logits.log_softmax::<Axis<0>>() * batch.onehot.clone()).sum::<(), _>()
            * (-1.0 / n as f64);
        let loss_value = loss.as_vec()[0];
        if let Some(grad) = grad {
            let grads: Gradients<f64, D> = loss.backward();
            for (t, p) in self.layout.tensors.iter().zip(&params) {
                grad[t.range()].copy_from_slice(&grads.get(p).as_vec());
            }
        }
        let eval = Eval {
            loss: loss_value,
            accuracy: if n == 0 {
                0.0
            } else {
                correct as f64 / n as f64
            },
        };
        (eval, values)
    }
}

/// What a pass computes besides loss, accuracy and logits.
enum Pass<'a> {
    /// Every block, with the gradient of the mean loss when given.
    Intact(Option<&'a mut [f64]>),
    /// Blocks `b` with `skip[b]` replaced by the identity; no gradient.
    Lesioned(&'a [bool]),
    /// Every block; the layers' inputs copied out; no gradient.
    Capture(&'a mut Activations),
}

/// A host copy of a matrix, `rows × cols` row-major.
struct Rows {
    rows: usize,
    cols: usize,
    x: Vec<f64>,
}

/// A `(features, n)` matrix as `n` rows (examples) of `features`.
fn by_example<D: Device<f64>, T>(m: &Mat<D, T>) -> Rows {
    let (f, n) = *m.shape();
    let v = m.as_vec();
    let mut x = vec![0.0; f * n];
    for j in 0..f {
        for i in 0..n {
            x[i * f + j] = v[j * n + i];
        }
    }
    Rows {
        rows: n,
        cols: f,
        x,
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
