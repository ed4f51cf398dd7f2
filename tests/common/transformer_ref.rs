//! A plain-Rust transformer forward (tests/transformer.rs and tests/model_structured.rs check
//! dfdx's forward, gradient and captures against it).

use resprune::model::{ModelSpec, Variant};

/// The transformer forward in plain Rust, one example at a time, straight from the module
/// docs of src/model/transformer.rs: the oracle the dfdx forward and its captures are
/// checked against.
pub struct TransformerRef<'a> {
    pub spec: &'a ModelSpec,
    pub theta: &'a [f64],
}

/// Per example: the token rows each layer reads, and the pooled vector.
#[derive(Default)]
pub struct Trace {
    /// Per block: `LN(h)` before attention, merged heads, `LN(h)` before the MLP, activated
    /// hidden, stream in, stream out; each one row per token.
    pub qkv: Vec<Vec<Vec<f64>>>,
    pub out: Vec<Vec<Vec<f64>>>,
    pub fc1: Vec<Vec<Vec<f64>>>,
    pub fc2: Vec<Vec<Vec<f64>>>,
    pub h_in: Vec<Vec<Vec<f64>>>,
    pub h_out: Vec<Vec<Vec<f64>>>,
    pub pooled: Vec<f64>,
}

impl TransformerRef<'_> {
    pub fn t(&self, name: &str) -> &[f64] {
        let l = self.spec.layout();
        let t = l
            .get(name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
            .clone();
        &self.theta[t.range()]
    }

    pub fn linear(&self, prefix: &str, x: &[f64]) -> Vec<f64> {
        let w = self.t(&format!("{prefix}.weight"));
        let b = self.t(&format!("{prefix}.bias"));
        let inp = x.len();
        b.iter()
            .enumerate()
            .map(|(r, bias)| bias + (0..inp).map(|c| w[r * inp + c] * x[c]).sum::<f64>())
            .collect()
    }

    /// PyTorch LayerNorm: population variance, eps 1e-5.
    pub fn ln(&self, prefix: &str, x: &[f64]) -> Vec<f64> {
        let g = self.t(&format!("{prefix}.weight"));
        let b = self.t(&format!("{prefix}.bias"));
        let d = x.len() as f64;
        let mean = x.iter().sum::<f64>() / d;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d;
        let sd = (var + 1e-5).sqrt();
        x.iter()
            .enumerate()
            .map(|(i, v)| (v - mean) / sd * g[i] + b[i])
            .collect()
    }

    /// Merged heads (before the out projection); padded keys left out of the softmax.
    fn heads(&self, prefix: &str, x: &[Vec<f64>], real: &[bool]) -> Vec<Vec<f64>> {
        let shape = self.spec.transformer.unwrap();
        let d = self.spec.width;
        let dh = d / shape.heads;
        let proj = |p: &str| -> Vec<Vec<f64>> {
            x.iter()
                .map(|r| self.linear(&format!("{prefix}.{p}"), r))
                .collect()
        };
        let (q, k, v) = (proj("q"), proj("k"), proj("v"));
        let keys: Vec<usize> = (0..x.len()).filter(|&s| real[s]).collect();
        (0..x.len())
            .map(|t| {
                let mut o = vec![0.0; d];
                for hd in 0..shape.heads {
                    let cols = hd * dh..(hd + 1) * dh;
                    let scores: Vec<f64> = keys
                        .iter()
                        .map(|&s| {
                            cols.clone().map(|c| q[t][c] * k[s][c]).sum::<f64>()
                                / (dh as f64).sqrt()
                        })
                        .collect();
                    let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for (j, &s) in keys.iter().enumerate() {
                        for c in cols.clone() {
                            o[c] += e[j] / z * v[s][c];
                        }
                    }
                }
                o
            })
            .collect()
    }

    fn skip(&self, v: Variant, h: &[Vec<f64>], f: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
        match v {
            Variant::Residual => h
                .iter()
                .zip(&f)
                .map(|(a, b)| {
                    a.iter()
                        .zip(b)
                        .map(|(x, y)| x + self.spec.alpha * y)
                        .collect()
                })
                .collect(),
            Variant::Plain => f,
        }
    }

    /// Every intermediate of one example (`ids`: its `max_len` ids, 0 = padding).
    pub fn trace(&self, v: Variant, ids: &[usize]) -> Trace {
        self.trace_with(v, ids, false)
    }

    /// [`TransformerRef::trace`], with `identity_blocks` every block skipped entirely.
    fn trace_with(&self, v: Variant, ids: &[usize], identity_blocks: bool) -> Trace {
        let d = self.spec.width;
        let emb = self.t("embed.weight");
        let pos = self.t("pos.weight");
        let real: Vec<bool> = ids.iter().map(|&i| i != 0).collect();
        let mut h: Vec<Vec<f64>> = ids
            .iter()
            .enumerate()
            .map(|(t, &i)| (0..d).map(|c| emb[i * d + c] + pos[t * d + c]).collect())
            .collect();
        let mut tr = Trace::default();
        let blocks = if identity_blocks { 0 } else { self.spec.depth };
        for b in 0..blocks {
            tr.h_in.push(h.clone());
            let a = format!("blocks.{b}.attn");
            let x: Vec<_> = h.iter().map(|r| self.ln(&format!("{a}.norm"), r)).collect();
            let o = self.heads(&a, &x, &real);
            let f = o
                .iter()
                .map(|r| self.linear(&format!("{a}.out"), r))
                .collect();
            tr.qkv.push(x);
            tr.out.push(o);
            h = self.skip(v, &h, f);
            let m = format!("blocks.{b}.mlp");
            let x: Vec<_> = h.iter().map(|r| self.ln(&format!("{m}.norm"), r)).collect();
            let z: Vec<Vec<f64>> = x
                .iter()
                .map(|r| {
                    self.linear(&format!("{m}.fc1"), r)
                        .into_iter()
                        .map(|z| super::activate(self.spec.activation, z))
                        .collect()
                })
                .collect();
            let f = z
                .iter()
                .map(|r| self.linear(&format!("{m}.fc2"), r))
                .collect();
            tr.fc1.push(x);
            tr.fc2.push(z);
            h = self.skip(v, &h, f);
            tr.h_out.push(h.clone());
        }
        let count = real.iter().filter(|r| **r).count() as f64;
        tr.pooled = vec![0.0; d];
        for (t, r) in h.iter().enumerate() {
            if real[t] {
                let y = self.ln("final_norm", r);
                for (p, y) in tr.pooled.iter_mut().zip(y) {
                    *p += y / count;
                }
            }
        }
        // padded token rows are dropped, as the capture drops them
        for rows in [
            &mut tr.qkv,
            &mut tr.out,
            &mut tr.fc1,
            &mut tr.fc2,
            &mut tr.h_in,
            &mut tr.h_out,
        ] {
            for block in rows.iter_mut() {
                let kept: Vec<Vec<f64>> = block
                    .iter()
                    .zip(&real)
                    .filter(|(_, r)| **r)
                    .map(|(row, _)| row.clone())
                    .collect();
                *block = kept;
            }
        }
        tr
    }

    /// Logits of one example; with `identity_blocks` the blocks are skipped entirely.
    pub fn logits(&self, v: Variant, ids: &[usize], identity_blocks: bool) -> Vec<f64> {
        self.linear("head", &self.trace_with(v, ids, identity_blocks).pooled)
    }

    /// Row-major `(n, classes)` logits of rows of `max_len` ids given as f64.
    pub fn batch_logits(&self, v: Variant, x: &[f64], identity_blocks: bool) -> Vec<f64> {
        let l = self.spec.inputs;
        x.chunks(l)
            .flat_map(|row| {
                let ids: Vec<usize> = row.iter().map(|&i| i as usize).collect();
                self.logits(v, &ids, identity_blocks)
            })
            .collect()
    }
}
