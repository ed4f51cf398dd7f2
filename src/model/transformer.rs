//! A pre-LayerNorm transformer encoder classifier over the flat `theta`, from dfdx tensor ops
//! of runtime shape.
//!
//! With `d = width`, `L = max_len`, `H = heads`, `dh = d / H` and `N = n * L` token rows:
//!
//! 1. `x = embed.weight[ids] + pos.weight` (token embedding gathered by id, learned positions),
//!    kept row-major `(N, d)`, one row per token.
//! 2. `depth` blocks, each of two sub-layers with the skip rule `h + alpha * F(LN(h))`
//!    (residual) or `F(LN(h))` (plain):
//!    - attention, layer `blocks.{b}.attn`: `LN` (`norm.weight`, `norm.bias`), then `H`-head
//!      self-attention `softmax(Q Kᵀ / sqrt(dh) + mask) V` with projections `q`, `k`, `v`,
//!      `out` (`.weight [d, d]` PyTorch `[out, in]`, `.bias [d]`). Padded keys get `-1e9`
//!      added to their score, so `exp` underflows to exactly 0: a padded position never
//!      influences a real one (padded queries still attend to the real keys; their rows are
//!      dropped by the pooling).
//!    - MLP, layer `blocks.{b}.mlp`: `LN` (`norm.*`), `fc1 [ff, d]` + bias, activation
//!      (`relu`, `gelu` in its tanh form, `tanh`), `fc2 [d, ff]` + bias.
//! 3. Final LayerNorm on every token (layer `final_norm`, `final_norm.weight/bias`), mean-pool
//!    over the real tokens only (mask-weighted sum / number of real tokens), then the head
//!    `head.weight [classes, d]`, `head.bias [classes]`.
//!
//! Layers (`ParamTensor::layer`), in `theta` order: `embed` (`embed.weight [vocab, d]`),
//! `pos` (`pos.weight [max_len, d]`), then per block `blocks.{b}.attn` (`norm.weight`,
//! `norm.bias`, `q.weight`, `q.bias`, `k.*`, `v.*`, `out.*`) and `blocks.{b}.mlp`
//! (`norm.*`, `fc1.*`, `fc2.*`), then `final_norm`, then `head`. Embeddings are
//! `ParamKind::Embedding`, LayerNorm gains and shifts `ParamKind::Norm`.
//!
//! LayerNorm is PyTorch's: population variance, eps `1e-5`, gain and shift per feature.
//! Only the attention and MLP branches are wrapped in the skip; embedding, pooling and head are
//! identical in both variants. `alpha` is `spec.alpha` (a learned scale is not supported here).
//!
//! The order is LayerNorm then pooling (each token normalised, then averaged), as PyTorch's
//! `nn.TransformerEncoder(norm=...)` followed by a masked mean.
//!
//! dfdx 0.13 notes: `softmax` (like `log_softmax`) keeps its input's tensor id across an
//! internal contiguous copy, so its backward is only right on a contiguous input; the scores
//! it gets are the fresh sum `(Q / sqrt(dh)) Kᵀ + mask`. The logits end with a matmul plus a
//! bias (a fresh contiguous `(classes, n)` tensor), which is what `log_softmax::<Axis<0>>`
//! needs. Batched `matmul` ((n, H, L, dh) x (n, H, dh, L)) takes strided operands in forward
//! and backward, so heads are split by `reshape` + `permute` views without copies; merging
//! them back is one copying `reshape`. `reshape`, `permute` and `broadcast` keep the tensor
//! id, so a parameter's gradient is found under the `(rows, cols)` matrix it was built as.
//! The GELU is `fast_gelu` (the tanh form): dfdx 0.13's exact GELU has a wrong derivative.
//!
//! [`loss_block`] is the same forward for `k` parameter vectors at once (issue 18): every
//! tensor stacked as `(k, rows, cols)`, token rows `(k, N, d)`, the `k` copies' sentences
//! side by side through attention as `k · n` sentences, each copy's embedding table offset by
//! `c · vocab` in one gather. Tested against one gradient at a time to 1e-12
//! (tests/block_gradient.rs).
//!
//! A lesioned block (see `dfdx_backend.rs`) skips both sub-layers, leaving `h` unchanged, and
//! its `BLOCK_TENSORS` parameters unused. The capture copies token rows of real tokens only
//! (mask 1), in the batch's example-major order; the head's input is one pooled row per example.

