//! `[hessian]`: how the spectrum of each model is measured.

use serde::{Deserialize, Serialize};

use super::error::{bad, ConfigError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HessianMethod {
    /// Dense up to `dense_limit` parameters, Lanczos + SLQ + Hutchinson above.
    #[default]
    Auto,
    /// Every eigenvalue from the dense Hessian.
    Dense,
    /// Top/bottom eigenvalues (Lanczos), density (SLQ), trace and variance (Hutchinson).
    Lanczos,
}

/// The forward scheme's relative step: near `sqrt(ε)`, where its O(h) truncation and its
/// `ε/h` rounding balance (~1e-8 each; docs/method.md).
pub const FORWARD_STEP: f64 = 1e-8;

/// Finite-difference scheme of the Hessian-vector product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FdScheme {
    /// `(g(θ + hv) − g(θ − hv)) / 2h`: truncation O(h²).
    #[default]
    Central,
    /// `(g(θ + hv) − g(θ)) / h`, `g(θ)` computed once: truncation O(h).
    Forward,
}

/// How a spectrum's Hessian-vector products (and the dense Hessian's columns) were computed:
/// `hessian.products` resolved for the model ([`ProductsChoice::resolve`]), as the record's
/// `spectrum.products` keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Products {
    /// Differences of f64 gradients (`fd_scheme`, `fd_step`): every model, every device.
    /// (The default only for records written before the key, which were all of this kind.)
    #[default]
    FiniteDifferences,
    /// Forward-over-reverse derivatives of the MLP's gradient, on the host: no step, no
    /// truncation error (docs/method.md, "Exact products"). MLP only.
    Exact,
}

impl Products {
    /// `finite_differences` or `exact`, as the config and the record write it.
    pub fn name(self) -> &'static str {
        crate::names::serde_name(&self)
    }
}

/// The `hessian.products` key: which [`Products`] to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProductsChoice {
    /// Exact where the model has them (the MLP), finite differences where it does not (the
    /// transformer): the most accurate products each model has, and for the MLP the faster.
    #[default]
    Auto,
    /// Always differences of gradients (the only kind before schema 4).
    FiniteDifferences,
    /// Always exact; refused for the transformer before any work.
    Exact,
}

