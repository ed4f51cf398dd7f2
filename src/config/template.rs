//! The commented template `resprune-tui new NAME` writes: every key with its default, the
//! numbers taken from the defaults themselves (tests/config.rs parses it back and compares).

use super::{Config, DataConfig, HessianConfig, ModelConfig, PruneConfig, TrainConfig};

/// A commented template holding every key with its default, for `resprune-tui new NAME`.
pub fn template(name: &str) -> String {
    let d = Config::named(name);
    [
        top(&d),
        data(&d.data),
        model(&d.model),
        train(&d.train),
        hessian(&d.hessian),
        prune(&d.prune),
        SWEEP.to_string(),
    ]
    .join("\n")
}

/// The header and the top-level keys.
fn top(d: &Config) -> String {
    format!(
        r#"# resprune-tui experiment: a residual and a plain model of the same shape, trained from
# the same theta on the same data order; Hessian spectrum of each; pruning sweep.
# Every key is shown with its default. Run it with: resprune-tui run {name}.toml

name = "{name}"
seed = {seed}          # data, split, init and batch order all follow from it
device = "cpu"     # cpu | cuda (needs a build with --features cuda) | auto
threads = 0        # kernel threads, 0 = one per core (records are reproducible per thread count)
replicates = 1     # run the pair with seeds seed, seed+1, ...; 2+ give mean ± sd and verdicts
# seeds = [0, 1, 2, 3, 4]   # explicit seeds instead of seed/replicates
significance = 0.05        # level of the paired tests behind each verdict
"#,
        name = d.name,
        seed = d.seed,
    )
}

/// The `[data]` table.
fn data(d: &DataConfig) -> String {
    format!(
        r#"[data]
source = "synthetic"   # synthetic | teacher | csv | breast_cancer | movie_reviews | imdb | text_csv
samples = {samples}          # synthetic, teacher: examples drawn
features = {features}          # synthetic, teacher: x ~ N(0, 1) in this many dimensions
classes = {classes}            # synthetic, teacher
teacher_width = {tw}     # teacher: hidden width of the random labelling network
# path = "table.csv"   # csv, text_csv: file with a header row; imdb: the aclImdb folder
                       # (relative to this config)
label = "{label}"        # csv, text_csv: name of the class column
text_column = "{tc}"   # text_csv: name of the text column
eval_fraction = {ef}   # held out for evaluation; 0 = evaluate on the training set
                       # (imdb: ignored, eval is the test/ split)
standardize = true     # csv, breast_cancer: z-score with training-split statistics
max_vocab = {mv}       # movie_reviews, imdb, text_csv: vocabulary size cap
min_count = {mc}         # movie_reviews, imdb, text_csv: minimum word count in the training split
limit = 0              # use only the first N shuffled examples (0 = all; imdb: per split)
encoding = "tfidf"     # movie_reviews, imdb, text_csv: tfidf | tokens (max_len ids per text)
max_len = {ml}          # tokens: ids per text (0 = pad, 1 = unknown word, word i = i + 2)
"#,
        samples = d.samples,
        features = d.features,
        classes = d.classes,
        tw = d.teacher_width,
        label = d.label,
        ef = d.eval_fraction,
        mv = d.max_vocab,
        mc = d.min_count,
        tc = d.text_column,
        ml = d.max_len,
    )
}

/// The `[model]` table.
fn model(d: &ModelConfig) -> String {
    format!(
        r#"[model]
kind = "mlp"           # mlp | transformer (needs data.encoding = "tokens")
width = {width}            # mlp: stem Linear(inputs, width), then `depth` blocks Linear(width, width)
                       # transformer: model width d, `depth` attention + MLP blocks
depth = {depth}
activation = "relu"    # relu | gelu | tanh
alpha = {alpha}            # residual: h + alpha * F(h); plain: F(h); "learned": one scale per block (mlp)
heads = {heads}              # transformer: attention heads (divides width)
ff = {ff}                 # transformer: MLP hidden width (0 = 4 x width)
# alpha_sweep = [0.0, 0.25, 0.5, 1.0]   # also the residual model at each alpha (plain -> residual)
"#,
        width = d.width,
        depth = d.depth,
        alpha = d.alpha,
        heads = d.heads,
        ff = d.ff,
    )
}