use dfdx::prelude::*;

use super::{
    Activation, Activations, BlockStream, LayerInput, ModelSpec, ParamKind, TensorSpec,
    TransformerShape, Variant,
};

pub(crate) type Mat<D, T> = Tensor<(usize, usize), f64, D, T>;

/// Added to the attention score of a padded key: `exp(-1e9 - max)` is exactly 0 in f64.
const MASKED: f64 = -1e9;
/// PyTorch's `nn.LayerNorm` default.
const LN_EPS: f64 = 1e-5;
/// Tensors of one block in `theta`: attention norm (2) and `q`, `k`, `v`, `out` (2 each), MLP
/// norm (2) and `fc1`, `fc2` (2 each).
const BLOCK_TENSORS: usize = 16;

/// The tensors in `theta` order (see the module docs for names and layers).
pub(crate) fn tensors(spec: &ModelSpec, shape: &TransformerShape) -> Vec<TensorSpec> {
    let d = spec.width;
    assert!(
        shape.heads > 0 && d.is_multiple_of(shape.heads),
        "width {d} must be a multiple of heads {}",
        shape.heads
    );
    // `prefix` is `q.`, `fc1.`, ... or empty (the head)
    let linear = |v: &mut Vec<TensorSpec>, layer: &str, prefix: &str, out: usize, inp: usize| {
        let w = format!("{prefix}weight");
        let b = format!("{prefix}bias");
        v.push(TensorSpec::new(
            layer,
            &w,
            ParamKind::Weight,
            vec![out, inp],
        ));
        v.push(TensorSpec::new(layer, &b, ParamKind::Bias, vec![out]));
    };
    let norm = |v: &mut Vec<TensorSpec>, layer: &str, prefix: &str| {
        v.push(TensorSpec::new(
            layer,
            &format!("{prefix}weight"),
            ParamKind::Norm,
            vec![d],
        ));
        v.push(TensorSpec::new(
            layer,
            &format!("{prefix}bias"),
            ParamKind::Norm,
            vec![d],
        ));
    };
    let mut v = vec![
        TensorSpec::new(
            "embed",
            "weight",
            ParamKind::Embedding,
            vec![shape.vocab, d],
        ),
        TensorSpec::new(
            "pos",
            "weight",
            ParamKind::Embedding,
            vec![shape.max_len, d],
        ),
    ];
    for b in 0..spec.depth {
        let attn = format!("blocks.{b}.attn");
        norm(&mut v, &attn, "norm.");
        for p in ["q.", "k.", "v.", "out."] {
            linear(&mut v, &attn, p, d, d);
        }
        let mlp = format!("blocks.{b}.mlp");
        norm(&mut v, &mlp, "norm.");
        linear(&mut v, &mlp, "fc1.", shape.ff, d);
        linear(&mut v, &mlp, "fc2.", d, shape.ff);
    }
    norm(&mut v, "final_norm", "");
    linear(&mut v, "head", "", spec.classes, d);
    v
}

/// Token ids and padding masks of a batch, on the device.
#[derive(Clone, Debug)]
pub(crate) struct TokenBatch<D: Device<f64>> {
    /// `n * max_len` ids, example-major.
    pub ids: Tensor<(usize,), usize, D>,
    /// `(n, max_len)`: 1.0 for a real token, 0.0 for padding (id 0).
    pub mask: Mat<D, NoneTape>,
    /// `(n, max_len)`: 0.0 for a real token, `-1e9` for padding: added to attention scores.
    pub key_bias: Mat<D, NoneTape>,
    /// `(n,)`: 1 / number of real tokens of each example (1 for an all-padding row, which
    /// then pools to zeros instead of NaN).
    pub inv_count: Tensor<(usize,), f64, D>,
    /// The batch in runs of similar length, each trimmed to its longest example (empty for a
    /// batch too small to split: it runs whole). See [`Buckets`].
    buckets: Option<Buckets<D>>,
}