impl ProductsChoice {
    /// `auto`, `finite_differences` or `exact`, as the config writes it.
    pub fn name(self) -> &'static str {
        crate::names::serde_name(&self)
    }

    /// The products this choice gives a model that has exact products (`exact_available`:
    /// the MLP) or not (the transformer; `Exact` then stays `Exact`, which validation refuses).
    pub fn resolve(self, exact_available: bool) -> Products {
        match self {
            ProductsChoice::Auto if exact_available => Products::Exact,
            ProductsChoice::Auto | ProductsChoice::FiniteDifferences => Products::FiniteDifferences,
            ProductsChoice::Exact => Products::Exact,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HessianConfig {
    pub method: HessianMethod,
    /// Examples the loss is averaged over (the first N of the training split); 0 = all.
    pub samples: usize,
    /// Largest parameter count the dense method accepts.
    pub dense_limit: usize,
    /// Histogram bins stored with the spectrum.
    pub bins: usize,
    /// Relative central-difference step of differenced Hessian-vector products (see
    /// docs/method.md); unused under exact products.
    pub fd_step: f64,
    /// How Lanczos, SLQ and Hutchinson difference the gradient: `central` (two gradients per
    /// product at `fd_step`, error ~1e-10) or `forward` (one gradient per product after one at
    /// theta, at its own step [`FORWARD_STEP`], error ~1e-8). The finite-difference dense
    /// Hessian and the pruning prediction are always central at `fd_step`; exact products
    /// difference nothing.
    pub fd_scheme: FdScheme,
    /// `auto` (default: `exact` for the MLP, `finite_differences` for the transformer),
    /// `finite_differences`, or `exact` (the MLP's forward-over-reverse products: every
    /// product of the spectra and of the pruning prediction, so `fd_step` and `fd_scheme`
    /// then apply to nothing).
    pub products: ProductsChoice,
    /// Largest eigenvalues Lanczos reports.
    pub top_k: usize,
    /// Smallest eigenvalues Lanczos reports.
    pub bottom_k: usize,
    /// Most Lanczos steps (each one Hessian-vector product, `lanczos_steps × n` floats kept).
    pub lanczos_steps: usize,
    /// Lanczos stops once every wanted Ritz value has residual `<= tol · max(1, |λ|max)`.
    pub tol: f64,
    /// SLQ: independent random starts for the spectral density.
    pub slq_runs: usize,
    /// SLQ: Lanczos steps per start.
    pub slq_steps: usize,
    /// SLQ: Gaussian broadening in eigenvalue units; 0 = 1% of the Ritz range.
    pub sigma: f64,
    /// SLQ: density grid points.
    pub grid: usize,
    /// Hutchinson: most probes for trace and tr(H²).
    pub hutchinson_samples: usize,
    /// Hutchinson: stop once the relative standard error of both traces is under this.
    pub hutchinson_tol: f64,
    /// Also compute the spectrum of each layer's diagonal block.
    pub per_layer: bool,
    /// Also compute the top eigenvalue on a second, disjoint batch of `samples` examples and
    /// report the difference (a stability check; needs `samples` > 0 and enough data).
    pub check_batch: bool,
}

impl HessianConfig {
    /// The products `products` gives a model of `kind` (`auto`: exact for the MLP).
    pub fn products_for(&self, kind: super::model::ModelKind) -> Products {
        self.products.resolve(kind.has_exact_products())
    }

    /// The step of the Hessian-vector products `fd_scheme` asks for (Lanczos, SLQ,
    /// Hutchinson).
    pub fn hvp_step(&self) -> f64 {
        match self.fd_scheme {
            FdScheme::Central => self.fd_step,
            FdScheme::Forward => FORWARD_STEP,
        }
    }
}

impl Default for HessianConfig {
    fn default() -> Self {
        HessianConfig {
            method: HessianMethod::Auto,
            samples: 0,
            dense_limit: 3000,
            bins: 40,
            fd_step: 1e-5,
            fd_scheme: FdScheme::Central,
            products: ProductsChoice::Auto,
            top_k: 5,
            bottom_k: 5,
            lanczos_steps: 100,
            tol: 1e-6,
            slq_runs: 10,
            slq_steps: 80,
            sigma: 0.0,
            grid: 400,
            hutchinson_samples: 200,
            hutchinson_tol: 0.01,
            per_layer: false,
            check_batch: false,
        }
    }
}

impl HessianConfig {
    /// Checks the `[hessian]` keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bins == 0 {
            return bad("hessian.bins", "is 0, must be at least 1");
        }
        if !(self.fd_step > 0.0 && self.fd_step < 1e-2) {
            return bad(
                "hessian.fd_step",
                format!(
                    "is {}, must be in (0, 1e-2): larger steps cross ReLU kinks",
                    self.fd_step
                ),
            );
        }
        self.validate_lanczos()?;
        if self.hutchinson_samples < 2 {
            return bad("hessian.hutchinson_samples", "must be at least 2");
        }
        if !(self.hutchinson_tol > 0.0 && self.hutchinson_tol.is_finite()) {
            return bad("hessian.hutchinson_tol", "must be > 0");
        }
        if self.check_batch && self.samples == 0 {
            return bad(
                "hessian.check_batch",
                "needs hessian.samples > 0: the check uses the next `samples` examples",
            );
        }
        Ok(())
    }

    /// The keys that depend on the model: exact products exist for the MLP only.
    pub fn validate_for(&self, model: &super::model::ModelConfig) -> Result<(), ConfigError> {
        if self.products == ProductsChoice::Exact
            && model.kind == super::model::ModelKind::Transformer
        {
            return bad(
                "hessian.products",
                "\"exact\" is implemented for the MLP only (its forward-over-reverse products \
                 are written out by hand); the transformer's are finite differences: remove \
                 the key (\"auto\" picks them) or set it to \"finite_differences\"",
            );
        }
        Ok(())
    }

    /// The Lanczos and SLQ keys.
    fn validate_lanczos(&self) -> Result<(), ConfigError> {
        if self.lanczos_steps < 2 {
            return bad("hessian.lanczos_steps", "must be at least 2");
        }
        if self.top_k + self.bottom_k == 0 {
            return bad(
                "hessian.top_k",
                "top_k and bottom_k are both 0: ask for at least one",
            );
        }
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return bad("hessian.tol", "must be >= 0 (0 runs every Lanczos step)");
        }
        if self.slq_runs == 0 || self.slq_steps < 2 {
            return bad(
                "hessian.slq_runs",
                "slq_runs must be >= 1 and slq_steps >= 2",
            );
        }
        if !(self.sigma >= 0.0 && self.sigma.is_finite()) {
            return bad(
                "hessian.sigma",
                "must be >= 0 (0 picks 1% of the Ritz range)",
            );
        }
        if self.grid < 2 {
            return bad("hessian.grid", "must be at least 2");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(h: &HessianConfig) -> Option<String> {
        h.validate().err().and_then(|e| e.key().map(str::to_string))
    }

    #[test]
    fn the_defaults_are_valid_and_central() {
        let h = HessianConfig::default();
        assert_eq!(
            (h.method, h.fd_scheme),
            (HessianMethod::Auto, FdScheme::Central)
        );
        assert_eq!(h.hvp_step(), h.fd_step);
        assert!(h.validate().is_ok());
        let f = HessianConfig {
            fd_scheme: FdScheme::Forward,
            ..h
        };
        assert_eq!(f.hvp_step(), FORWARD_STEP);
    }

    #[test]
    fn auto_products_are_exact_where_the_model_has_them() {
        use ProductsChoice::*;
        let cases = [
            (Auto, true, Products::Exact),
            (Auto, false, Products::FiniteDifferences),
            (FiniteDifferences, true, Products::FiniteDifferences),
            (FiniteDifferences, false, Products::FiniteDifferences),
            (Exact, true, Products::Exact),
            // refused by validate_for before any work; resolving does not hide the request
            (Exact, false, Products::Exact),
        ];
        for (choice, available, want) in cases {
            assert_eq!(choice.resolve(available), want, "{choice:?} {available}");
        }
        assert_eq!(HessianConfig::default().products, Auto);
        let names: Vec<_> = [Auto, FiniteDifferences, Exact].map(|c| c.name()).into();
        assert_eq!(names, ["auto", "finite_differences", "exact"]);
    }

    #[test]
    fn each_key_out_of_range_is_named() {
        let d = HessianConfig::default;
        let cases = [
            ("hessian.bins", HessianConfig { bins: 0, ..d() }),
            (
                "hessian.fd_step",
                HessianConfig {
                    fd_step: 1e-2,
                    ..d()
                },
            ),
            (
                "hessian.fd_step",
                HessianConfig {
                    fd_step: 0.0,
                    ..d()
                },
            ),
            (
                "hessian.lanczos_steps",
                HessianConfig {
                    lanczos_steps: 1,
                    ..d()
                },
            ),
            (
                "hessian.top_k",
                HessianConfig {
                    top_k: 0,
                    bottom_k: 0,
                    ..d()
                },
            ),
            ("hessian.tol", HessianConfig { tol: -1.0, ..d() }),
            ("hessian.slq_runs", HessianConfig { slq_runs: 0, ..d() }),
            (
                "hessian.slq_runs",
                HessianConfig {
                    slq_steps: 1,
                    ..d()
                },
            ),
            (
                "hessian.sigma",
                HessianConfig {
                    sigma: f64::NAN,
                    ..d()
                },
            ),
            ("hessian.grid", HessianConfig { grid: 1, ..d() }),
            (
                "hessian.hutchinson_samples",
                HessianConfig {
                    hutchinson_samples: 1,
                    ..d()
                },
            ),
            (
                "hessian.hutchinson_tol",
                HessianConfig {
                    hutchinson_tol: 0.0,
                    ..d()
                },
            ),
            (
                "hessian.check_batch",
                HessianConfig {
                    check_batch: true,
                    ..d()
                },
            ),
        ];
        for (want, h) in cases {
            assert_eq!(key(&h).as_deref(), Some(want), "{h:?}");
        }
        let h = HessianConfig {
            check_batch: true,
            samples: 50,
            ..d()
        };
        assert!(h.validate().is_ok());
    }
}
