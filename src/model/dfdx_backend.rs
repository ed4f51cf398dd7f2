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

/// A contiguous run of a batch's examples on the device: `rows` of the batch.
#[derive(Clone, Debug)]
struct Chunk<D: Device<f64>> {
    on: OnDevice<D>,
    rows: std::ops::Range<usize>,
}

/// A batch as one chunk, or (on the CPU, when the work is large enough, see
/// [`Network::chunks_for`]) as one chunk per thread: each chunk's pass has its own tape, the
/// chunks run in parallel and their results are summed in chunk order, so the numbers depend
/// on the thread count but never on timing.
#[derive(Clone, Debug)]
enum BatchData {
    Cpu(Vec<Chunk<Cpu>>),
    #[cfg(feature = "cuda")]
    Cuda(Vec<Chunk<Cuda>>),
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

    /// How many chunks its passes split into (see [`Network::chunks_for`]).
    pub fn chunks(&self) -> usize {
        match &self.data {
            BatchData::Cpu(c) => c.len(),
            #[cfg(feature = "cuda")]
            BatchData::Cuda(c) => c.len(),
        }
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
    /// For the transformer each row holds `max_len` token ids (as `f64`, 0 = padding). On the
    /// CPU a large batch is cut into [`Network::chunks_for`] contiguous chunks.
    pub fn prepare(&self, x: &[f64], y: &[usize]) -> PreparedBatch {
        self.prepare_in_chunks(x, y, self.chunks_for(y.len()))
    }

    /// [`Network::prepare`] cut into `parts` chunks (at least one, at most one per example)
    /// whatever the work: for tests and benchmarks of the data-parallel passes.
    pub fn prepare_in_chunks(&self, x: &[f64], y: &[usize], parts: usize) -> PreparedBatch {
        let d = self.spec.inputs;
        let n = y.len();
        assert_eq!(x.len(), n * d, "x must hold n rows of {d} features");
        let parts = parts.clamp(1, n.max(1));
        let ranges: Vec<std::ops::Range<usize>> = (0..parts)
            .map(|c| c * n / parts..(c + 1) * n / parts)
            .collect();
        fn chunks<D: Device<f64>>(
            net: &Network,
            dev: &D,
            x: &[f64],
            y: &[usize],
            ranges: &[std::ops::Range<usize>],
        ) -> Vec<Chunk<D>> {
            let d = net.spec.inputs;
            ranges
                .iter()
                .map(|r| Chunk {
                    on: net.on_device(dev, &x[r.start * d..r.end * d], &y[r.clone()]),
                    rows: r.clone(),
                })
                .collect()
        }
        let data = match &self.backend {
            Backend::Cpu(dev) => BatchData::Cpu(chunks(self, dev, x, y, &ranges)),
            #[cfg(feature = "cuda")]
            Backend::Cuda(dev, _) => BatchData::Cuda(chunks(self, dev, x, y, &ranges)),
        };
        PreparedBatch {
            data,
            labels: y.to_vec(),
        }
    }

    /// How many chunks a batch of `n` examples is cut into: one per thread once the batch's
    /// work (`n` × parameters, × `max_len` for the transformer, about the multiply-adds of a
    /// forward pass) reaches [`CHUNK_WORK`] per chunk, else one. Below that, a gradient is
    /// too short for a second thread to pay for itself (and the dense Hessian's columns are
    /// parallel already). A CUDA build keeps one chunk (the GPU parallelises each pass).
    pub fn chunks_for(&self, n: usize) -> usize {
        if cfg!(feature = "cuda") || !matches!(self.backend, Backend::Cpu(_)) {
            return 1;
        }
        let per_example = self.layout.len * self.spec.transformer.map_or(1, |t| t.max_len);
        let work = n.saturating_mul(per_example);
        (work / CHUNK_WORK).clamp(1, rayon::current_num_threads().min(n).max(1))
    }

    /// `n` rows of `x` and their labels on `dev`: inputs transposed to `(features, n)` (or
    /// token ids), one-hot targets `(classes, n)`.
    fn on_device<D: Device<f64>>(&self, dev: &D, x: &[f64], y: &[usize]) -> OnDevice<D> {
        let d = self.spec.inputs;
        let n = y.len();
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
        let k = self.spec.classes;
        let mut onehot = vec![0.0; n * k];
        for (i, &c) in y.iter().enumerate() {
            assert!(c < k, "label {c} out of range for {k} classes");
            onehot[c * n + i] = 1.0;
        }
        let input = match tokens {
            Some(ids) => Input::Tokens(TokenBatch::new(dev, ids, n, d)),
            None => {
                let mut xt = vec![0.0; n * d];
                for i in 0..n {
                    for j in 0..d {
                        xt[j * n + i] = x[i * d + j];
                    }
                }
                Input::Features(dev.tensor_from_vec(xt, (d, n)))
            }
        };
        OnDevice {
            input,
            onehot: dev.tensor_from_vec(onehot, (k, n)),
        }
    }

    /// Exact Hessian-vector products of the mean loss over `batch` at `theta`
    /// (forward-over-reverse, `model::exact`; computed on the host whatever the backend).
    ///
    /// # Errors
    /// The transformer has none: its products are finite differences.
    pub fn exact_hvp(
        &self,
        theta: &[f64],
        batch: &PreparedBatch,
    ) -> Result<super::ExactHvp, super::ExactUnsupported> {
        if !self.spec.has_exact_products() {
            return Err(super::ExactUnsupported::Transformer);
        }
        // the inputs `features × n` back on the host, chunk by chunk (built here, not at
        // `prepare`: every training minibatch would pay for a copy only this needs)
        fn host<D: Device<f64>>(chunks: &[Chunk<D>], d: usize, n: usize) -> Vec<f64> {
            let mut xt = vec![0.0; d * n];
            for c in chunks {
                let Input::Features(x) = &c.on.input else {
                    unreachable!("an MLP's batch holds features")
                };
                let (part, m) = (x.as_vec(), c.rows.len());
                for j in 0..d {
                    xt[j * n + c.rows.start..j * n + c.rows.end]
                        .copy_from_slice(&part[j * m..(j + 1) * m]);
                }
            }
            xt
        }
        let (d, n) = (self.spec.inputs, batch.len());
        let x = match &batch.data {
            BatchData::Cpu(c) => host(c, d, n),
            #[cfg(feature = "cuda")]
            BatchData::Cuda(c) => host(c, d, n),
        };
        super::ExactHvp::new(
            &self.spec,
            &self.layout,
            self.variant,
            theta,
            std::sync::Arc::new(x),
            &batch.labels,
        )
    }

    /// Mean cross-entropy and accuracy of `theta` on `batch`, without a gradient.
    pub fn evaluate(&self, theta: &[f64], batch: &PreparedBatch) -> Eval {
        self.dispatch(theta, batch, Pass::Intact(None)).0
    }

    /// Mean cross-entropy and accuracy; the gradient of the mean loss is written to `grad`.
    pub fn loss_grad(&self, theta: &[f64], batch: &PreparedBatch, grad: &mut [f64]) -> Eval {
        self.dispatch(theta, batch, Pass::Intact(Some(grad))).0
    }

    /// The gradients at `k = thetas.len() / dim` parameter vectors in one forward/backward
    /// pass: `thetas` holds them one after another, `grads` receives theirs in the same order,
    /// and the mean losses are returned. The `k` copies of every weight form a batch
    /// dimension (the stem is one `(k·width, inputs)` GEMM over the shared input, every later
    /// layer a batched matrix product), so the per-call cost of building tensors and a tape
    /// is paid once for `k` gradients; the copies never meet, so each gradient is the one
    /// [`Network::loss_grad`] computes (to rounding: the GEMM may block differently).
    /// The transformer's copies ride along the batch: `k · n` sentences through attention.
    ///
    /// # Panics
    /// If `thetas` is not a whole number of parameter vectors or `grads` differs in length.
    pub fn loss_grad_block(
        &self,
        thetas: &[f64],
        batch: &PreparedBatch,
        grads: &mut [f64],
    ) -> Vec<f64> {
        let most = self.gradient_block(batch.len());
        self.loss_grad_block_at_most(thetas, batch, grads, most)
    }

    /// [`Network::loss_grad_block`] with at most `most` copies per pass instead of
    /// [`Network::gradient_block`]'s (the benches measure block sizes with it).
    pub fn loss_grad_block_at_most(
        &self,
        thetas: &[f64],
        batch: &PreparedBatch,
        grads: &mut [f64],
        most: usize,
    ) -> Vec<f64> {
        let p = self.layout.len;
        assert!(
            p > 0 && thetas.len().is_multiple_of(p),
            "thetas must hold whole parameter vectors of {p}"
        );
        assert_eq!(grads.len(), thetas.len(), "grads must match thetas");
        let k = thetas.len() / p;
        let most = most.max(1);
        if k == 1 || most == 1 {
            return thetas
                .chunks(p)
                .zip(grads.chunks_mut(p))
                .map(|(t, g)| self.loss_grad(t, batch, g).loss)
                .collect();
        }
        if k > most {
            // never more copies per pass than the block size allows
            return thetas
                .chunks(most * p)
                .zip(grads.chunks_mut(most * p))
                .flat_map(|(t, g)| self.loss_grad_block_at_most(t, batch, g, most))
                .collect();
        }
        match (&self.backend, &batch.data) {
            (Backend::Cpu(dev), BatchData::Cpu(b)) => {
                self.block_chunks(dev, thetas, k, b, batch.len(), grads)
            }
            #[cfg(feature = "cuda")]
            (Backend::Cuda(dev, _), BatchData::Cuda(b)) => {
                self.block_chunks(dev, thetas, k, b, batch.len(), grads)
            }
            #[cfg(feature = "cuda")]
            _ => panic!("a batch prepared for one device was used on another"),
        }
    }

    /// How many gradients [`Network::loss_grad_block`] should take at once on a batch of
    /// `n` examples: enough to amortise the per-call cost, few enough that the `k` copies'
    /// activations stay in cache: on the CPU the MLP's, all layers together, within a core's
    /// L2 ([`CPU_MLP_BLOCK_FLOATS`]); elsewhere `k · width · n` per layer within 4 MiB.
    ///
    /// The transformer keeps ~20 tensors of that size per block (LayerNorms, projections,
    /// scores, softmax, activation) where the MLP keeps ~3, so its budget is an eighth:
    /// measured on a 1,810-parameter transformer (64 sentences, 2 threads; `cargo bench
    /// --bench curvature -- transformer_1810`) before length buckets, per gradient 1.84 ms
    /// alone, 1.80 ms in blocks of 4 and 16, 2.04 ms in blocks of 64. A block runs its
    /// sentences padded, so on the CPU a batch whose chunks are cut into length buckets
    /// takes one gradient at a time: there 1.62 ms alone against 1.77-1.79 ms in blocks
    /// (the dense Hessian 3.09 s by columns against 3.27 s in blocks).
    pub fn gradient_block(&self, n: usize) -> usize {
        let n = n.max(1);
        if self.spec.transformer.is_some()
            && matches!(self.backend, Backend::Cpu(_))
            && n / self.chunks_for(n) >= 2 * transformer::MIN_BUCKET
        {
            return 1;
        }
        let (per_copy, budget) = match &self.spec.transformer {
            // token rows times the widest layer, or the attention scores
            Some(t) => (
                (n * t.max_len * self.spec.width.max(t.ff))
                    .max(n * t.heads * t.max_len * t.max_len),
                BLOCK_FLOATS / 8,
            ),
            // on the CPU every layer's activations of the block together, so that they
            // stay in a core's L2 cache (measured below); on a GPU the per-layer budget
            None if matches!(self.backend, Backend::Cpu(_)) => (
                self.spec.width.max(self.spec.inputs) * n * (self.spec.depth + 2),
                CPU_MLP_BLOCK_FLOATS,
            ),
            None => (self.spec.width.max(self.spec.inputs) * n, BLOCK_FLOATS),
        };
        (budget / per_copy.max(self.layout.len)).clamp(1, MAX_BLOCK)
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
            (Backend::Cpu(dev), BatchData::Cpu(b)) => {
                self.run_chunks(dev, theta, b, &batch.labels, pass)
            }
            #[cfg(feature = "cuda")]
            (Backend::Cuda(dev, _), BatchData::Cuda(b)) => {
                self.run_chunks(dev, theta, b, &batch.labels, pass)
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
                let (r, c) = as_matrix(t);
                dev.tensor_from_vec(theta[t.range()].to_vec(), (r, c))
            })
            .collect()
    }