/// A batch sorted by length and cut into runs of at least [`MIN_BUCKET`] examples, each run
/// cut to its longest example's length: the padding a pass computes and then throws away
/// shrinks (on the bundled reviews, 8 runs hold 63 % of the padded tokens and 45 % of the
/// attention scores). A padded position changes nothing a real one computes (its key weighs
/// exactly 0, its query is dropped by the pooling), so each example's pooled row, logits and
/// loss are the padded pass's up to the matrix products' rounding (they block other row
/// counts differently: `≤ 1e-14` relative, tests/length_buckets.rs); the gradient sums the
/// runs' contributions in another order (rounding too).
#[derive(Clone, Debug)]
struct Buckets<D: Device<f64>> {
    runs: Vec<TokenBatch<D>>,
    /// Row `i` of the batch is row `order[i]` of the runs laid end to end.
    order: Tensor<(usize,), usize, D>,
}

/// Fewest examples in a run of [`Buckets`]: below it a run's per-op cost outweighs the
/// padding it saves (measured: docs/performance.md, "Length buckets").
pub(crate) const MIN_BUCKET: usize = 32;
/// Most runs per batch.
const MAX_BUCKETS: usize = 8;

impl<D: Device<f64>> TokenBatch<D> {
    /// `ids` holds `n` rows of `max_len` token ids (0 = padding); a batch of at least
    /// `2 · MIN_BUCKET` examples is also cut into [`Buckets`].
    pub(crate) fn new(dev: &D, ids: Vec<usize>, n: usize, max_len: usize) -> Self {
        let buckets = (n >= 2 * MIN_BUCKET).then(|| Buckets::new(dev, &ids, n, max_len));
        Self::whole(dev, ids, n, max_len, buckets)
    }

    fn whole(
        dev: &D,
        ids: Vec<usize>,
        n: usize,
        max_len: usize,
        buckets: Option<Buckets<D>>,
    ) -> Self {
        assert_eq!(ids.len(), n * max_len, "ids must hold n rows of max_len");
        let mask: Vec<f64> = ids.iter().map(|&i| f64::from(u8::from(i != 0))).collect();
        let key_bias: Vec<f64> = mask
            .iter()
            .map(|&m| if m > 0.0 { 0.0 } else { MASKED })
            .collect();
        let inv_count: Vec<f64> = (0..n)
            .map(|i| {
                let c: f64 = mask[i * max_len..(i + 1) * max_len].iter().sum();
                1.0 / c.max(1.0)
            })
            .collect();
        TokenBatch {
            ids: dev.tensor_from_vec(ids, (n * max_len,)),
            mask: dev.tensor_from_vec(mask, (n, max_len)),
            key_bias: dev.tensor_from_vec(key_bias, (n, max_len)),
            inv_count: dev.tensor_from_vec(inv_count, (n,)),
            buckets,
        }
    }
}

impl<D: Device<f64>> Buckets<D> {
    fn new(dev: &D, ids: &[usize], n: usize, max_len: usize) -> Self {
        // the length a row needs: up to its last real token
        let need = |i: usize| {
            let row = &ids[i * max_len..(i + 1) * max_len];
            row.iter().rposition(|&t| t != 0).map_or(1, |p| p + 1)
        };
        let mut by_len: Vec<usize> = (0..n).collect();
        by_len.sort_by_key(|&i| (need(i), i));
        let count = (n / MIN_BUCKET).clamp(1, MAX_BUCKETS);
        let mut runs = Vec::with_capacity(count);
        let mut order = vec![0; n];
        for b in 0..count {
            let rows = &by_len[b * n / count..(b + 1) * n / count];
            let len = rows.iter().map(|&i| need(i)).max().unwrap_or(1);
            let mut run_ids = Vec::with_capacity(rows.len() * len);
            for (k, &i) in rows.iter().enumerate() {
                order[i] = b * n / count + k;
                run_ids.extend_from_slice(&ids[i * max_len..i * max_len + len]);
            }
            runs.push(TokenBatch::whole(dev, run_ids, rows.len(), len, None));
        }
        Buckets {
            runs,
            order: dev.tensor_from_vec(order, (n,)),
        }
    }
}

/// Hands out the parameter matrices in `theta` order.
struct Params<'a, D: Device<f64>> {
    all: &'a [Mat<D, NoneTape>],
    next: usize,
}