/// The `[train]` table.
fn train(d: &TrainConfig) -> String {
    format!(
        r#"[train]
optimizer = "adam"     # adam | sgd
lr = {lr}
epochs = {epochs}
batch_size = {bs}
shuffle = true
momentum = 0.0         # sgd
beta1 = 0.9            # adam
beta2 = 0.999          # adam
eps = 1e-8             # adam
weight_decay = 0.0
l1 = 0.0               # l1 * sum |w| over weights
"#,
        lr = d.lr,
        epochs = d.epochs,
        bs = d.batch_size,
    )
}

/// The `[hessian]` table.
fn hessian(d: &HessianConfig) -> String {
    format!(
        r#"[hessian]
method = "auto"        # auto: dense up to dense_limit, else lanczos | dense | lanczos
samples = 0            # examples the loss is averaged over (first N of the train split), 0 = all
dense_limit = {dl}
bins = {bins}              # histogram bins stored in the record
fd_step = 1e-5         # relative central-difference step of differenced products (unused when exact)
fd_scheme = "central"  # differenced products above dense_limit: central | forward (one gradient per product, error ~1e-8)
products = "auto"      # auto: exact for the MLP, finite_differences for the transformer | finite_differences | exact (MLP only)
top_k = 5              # lanczos: largest eigenvalues
bottom_k = 5           # lanczos: smallest eigenvalues
lanczos_steps = 100    # lanczos: most steps (keeps steps x params floats)
tol = 1e-6             # lanczos: Ritz residual tolerance, relative to max |lambda|
slq_runs = 10          # spectral density: random starts
slq_steps = 80         # spectral density: Lanczos steps per start
sigma = 0.0            # spectral density: Gaussian width, 0 = 1% of the Ritz range
grid = 400             # spectral density: grid points
hutchinson_samples = 200   # trace / variance: most probes
hutchinson_tol = 0.01      # trace / variance: stop at this relative standard error
per_layer = false      # also the spectrum of each layer's diagonal block
check_batch = false    # also the top eigenvalue on a second disjoint batch (needs samples > 0)
"#,
        dl = d.dense_limit,
        bins = d.bins,
    )
}

/// The `[prune]` table.
fn prune(d: &PruneConfig) -> String {
    let ratios = d
        .ratios
        .iter()
        .map(|r| format!("{r}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"[prune]
methods = ["magnitude"]    # any of "magnitude", "obd", "curvature_gated"
scope = "global"       # global | layer
include_bias = false   # the article prunes biases too
include_embeddings = false   # transformer: prune token/position embeddings too
ratios = [{ratios}]
curvature_quantile = 0.5   # curvature_gated: eligible when H_ii is below this quantile of its layer
diagonal_samples = 100     # Hutchinson probes for diag(H) above hessian.dense_limit
finetune_epochs = 0        # train after pruning with the mask held (0 = no fine-tuning)
# finetune_lr = 1e-3       # default: train.lr
"#,
    )
}

/// The `[sweep]` table, commented out: a config without one is a single experiment.
const SWEEP: &str = r#"# [sweep]                  # one experiment per combination: resprune-tui sweep THIS.toml
# "model.depth" = [1, 2, 4, 8, 16]
# "model.alpha" = [0.5, 1.0]
# mode = "grid"            # grid: every combination | zip: the i-th values together
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses_back_to_the_defaults() {
        let t = template("fresh");
        let c = Config::parse(&t, "fresh.toml").unwrap();
        assert_eq!(c, Config::named("fresh"));
        // every section once, separated by a blank line
        for s in [
            "\n\n[data]\n",
            "\n\n[model]\n",
            "\n\n[train]\n",
            "\n\n[hessian]\n",
            "\n\n[prune]\n",
        ] {
            assert_eq!(t.matches(s).count(), 1, "{s:?}");
        }
    }
}
