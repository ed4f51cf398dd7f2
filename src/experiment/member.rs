//! The models an experiment trains, as one collection: the residual/plain pair and one
//! residual model per `model.alpha_sweep` value, all from the same initial `theta`. Each
//! [`Member`] carries what the stages produce for it, so no stage keeps lists in step by
//! index.

use crate::config::{Config, ModelKind};
use crate::data::{DataSummary, Dataset};
use crate::model::{Backend, ModelSpec, Network, ParamKind, ParamLayout, PreparedBatch, Variant};
use crate::prune::Pruned;
use crate::record::checkpoint::{PrunedWeights, VariantWeights};
use crate::record::{AlphaPoint, LayerInfo, ModelSummary, VariantResult};
use crate::rng::{stream, Stream};

/// What a member stands for in the record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Role {
    /// One model of the residual/plain pair: reported live, stored as `residual`/`plain`.
    Pair(Variant),
    /// The residual model at a fixed `alpha` of `model.alpha_sweep`: stored under
    /// `alpha_sweep`, not reported live.
    AlphaPoint(f64),
}

/// One model through the pipeline.
pub struct Member {
    pub role: Role,
    pub net: Network,
    /// Trained in place by the train stage.
    pub theta: Vec<f64>,
    /// The evaluation split, prepared for this network.
    pub eval: PreparedBatch,
    /// History, spectrum and learned scales as the record stores them (pruning rows are in
    /// `pruned` until the end).
    pub result: VariantResult,
    /// The Hessian diagonal, when a pruning method needs it.
    pub diagonal: Option<Vec<f64>>,
    /// Top and bottom Hessian eigenvectors, for the mechanism of each pruning row.
    pub basis: Option<crate::curvature::EigenBasis>,
    /// Every pruning row with its mask, in sweep order.
    pub pruned: Vec<Pruned>,
}

impl Member {
    pub fn variant(&self) -> Variant {
        self.net.variant()
    }

    /// Whether its events go to the live views (the pair; sweep points stay quiet).
    pub fn is_live(&self) -> bool {
        matches!(self.role, Role::Pair(_))
    }

    /// Each block's trained residual scale (`model.alpha = "learned"`), else empty.
    pub fn learned_scales(&self) -> Vec<f64> {
        self.net
            .layout()
            .tensors
            .iter()
            .filter(|t| t.kind == ParamKind::Scale)
            .map(|t| self.theta[t.offset])
            .collect()
    }
}

/// The model spec a config describes, given the data it will see.
pub fn model_spec(cfg: &Config, data: &DataSummary) -> ModelSpec {
    cfg.model_spec(data.features, data.classes, data.vocab_size)
}

/// The initial `theta` shared by every member.
pub fn initial_theta(seed: u64, spec: &ModelSpec) -> Vec<f64> {
    spec.init(&mut stream(seed, Stream::Init))
}

/// The pair, then one residual model per `model.alpha_sweep` value, all from one `theta`.
pub fn members(
    cfg: &Config,
    spec: &ModelSpec,
    seed: u64,
    backend: &Backend,
    eval: &Dataset,
) -> Vec<Member> {
    let theta0 = initial_theta(seed, spec);
    let mut nets = vec![
        (
            Role::Pair(Variant::Residual),
            Network::on(spec, Variant::Residual, backend.clone()),
        ),
        (
            Role::Pair(Variant::Plain),
            Network::on(spec, Variant::Plain, backend.clone()),
        ),
    ];
    for &alpha in &cfg.model.alpha_sweep {
        // a sweep point is a fixed scale, even when the pair's residual learns its own
        let s = ModelSpec {
            alpha,
            learned_alpha: false,
            ..spec.clone()
        };
        nets.push((
            Role::AlphaPoint(alpha),
            Network::on(&s, Variant::Residual, backend.clone()),
        ));
    }
    nets.into_iter()
        .map(|(role, net)| Member {
            role,
            theta: net.spec().theta_for(net.variant(), &theta0),
            eval: net.prepare(&eval.x, &eval.y),
            result: VariantResult::new(net.variant()),
            diagonal: None,
            basis: None,
            pruned: Vec::new(),
            net,
        })
        .collect()
}

/// The members' results in the record's places.
pub struct Results {
    pub residual: VariantResult,
    pub plain: VariantResult,
    pub alpha_sweep: Vec<AlphaPoint>,
}

/// Moves each member's result (its pruning rows included) to where the record keeps it.
pub fn into_results(members: Vec<Member>) -> Results {
    let mut out = Results {
        residual: VariantResult::new(Variant::Residual),
        plain: VariantResult::new(Variant::Plain),
        alpha_sweep: Vec::new(),
    };
    for m in members {
        let mut result = m.result;
        result.pruning = m.pruned.into_iter().map(|p| p.row).collect();
        match m.role {
            Role::Pair(Variant::Residual) => out.residual = result,
            Role::Pair(Variant::Plain) => out.plain = result,
            Role::AlphaPoint(alpha) => out.alpha_sweep.push(AlphaPoint {
                alpha,
                residual: result,
            }),
        }
    }
    out
}

/// What a checkpoint stores for the pair: initial and trained `theta` and every row's mask;
/// `theta0` is the shared [`initial_theta`] they started from.
pub fn weights(members: &[Member], theta0: &[f64]) -> Vec<VariantWeights> {
    members
        .iter()
        .filter(|m| m.is_live())
        .map(|m| VariantWeights {
            variant: m.variant(),
            theta: m.theta.clone(),
            theta0: m.net.spec().theta_for(m.variant(), theta0),
            pruned: m
                .pruned
                .iter()
                .map(|p| PrunedWeights {
                    method: p.row.method,
                    granularity: p.row.granularity,
                    ratio: p.row.ratio,
                    keep: p.keep.clone(),
                    theta: p.theta.clone(),
                })
                .collect(),
        })
        .collect()
}

/// The architecture and layer table of the pair, as the record stores it.
pub fn model_summary(spec: &ModelSpec) -> ModelSummary {
    let layout = spec.layout();
    let layers = layout
        .layers()
        .into_iter()
        .map(|name| {
            let tensors: Vec<_> = layout.tensors.iter().filter(|t| t.layer == name).collect();
            let shape = tensors
                .iter()
                .find(|t| matches!(t.kind, ParamKind::Weight | ParamKind::Embedding))
                .map(|t| t.shape.clone())
                .unwrap_or_default();
            LayerInfo {
                skip: name.starts_with("blocks."),
                params: tensors.iter().map(|t| t.len).sum(),
                shape,
                name,
            }
        })
        .collect();
    let t = spec.transformer.as_ref();
    ModelSummary {
        kind: ModelKind::of(spec),
        // the residual model's count: with learned scales, `depth` more than `layers` hold
        params: spec.layout_for(Variant::Residual).len,
        inputs: spec.inputs,
        width: spec.width,
        depth: spec.depth,
        classes: spec.classes,
        activation: spec.activation,
        alpha: spec.alpha,
        learned_alpha: spec.learned_alpha,
        heads: t.map(|t| t.heads),
        ff: t.map(|t| t.ff),
        vocab: t.map(|t| t.vocab),
        layers,
    }
}

/// Each layer's name and its (contiguous) range in `theta`.
pub fn layer_ranges(layout: &ParamLayout) -> Vec<(String, std::ops::Range<usize>)> {
    layout
        .layers()
        .into_iter()
        .map(|l| {
            let ts: Vec<_> = layout.tensors.iter().filter(|t| t.layer == l).collect();
            let r = ts[0].offset..ts.last().map_or(0, |t| t.range().end);
            (l, r)
        })
        .collect()
}