impl<'a, D: Device<f64>> Params<'a, D> {
    fn take(&mut self) -> &'a Mat<D, NoneTape> {
        let p = &self.all[self.next];
        self.next += 1;
        p
    }

    /// Passes over `count` tensors without using them (a lesioned block's).
    fn pass_over(&mut self, count: usize) {
        self.next += count;
    }

    /// A 1-D tensor (stored `(len, 1)`) as `(len,)` on a fresh tape; the reshape keeps the
    /// tensor id, so its gradient lands on the parameter.
    fn vector<T: Tape<f64, D>>(&mut self) -> Tensor<(usize,), f64, D, T> {
        let p = self.take();
        let len = p.shape().0;
        p.retaped::<T>().reshape_like(&(len,))
    }

    fn matrix<T: Tape<f64, D>>(&mut self) -> Mat<D, T> {
        self.take().retaped::<T>()
    }

    /// `x Wᵀ + b` for row-major `x (rows, in)`, `W [out, in]`.
    fn linear<T: Tape<f64, D>>(&mut self, x: Mat<D, T>) -> Mat<D, T> {
        let w = self.matrix::<T>();
        let b = self.vector::<T>();
        let rows = x.shape().0;
        let out = w.shape().0;
        x.matmul(w.permute::<_, Axes2<1, 0>>()) + b.broadcast_like::<_, Axis<0>>(&(rows, out))
    }

    /// LayerNorm over the features (axis 1) of `x (rows, d)`.
    fn layer_norm<T: Tape<f64, D>>(&mut self, x: Mat<D, T>) -> Mat<D, T> {
        let g = self.vector::<T>();
        let b = self.vector::<T>();
        let shape = *x.shape();
        x.normalize::<Axis<1>>(LN_EPS) * g.broadcast_like::<_, Axis<0>>(&shape)
            + b.broadcast_like::<_, Axis<0>>(&shape)
    }
}

/// `h + alpha * f` (residual) or `f` (plain) keeping both tapes: `f` was computed from a
/// retaped copy of `h`, whose own tape holds every earlier op.
fn skip<S: Shape, D: Device<f64>, T: Tape<f64, D>>(
    variant: Variant,
    alpha: f64,
    h: Tensor<S, f64, D, T>,
    f: Tensor<S, f64, D, T>,
) -> Tensor<S, f64, D, T> {
    match variant {
        Variant::Residual => h + f * alpha,
        Variant::Plain => {
            let (_, tape) = h.split_tape();
            let (f, ftape) = f.split_tape();
            f.put_tape(tape.merge(ftape))
        }
    }
}

/// Host copies of the forward's intermediate tensors for [`Activations`].
struct Capture<'a> {
    acts: &'a mut Activations,
    /// Per token row (example-major): not padding.
    real: Vec<bool>,
}

impl Capture<'_> {
    /// The real-token rows of `m (N, cols)`: `(rows, cols, data)`.
    fn real_rows<D: Device<f64>, T>(&self, m: &Mat<D, T>) -> (usize, usize, Vec<f64>) {
        let (all, cols) = *m.shape();
        debug_assert_eq!(all, self.real.len(), "one mask entry per token row");
        let v = m.as_vec();
        let x: Vec<f64> = v
            .chunks(cols)
            .zip(&self.real)
            .filter(|(_, r)| **r)
            .flat_map(|(row, _)| row.iter().copied())
            .collect();
        (x.len() / cols.max(1), cols, x)
    }

    fn input(&mut self, weight: String, (rows, cols, x): (usize, usize, Vec<f64>)) {
        self.acts.inputs.push(LayerInput {
            weight,
            rows,
            cols,
            x,
        });
    }
}

/// Logits `(classes, n)` (kept in that orientation: see `dfdx_backend.rs`).
/// `params` holds one matrix per tensor of [`tensors`], in order; 1-D tensors come as
/// `(len, 1)`. `lesioned[b]`: block `b` is the identity (empty: none is). `capture`: where to
/// copy the linear layers' inputs and the block streams.
///
/// A batch with [`Buckets`] runs each run of similar length through the encoder and puts
/// the pooled rows back in batch order before the head; a capture runs the batch whole (its
/// token rows are copied in batch order).
pub(crate) fn forward<D: Device<f64>, T: Tape<f64, D>>(
    spec: &ModelSpec,
    shape: &TransformerShape,
    variant: Variant,
    params: &[Mat<D, NoneTape>],
    batch: &TokenBatch<D>,
    lesioned: &[bool],
    capture: Option<&mut Activations>,
) -> Mat<D, T> {
    let n = batch.inv_count.shape().0;
    let (pooled, next) = match (&batch.buckets, capture) {
        (Some(b), None) => {
            let mut runs = b
                .runs
                .iter()
                .map(|run| encode::<D, T>(spec, shape, variant, params, run, lesioned, None));
            let (first, next) = runs.next().expect("a bucketed batch has runs");
            let all = runs.fold(first, |all, (x, _)| (all, x).concat_along(Axis::<0>));
            (all.gather(b.order.clone()), next)
        }
        (_, capture) => encode(spec, shape, variant, params, batch, lesioned, capture),
    };

    // head: W (classes, d) @ pooledᵀ (d, n), a fresh (classes, n) result
    let mut p = Params { all: params, next };
    let w = p.matrix::<T>();
    let b = p.vector::<T>();
    let classes = w.shape().0;
    let logits = w.matmul(pooled.permute::<_, Axes2<1, 0>>())
        + b.broadcast_like::<_, Axis<1>>(&(classes, n));
    debug_assert_eq!(
        p.next,
        params.len(),
        "every parameter is used or passed over once"
    );
    logits
}