    /// `lesioned[b]`: block `b` is the identity (empty: none is); `capture`: where to copy
    /// the layers' inputs.
    fn forward<D: Device<f64>, T: Tape<f64, D>>(
        &self,
        params: &[Mat<D, NoneTape>],
        input: &Input<D>,
        n: usize,
        lesioned: &[bool],
        capture: Option<&mut Activations>,
    ) -> Mat<D, T> {
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

    fn forward_mlp<D: Device<f64>, T: Tape<f64, D>>(
        &self,
        params: &[Mat<D, NoneTape>],
        xt: &Mat<D, NoneTape>,
        n: usize,
        lesioned: &[bool],
        mut capture: Option<&mut Activations>,
    ) -> Mat<D, T> {
        let width = self.spec.width;
        // the learned scales follow the shared tensors: 2 per linear, depth + 2 linears
        let first_scale = 2 * (self.spec.depth + 2);
        let act = self.spec.activation;
        let bias = |i: usize| {
            let b = params[i].retaped::<T>();
            let rows = b.shape().0;
            b.reshape_like(&(rows,))
                .broadcast_like::<_, Axis<1>>(&(rows, n))
        };
        let activate = |z: Mat<D, T>| match act {
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
        let w0 = params[0].retaped::<T>();
        let mut h = activate(w0.matmul(xt.clone()) + bias(1));
        for blk in 0..self.spec.depth {
            let h_in = capture.as_ref().map(|_| by_example(&h));
            // a lesioned block is the identity: h passes through, its weights and scale unused
            if !lesioned.get(blk).copied().unwrap_or(false) {
                let i = 1 + blk;
                if let (Some(c), Some(x)) = (capture.as_deref_mut(), &h_in) {
                    c.inputs.push(input(2 * i, x));
                }
                let w = params[2 * i].retaped::<T>();
                let f = activate(w.matmul(h.with_empty_tape()) + bias(2 * i + 1));
                h = match self.variant {
                    Variant::Residual if self.spec.learned_alpha => {
                        let a = params[first_scale + blk]
                            .retaped::<T>()
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
        let w = params[2 * i].retaped::<T>();
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
    ) -> ChunkOut {
        let params = self.params(dev, theta);
        let n = labels.len();
        let (grad, lesioned, capture) = match pass {
            Pass::Intact(grad) => (grad, &[][..], None),
            Pass::Lesioned(skip) => (None, skip, None),
            Pass::Capture(acts) => (None, &[][..], Some(acts)),
        };
        // Without a gradient the forward runs tape-free: no backward closures are kept and
        // each intermediate is freed (or overwritten in place) as soon as it is used.
        let (values, loss_value) = match grad {
            Some(grad) => {
                let logits: Mat<D, OwnedTape<f64, D>> =
                    self.forward(&params, &batch.input, n, lesioned, capture);
                let values = logits.as_vec();
                let loss = mean_nll(logits, &batch.onehot);
                let loss_value = loss.as_vec()[0];
                let grads: Gradients<f64, D> = loss.backward();
                for (t, p) in self.layout.tensors.iter().zip(&params) {
                    grad[t.range()].copy_from_slice(&grads.get(p).as_vec());
                }
                (values, loss_value)
            }
            None => {
                let logits: Mat<D, NoneTape> =
                    self.forward(&params, &batch.input, n, lesioned, capture);
                let values = logits.as_vec();
                (values, mean_nll(logits, &batch.onehot).as_vec()[0])
            }
        };
        let correct = labels
            .iter()
            .enumerate()
            .filter(|(i, &c)| argmax_strided(&values, *i, n) == c)
            .count();
        ChunkOut {
            loss: loss_value,
            correct,
            values,
        }
    }

    /// One pass over every chunk of a batch: a single chunk runs as is (so a batch that is
    /// not cut gives exactly the numbers it gave before chunking existed); several run in
    /// parallel, each with its own tape, and their mean losses, gradients and logits are
    /// combined in chunk order with weights `n_c / n`.
    fn run_chunks<D: Device<f64> + Par>(
        &self,
        dev: &D,
        theta: &[f64],
        chunks: &[Chunk<D>],
        labels: &[usize],
        pass: Pass,
    ) -> (Eval, Vec<f64>) {
        let n = labels.len();
        if let [one] = chunks {
            let out = self.run(dev, theta, &one.on, labels, pass);
            return (out.eval(n), out.values);
        }
        let weight = |c: &Chunk<D>| c.rows.len() as f64 / n.max(1) as f64;
        let p = self.layout.len;
        let parts: Vec<(ChunkOut, Vec<f64>)> = match pass {
            Pass::Intact(grad) => {
                let want = grad.is_some();
                let parts = map_chunks(chunks, |c| {
                    let mut g = vec![0.0; if want { p } else { 0 }];
                    let labels = &labels[c.rows.clone()];
                    let out = self.run(
                        dev,
                        theta,
                        &c.on,
                        labels,
                        Pass::Intact(want.then_some(&mut g)),
                    );
                    (out, g)
                });
                if let Some(grad) = grad {
                    grad.fill(0.0);
                    for (c, (_, g)) in chunks.iter().zip(&parts) {
                        let w = weight(c);
                        grad.iter_mut().zip(g).for_each(|(a, b)| *a += w * b);
                    }
                }
                parts
            }
            Pass::Lesioned(skip) => map_chunks(chunks, |c| {
                let labels = &labels[c.rows.clone()];
                (
                    self.run(dev, theta, &c.on, labels, Pass::Lesioned(skip)),
                    Vec::new(),
                )
            }),
            Pass::Capture(acts) => chunks
                .iter()
                .map(|c| {
                    let mut part = Activations {
                        inputs: Vec::new(),
                        blocks: Vec::new(),
                    };
                    let labels = &labels[c.rows.clone()];
                    let out = self.run(dev, theta, &c.on, labels, Pass::Capture(&mut part));
                    acts.append_rows(part);
                    (out, Vec::new())
                })
                .collect(),
        };
        let loss = chunks
            .iter()
            .zip(&parts)
            .map(|(c, (o, _))| weight(c) * o.loss)
            .sum();
        let correct: usize = parts.iter().map(|(o, _)| o.correct).sum();
        // logits (classes, n): each class's row is the chunks' rows side by side
        let classes = self.spec.classes;
        let mut values = Vec::with_capacity(classes * n);
        for k in 0..classes {
            for (c, (o, _)) in chunks.iter().zip(&parts) {
                let m = c.rows.len();
                values.extend_from_slice(&o.values[k * m..(k + 1) * m]);
            }
        }
        let out = ChunkOut {
            loss,
            correct,
            values,
        };
        (out.eval(n), out.values)
    }
}

/// What one chunk's pass gives: its mean loss, the examples it got right, its logits
/// `(classes, n_c)` row-major.
struct ChunkOut {
    loss: f64,
    correct: usize,
    values: Vec<f64>,
}

impl ChunkOut {
    fn eval(&self, n: usize) -> Eval {
        Eval {
            loss: self.loss,
            accuracy: if n == 0 {
                0.0
            } else {
                self.correct as f64 / n as f64
            },
        }
    }
}

/// Devices whose tensors may be read from several threads: every device in a CPU-only
/// build; a CUDA build's stream is not `Sync`, and there batches are never cut.
#[cfg(not(feature = "cuda"))]
trait Par: Sync {}
#[cfg(not(feature = "cuda"))]
impl<T: Sync> Par for T {}
#[cfg(feature = "cuda")]
trait Par {}
#[cfg(feature = "cuda")]
impl<T> Par for T {}

/// `f` over the chunks in parallel, the results in chunk order.
#[cfg(not(feature = "cuda"))]
fn map_chunks<C: Sync, T: Send>(chunks: &[C], f: impl Fn(&C) -> T + Sync + Send) -> Vec<T> {
    use rayon::prelude::*;
    chunks.par_iter().map(f).collect()
}

#[cfg(feature = "cuda")]
fn map_chunks<C, T>(chunks: &[C], f: impl Fn(&C) -> T) -> Vec<T> {
    chunks.iter().map(f).collect()
}

/// The CPU matrix-product kernels this build runs on this machine, e.g. `gemm 0.19 avx512f`:
/// dfdx's CPU matmuls go through `gemm` (0.19 in vendor/dfdx), which picks its microkernels
/// at run time by the CPU's vector width, and each width sums in its own order. A record
/// keeps this so a replay can tell a summation order changed (like another thread count).
pub fn cpu_kernels() -> String {
    #[cfg(target_arch = "x86_64")]
    let simd = if std::arch::is_x86_feature_detected!("avx512f") {
        "avx512f"
    } else if std::arch::is_x86_feature_detected!("fma") {
        "fma"
    } else {
        "sse2"
    };
    #[cfg(not(target_arch = "x86_64"))]
    let simd = std::env::consts::ARCH;
    format!("gemm 0.19 {simd}")
}

/// Multiply-adds of a forward pass worth a chunk of their own (~1 ms of a gradient): below
/// this, splitting the batch over threads costs more than it saves.
pub const CHUNK_WORK: usize = 1 << 21;

/// Floats of activations per layer one gradient block may hold (4 MiB of f64).
const BLOCK_FLOATS: usize = 1 << 19;
/// Floats of activations, all layers together, one MLP gradient block may hold on the CPU
/// (256 KiB of f64, within a core's L2: 5 copies for the article's model). Measured at 1
/// thread, 100 examples, µs per gradient at k = 1 / 2 / 4 / 8 / 16 / 32 (`RAYON_NUM_THREADS=1
/// cargo bench --bench curvature -- mlp_block_sizes`): width 20 depth 1 (the article's) 28.0 /
/// 25.8 / 24.4 / 24.1 / 26.7 / 28.2; width 20 depth 4 66.7 / 66.4 / 67.4 / 69.6 / 72.6 / 74.6;
/// width 48 depth 1 64.2 / 63.8 / 66.2 / 71.2 / 74.3 / 81.2: stacked copies pay off only
/// while they fit.
const CPU_MLP_BLOCK_FLOATS: usize = 1 << 15;
/// Most gradients in one block: past this the per-call cost is already negligible.
const MAX_BLOCK: usize = 64;

type Mat3<D, T> = Tensor<(usize, usize, usize), f64, D, T>;

impl Network {
    /// [`Network::block`] over every chunk of a batch of `n`, combined as
    /// [`Network::run_chunks`] combines one gradient.
    fn block_chunks<D: Device<f64> + Par>(
        &self,
        dev: &D,
        thetas: &[f64],
        k: usize,
        chunks: &[Chunk<D>],
        n: usize,
        grads: &mut [f64],
    ) -> Vec<f64> {
        if let [one] = chunks {
            return self.block(dev, thetas, k, &one.on, grads);
        }
        let parts = map_chunks(chunks, |c| {
            let mut g = vec![0.0; thetas.len()];
            let losses = self.block(dev, thetas, k, &c.on, &mut g);
            (losses, g)
        });
        grads.fill(0.0);
        let mut losses = vec![0.0; k];
        for (c, (l, g)) in chunks.iter().zip(&parts) {
            let w = c.rows.len() as f64 / n.max(1) as f64;
            grads.iter_mut().zip(g).for_each(|(a, b)| *a += w * b);
            losses.iter_mut().zip(l).for_each(|(a, b)| *a += w * b);
        }
        losses
    }

    /// [`Network::loss_grad_block`] on one chunk: every tensor as `(k, rows, cols)` (copy `i`
    /// is theta `i`'s slice), each copy's loss, and the gradient of their sum.
    fn block<D: Device<f64>>(
        &self,
        dev: &D,
        thetas: &[f64],
        k: usize,
        batch: &OnDevice<D>,
        grads: &mut [f64],
    ) -> Vec<f64> {
        let p = self.layout.len;
        let params: Vec<Mat3<D, NoneTape>> = self
            .layout
            .tensors
            .iter()
            .map(|t| {
                let (r, c) = as_matrix(t);
                let mut v = Vec::with_capacity(k * t.len);
                for theta in thetas.chunks(p) {
                    v.extend_from_slice(&theta[t.range()]);
                }
                dev.tensor_from_vec(v, (k, r, c))
            })
            .collect();
        let per_copy = match (&batch.input, &self.spec.transformer) {
            (Input::Features(xt), None) => self.mlp_block(&params, k, xt, &batch.onehot),
            (Input::Tokens(tokens), Some(shape)) => transformer::loss_block(
                &self.spec,
                shape,
                self.variant,
                &params,
                tokens,
                &batch.onehot,
            ),
            _ => unreachable!("prepare() builds the input the model takes"),
        };
        let losses = per_copy.as_vec();
        let g: Gradients<f64, D> = per_copy.sum::<(), _>().backward();
        for (t, param) in self.layout.tensors.iter().zip(&params) {
            let v = g.get(param).as_vec();
            for (c, grad) in grads.chunks_mut(p).enumerate() {
                grad[t.range()].copy_from_slice(&v[c * t.len..(c + 1) * t.len]);
            }
        }
        losses
    }

    /// The MLP's block: each copy's mean loss `(k,)`.
    fn mlp_block<D: Device<f64>>(
        &self,
        params: &[Mat3<D, NoneTape>],
        k: usize,
        xt: &Mat<D, NoneTape>,
        onehot: &Mat<D, NoneTape>,
    ) -> Tensor<(usize,), f64, D, OwnedTape<f64, D>> {
        let n = xt.shape().1;
        let width = self.spec.width;
        let first_scale = 2 * (self.spec.depth + 2);
        let act = self.spec.activation;
        let bias = |i: usize| {
            let b = params[i].retaped::<OwnedTape<f64, D>>();
            let rows = b.shape().1;
            b.reshape_like(&(k, rows))
                .broadcast_like::<_, Axis<2>>(&(k, rows, n))
        };
        let activate = |z: Mat3<D, OwnedTape<f64, D>>| match act {
            Activation::Relu => z.relu(),
            Activation::Gelu => z.fast_gelu(),
            Activation::Tanh => z.tanh(),
        };
        // the stem: all k copies of W in one GEMM against the shared input
        let w0 = params[0].retaped::<OwnedTape<f64, D>>();
        let inputs = w0.shape().2;
        let z0 = w0
            .reshape_like(&(k * width, inputs))
            .matmul(xt.clone())
            .reshape_like(&(k, width, n));
        let mut h = activate(z0 + bias(1));
        for blk in 0..self.spec.depth {
            let i = 1 + blk;
            let w = params[2 * i].retaped::<OwnedTape<f64, D>>();
            let f = activate(w.matmul(h.with_empty_tape()) + bias(2 * i + 1));
            h = match self.variant {
                Variant::Residual if self.spec.learned_alpha => {
                    let a = params[first_scale + blk]
                        .retaped::<OwnedTape<f64, D>>()
                        .reshape_like(&(k,))
                        .broadcast_like::<_, Axes2<1, 2>>(&(k, width, n));
                    f * a + h
                }
                Variant::Residual => f * self.spec.alpha + h,
                Variant::Plain => {
                    let (_, tape) = h.split_tape();
                    let (f, ftape) = f.split_tape();
                    f.put_tape(tape.merge(ftape))
                }
            };
        }
        let i = 1 + self.spec.depth;
        let w = params[2 * i].retaped::<OwnedTape<f64, D>>();
        let logits = w.matmul(h) + bias(2 * i + 1);
        block_nll(logits, onehot)
    }
}

/// A tensor's shape as a matrix: `[r, c]`, or `[r]` as `(r, 1)`.
fn as_matrix(t: &super::ParamTensor) -> (usize, usize) {
    match t.shape.as_slice() {
        [r, c] => (*r, *c),
        [r] => (*r, 1),
        _ => unreachable!("MLP tensors are 1-D or 2-D"),
    }
}

/// Each copy's mean over examples of `-log softmax(z)[label]` for logits `(k, classes, n)`;
/// the gradient of their sum is every copy's own.
pub(crate) fn block_nll<D: Device<f64>, T: Tape<f64, D>>(
    logits: Tensor<(usize, usize, usize), f64, D, T>,
    onehot: &Mat<D, NoneTape>,
) -> Tensor<(usize,), f64, D, T> {
    let (k, classes, n) = *logits.shape();
    let onehot = onehot
        .clone()
        .broadcast_like::<_, Axis<0>>(&(k, classes, n));
    (logits.log_softmax::<Axis<1>>() * onehot).sum::<(usize,), Axes2<1, 2>>() * (-1.0 / n as f64)
}

/// The mean over examples of `-log softmax(z)[label]`; classes run along axis 0.
fn mean_nll<D: Device<f64>, T: Tape<f64, D>>(
    logits: Mat<D, T>,
    onehot: &Mat<D, NoneTape>,
) -> Tensor<(), f64, D, T> {
    let n = logits.shape().1;
    (logits.log_softmax::<Axis<0>>() * onehot.clone()).sum::<(), _>() * (-1.0 / n as f64)
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
