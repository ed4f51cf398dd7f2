//! Block lesions (Veit et al., NeurIPS 2016): what each block is worth to the trained model,
//! measured by taking it out.
//!
//! For block `b` of the residual network `h + α F(h)` → `h` (the skip carries the stream on);
//! for the plain network `F(h)` has no such path, so two counterfactuals are stored side by
//! side and labelled: *identity* substitution `F(h)` → `h` (the block taken out, the next
//! block reads what this one read) and *zeroing* `F(h)` → `0` (its weights and biases set to
//! zero: the block's output is `act(0) = 0`). In the residual network the two coincide (the
//! branch output is 0 either way), so it stores the identity only.
//!
//! Then the sweep of removing the `k` least important blocks, `k = 1..depth−1`, by each
//! ranking: each criterion's block score (`prune::criteria`), and the *oracle* that ranks by
//! each block's own single-lesion ΔL — the best any one-shot ranking can hope to track.

use serde::{Deserialize, Serialize};

use crate::config::PruneMethod;
use crate::model::{Eval, Network, ParamKind, PreparedBatch, Variant};

/// How a block is taken out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counterfactual {
    /// The block computes the identity: residual `h + αF(h)` → `h`, plain `F(h)` → `h`.
    Identity,
    /// The block's weights and biases are 0: plain `F(h)` → `act(0) = 0`.
    Zero,
}

impl Counterfactual {
    /// The counterfactuals measured for a variant (residual: identity only, see the module
    /// docs).
    pub fn for_variant(v: Variant) -> &'static [Counterfactual] {
        match v {
            Variant::Residual => &[Counterfactual::Identity],
            Variant::Plain => &[Counterfactual::Identity, Counterfactual::Zero],
        }
    }

    pub fn name(self) -> &'static str {
        crate::names::serde_name(&self)
    }
}

impl std::fmt::Display for Counterfactual {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// One block taken out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LesionRow {
    pub block: usize,
    pub counterfactual: Counterfactual,
    pub loss: f64,
    pub accuracy: f64,
    /// `loss − loss_before`.
    pub delta_loss: f64,
    /// `(loss − loss_before) / loss_before`, as a pruning row's `sensitivity`.
    pub sensitivity: f64,
}

/// The `k` least important blocks by one ranking, taken out together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LesionSweepRow {
    /// The criterion whose block scores ranked the blocks; `None`: the oracle (each block's
    /// own single-lesion ΔL, smallest first).
    pub criterion: Option<PruneMethod>,
    pub counterfactual: Counterfactual,
    pub k: usize,
    /// The blocks removed, least important first.
    pub blocks: Vec<usize>,
    pub loss: f64,
    pub accuracy: f64,
    pub delta_loss: f64,
    pub sensitivity: f64,
}

/// The lesion results of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Lesions {
    pub loss_before: f64,
    pub accuracy_before: f64,
    /// Every block under every counterfactual of the variant, block-major.
    pub single: Vec<LesionRow>,
    pub sweep: Vec<LesionSweepRow>,
}

impl Lesions {
    /// The single lesion of `block` under `c`.
    pub fn single(&self, block: usize, c: Counterfactual) -> Option<&LesionRow> {
        self.single
            .iter()
            .find(|r| r.block == block && r.counterfactual == c)
    }
}

/// Indices of block `b`'s weights and biases (`blocks.b` for the MLP; `blocks.b.attn` and
/// `blocks.b.mlp` for the transformer), LayerNorms and learned scales excluded.
pub fn block_params(net: &Network, b: usize) -> Vec<usize> {
    let layer = format!("blocks.{b}");
    let inner = format!("blocks.{b}.");
    net.layout()
        .tensors
        .iter()
        .filter(|t| t.layer == layer || t.layer.starts_with(&inner))
        .filter(|t| matches!(t.kind, ParamKind::Weight | ParamKind::Bias))
        .flat_map(|t| t.range())
        .collect()
}

/// The model with `blocks` taken out under `c`.
pub fn evaluate_without(
    net: &Network,
    theta: &[f64],
    batch: &PreparedBatch,
    blocks: &[usize],
    c: Counterfactual,
) -> Eval {
    match c {
        Counterfactual::Identity => {
            let mut skip = vec![false; net.spec().depth];
            for &b in blocks {
                skip[b] = true;
            }
            net.evaluate_lesioned(theta, batch, &skip)
        }
        Counterfactual::Zero => {
            let mut zeroed = theta.to_vec();
            for &b in blocks {
                for i in block_params(net, b) {
                    zeroed[i] = 0.0;
                }
            }
            net.evaluate(&zeroed, batch)
        }
    }
}

/// The `k` lowest scores' blocks, least important first (ties to the lower block).
pub fn least_important(scores: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// Every single lesion, then the sweep over `k = 1..depth−1` for the oracle and each
/// `(criterion, block scores)` of `rankings`.
pub fn lesions(
    net: &Network,
    theta: &[f64],
    eval: &PreparedBatch,
    rankings: &[(PruneMethod, Vec<f64>)],
) -> Lesions {
    let depth = net.spec().depth;
    let before = net.evaluate(theta, eval);
    let row = |blocks: &[usize], c: Counterfactual| {
        let e = evaluate_without(net, theta, eval, blocks, c);
        (
            e,
            e.loss - before.loss,
            super::sensitivity(before.loss, e.loss),
        )
    };
    let cfs = Counterfactual::for_variant(net.variant());
    let mut single = Vec::new();
    for block in 0..depth {
        for &c in cfs {
            let (e, delta_loss, sensitivity) = row(&[block], c);
            single.push(LesionRow {
                block,
                counterfactual: c,
                loss: e.loss,
                accuracy: e.accuracy,
                delta_loss,
                sensitivity,
            });
        }
    }
    let mut sweep = Vec::new();
    for &c in cfs {
        let oracle: Vec<f64> = (0..depth)
            .map(|b| {
                single
                    .iter()
                    .find(|r| r.block == b && r.counterfactual == c)
                    .map_or(f64::INFINITY, |r| r.delta_loss)
            })
            .collect();
        let all =
            std::iter::once((None, &oracle)).chain(rankings.iter().map(|(m, s)| (Some(*m), s)));
        for (criterion, scores) in all {
            for k in 1..depth {
                let blocks = least_important(scores, k);
                let (e, delta_loss, sensitivity) = row(&blocks, c);
                sweep.push(LesionSweepRow {
                    criterion,
                    counterfactual: c,
                    k,
                    blocks,
                    loss: e.loss,
                    accuracy: e.accuracy,
                    delta_loss,
                    sensitivity,
                });
            }
        }
    }
    Lesions {
        loss_before: before.loss,
        accuracy_before: before.accuracy,
        single,
        sweep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_important_blocks_come_lowest_score_first_ties_to_the_lower_block() {
        assert_eq!(least_important(&[0.3, 0.1, 0.2, 0.1], 3), vec![1, 3, 2]);
        assert_eq!(least_important(&[1.0, f64::NAN, 0.5], 2), vec![2, 0]);
    }

    #[test]
    fn the_residual_network_has_one_counterfactual_the_plain_two() {
        assert_eq!(
            Counterfactual::for_variant(Variant::Residual),
            &[Counterfactual::Identity]
        );
        assert_eq!(Counterfactual::for_variant(Variant::Plain).len(), 2);
        assert_eq!(Counterfactual::Zero.name(), "zero");
    }
}