/// The encoder up to the pooled rows `(n, d)`, and the index of the head's first tensor.
/// The sequence length is the batch's own (a bucket's may be shorter than `max_len`).
fn encode<D: Device<f64>, T: Tape<f64, D>>(
    spec: &ModelSpec,
    shape: &TransformerShape,
    variant: Variant,
    params: &[Mat<D, NoneTape>],
    batch: &TokenBatch<D>,
    lesioned: &[bool],
    capture: Option<&mut Activations>,
) -> (Mat<D, T>, usize) {
    let n = batch.inv_count.shape().0;
    let mut cap = capture.map(|acts| Capture {
        real: batch.mask.as_vec().iter().map(|&m| m > 0.0).collect(),
        acts,
    });
    let d = spec.width;
    let l = batch.mask.shape().1;
    let heads = shape.heads;
    let dh = d / heads;
    let rows = n * l;
    assert_eq!(batch.ids.shape().0, rows, "batch holds n * max_len ids");
    let mut p = Params {
        all: params,
        next: 0,
    };

    // embeddings: (N, d), one row per token
    let embed = p.matrix::<T>();
    let tok: Mat<D, T> = embed.gather(batch.ids.clone());
    let pos = p.matrix::<T>();
    // a shorter bucket takes the first `l` positions
    let pos = if pos.shape().0 == l {
        pos
    } else {
        let dev = pos.device().clone();
        pos.gather(dev.tensor_from_vec((0..l).collect(), (l,)))
    };
    let pos = pos.broadcast_like::<_, Axis<0>>(&(n, l, d));
    let mut h: Mat<D, T> = (tok.reshape_like(&(n, l, d)) + pos).reshape_like(&(rows, d));

    let scale = 1.0 / (dh as f64).sqrt();
    let act = spec.activation;
    for b in 0..spec.depth {
        let h_in = cap.as_ref().map(|c| c.real_rows(&h));
        if lesioned.get(b).copied().unwrap_or(false) {
            // the identity: h passes through both sub-layers
            p.pass_over(BLOCK_TENSORS);
        } else {
            // attention sub-layer
            let x = p.layer_norm(h.retaped::<T>());
            if let Some(c) = cap.as_mut() {
                let xs = c.real_rows(&x);
                for w in ["q", "k", "v"] {
                    c.input(format!("blocks.{b}.attn.{w}.weight"), xs.clone());
                }
            }
            // (N, d) = (n, L, H, dh) -> per head (n, H, L, dh) or, for K, (n, H, dh, L)
            // 1/sqrt(dh) on Q (N x d) rather than on the scores (n x H x L x L, twice as big
            // here)
            let q = (p.linear(x.retaped::<T>()) * scale)
                .reshape_like(&(n, l, heads, dh))
                .permute::<_, Axes4<0, 2, 1, 3>>();
            let k = p
                .linear(x.retaped::<T>())
                .reshape_like(&(n, l, heads, dh))
                .permute::<_, Axes4<0, 2, 3, 1>>();
            let v = p
                .linear(x)
                .reshape_like(&(n, l, heads, dh))
                .permute::<_, Axes4<0, 2, 1, 3>>();
            // a fresh, contiguous score tensor: softmax's backward needs one
            let scores = q.matmul(k)
                + batch
                    .key_bias
                    .clone()
                    .broadcast_like::<_, Axes2<1, 2>>(&(n, heads, l, l));
            let att = scores.softmax::<Axis<3>>().matmul(v); // (n, H, L, dh)
            let merged = att
                .permute::<_, Axes4<0, 2, 1, 3>>()
                .reshape_like(&(rows, d)); // copies: (n, L, H, dh) -> (N, d)
            if let Some(c) = cap.as_mut() {
                let xs = c.real_rows(&merged);
                c.input(format!("blocks.{b}.attn.out.weight"), xs);
            }
            let f = p.linear(merged);
            h = skip(variant, spec.alpha, h, f);

            // MLP sub-layer
            let x = p.layer_norm(h.retaped::<T>());
            if let Some(c) = cap.as_mut() {
                let xs = c.real_rows(&x);
                c.input(format!("blocks.{b}.mlp.fc1.weight"), xs);
            }
            let z = p.linear(x);
            let z = match act {
                Activation::Relu => z.relu(),
                // dfdx 0.13's exact (erf) GELU has a wrong derivative: the tanh form, as the MLP
                Activation::Gelu => z.fast_gelu(),
                Activation::Tanh => z.tanh(),
            };
            if let Some(c) = cap.as_mut() {
                let xs = c.real_rows(&z);
                c.input(format!("blocks.{b}.mlp.fc2.weight"), xs);
            }
            let f = p.linear(z);
            h = skip(variant, spec.alpha, h, f);
        }
        if let (Some(c), Some((rows, cols, h_in))) = (cap.as_mut(), h_in) {
            let h_out = c.real_rows(&h).2;
            c.acts.blocks.push(BlockStream {
                rows,
                cols,
                h_in,
                h_out,
            });
        }
    }

    // final LayerNorm per token, mean over the real tokens
    let h = p.layer_norm(h).reshape_like(&(n, l, d));
    let summed = (h * batch.mask.clone().broadcast_like::<_, Axis<2>>(&(n, l, d)))
        .sum::<(usize, usize), Axis<1>>();
    let pooled = summed
        * batch
            .inv_count
            .clone()
            .broadcast_like::<_, Axis<1>>(&(n, d));

    if let Some(c) = cap.as_mut() {
        c.input("head.weight".into(), (n, d, pooled.as_vec()));
    }
    (pooled, p.next)
}

type Mat3<D, T> = Tensor<(usize, usize, usize), f64, D, T>;

/// [`Params`] for a block of `k` parameter vectors: every tensor as `(k, rows, cols)`, copy
/// `c` being vector `c`'s slice.
struct BlockParams<'a, D: Device<f64>> {
    all: &'a [Mat3<D, NoneTape>],
    next: usize,
}

type Owned<D> = OwnedTape<f64, D>;

impl<'a, D: Device<f64>> BlockParams<'a, D> {
    fn matrix(&mut self) -> Mat3<D, Owned<D>> {
        let p = &self.all[self.next];
        self.next += 1;
        p.retaped()
    }

    /// A 1-D tensor (stored `(k, len, 1)`) as `(k, len)`.
    fn vector(&mut self) -> Tensor<(usize, usize), f64, D, Owned<D>> {
        let p = self.matrix();
        let (k, len, _) = *p.shape();
        p.reshape_like(&(k, len))
    }

    /// `x Wᵀ + b` per copy, `x (k, rows, in)`, `W (k, out, in)`.
    fn linear(&mut self, x: Mat3<D, Owned<D>>) -> Mat3<D, Owned<D>> {
        let w = self.matrix();
        let b = self.vector();
        let (k, rows, _) = *x.shape();
        let out = w.shape().1;
        x.matmul(w.permute::<_, Axes3<0, 2, 1>>()) + b.broadcast_like::<_, Axis<1>>(&(k, rows, out))
    }

    fn layer_norm(&mut self, x: Mat3<D, Owned<D>>) -> Mat3<D, Owned<D>> {
        let g = self.vector();
        let b = self.vector();
        let shape = *x.shape();
        x.normalize::<Axis<2>>(LN_EPS) * g.broadcast_like::<_, Axis<1>>(&shape)
            + b.broadcast_like::<_, Axis<1>>(&shape)
    }
}

/// [`forward`] (intact, with a tape) for `k` parameter vectors in one pass: the copies are a
/// leading batch dimension, so every linear layer is one batched matrix product over `k`,
/// attention runs over `k · n` sentences and LayerNorm, softmax and the activation over
/// `k · N` rows. The copies never meet. Returns each copy's mean loss `(k,)` over the batch,
/// whose sum's gradient is every copy's own gradient.
pub(crate) fn loss_block<D: Device<f64>>(
    spec: &ModelSpec,
    shape: &TransformerShape,
    variant: Variant,
    params: &[Mat3<D, NoneTape>],
    batch: &TokenBatch<D>,
    onehot: &Mat<D, NoneTape>,
) -> Tensor<(usize,), f64, D, Owned<D>> {
    let dev = batch.mask.device().clone();
    let n = batch.inv_count.shape().0;
    let k = params[0].shape().0;
    let (d, l, heads) = (spec.width, shape.max_len, shape.heads);
    let dh = d / heads;
    let rows = n * l;
    let kn = k * n;
    let mut p = BlockParams {
        all: params,
        next: 0,
    };

    // embeddings: copy c's table is rows c·vocab.. of the stacked tables
    let vocab = params[0].shape().1;
    let ids = batch.ids.as_vec();
    let ids: Vec<usize> = (0..k)
        .flat_map(|c| ids.iter().map(move |&i| i + c * vocab))
        .collect();
    let embed = p.matrix().reshape_like(&(k * vocab, d));
    let tok = embed.gather(dev.tensor_from_vec(ids, (k * rows,)));
    let pos = p.matrix().broadcast_like::<_, Axis<1>>(&(k, n, l, d));
    let mut h: Mat3<D, Owned<D>> =
        (tok.reshape_like(&(k, n, l, d)) + pos).reshape_like(&(k, rows, d));

    // the batch's masks, once per copy
    let key_bias = batch
        .key_bias
        .clone()
        .broadcast_like::<_, Axis<0>>(&(k, n, l))
        .reshape_like(&(kn, l));
    let mask = batch
        .mask
        .clone()
        .broadcast_like::<_, Axis<0>>(&(k, n, l))
        .reshape_like(&(kn, l));
    let inv_count = batch
        .inv_count
        .clone()
        .broadcast_like::<_, Axis<0>>(&(k, n))
        .reshape_like(&(kn,));

    let scale = 1.0 / (dh as f64).sqrt();
    for _ in 0..spec.depth {
        let x = p.layer_norm(h.retaped());
        let heads_of = |t: Mat3<D, Owned<D>>| t.reshape_like(&(kn, l, heads, dh));
        let q = heads_of(p.linear(x.retaped()) * scale).permute::<_, Axes4<0, 2, 1, 3>>();
        let kt = heads_of(p.linear(x.retaped())).permute::<_, Axes4<0, 2, 3, 1>>();
        let v = heads_of(p.linear(x)).permute::<_, Axes4<0, 2, 1, 3>>();
        let scores = q.matmul(kt)
            + key_bias
                .clone()
                .broadcast_like::<_, Axes2<1, 2>>(&(kn, heads, l, l));
        let att = scores.softmax::<Axis<3>>().matmul(v);
        let merged = att
            .permute::<_, Axes4<0, 2, 1, 3>>()
            .reshape_like(&(k, rows, d));
        let f = p.linear(merged);
        h = skip(variant, spec.alpha, h, f);

        let x = p.layer_norm(h.retaped());
        let z = p.linear(x);
        let z = match spec.activation {
            Activation::Relu => z.relu(),
            Activation::Gelu => z.fast_gelu(),
            Activation::Tanh => z.tanh(),
        };
        let f = p.linear(z);
        h = skip(variant, spec.alpha, h, f);
    }

    let h = p.layer_norm(h).reshape_like(&(kn, l, d));
    let summed =
        (h * mask.broadcast_like::<_, Axis<2>>(&(kn, l, d))).sum::<(usize, usize), Axis<1>>();
    let pooled =
        (summed * inv_count.broadcast_like::<_, Axis<1>>(&(kn, d))).reshape_like(&(k, n, d));
    let w = p.matrix();
    let b = p.vector();
    let classes = w.shape().1;
    let logits = w.matmul(pooled.permute::<_, Axes3<0, 2, 1>>())
        + b.broadcast_like::<_, Axis<2>>(&(k, classes, n));
    debug_assert_eq!(p.next, params.len(), "every parameter is used once");
    super::dfdx_backend::block_nll(logits, onehot)
}
