mod cpu_kernel;

#[cfg(feature = "cuda")]
mod cuda_kernel;

use super::ops::{try_unary_op, UnaryKernel};
use crate::{shapes::*, tensor::*};

#[allow(unused)]
#[deprecated(since = "0.12.0", note = "use `FastGeLUKernelOp` instead")]
pub type GeLUKernelOp = FastGeLUKernelOp;

#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct FastGeLUKernelOp;

/// [Fast Gaussian Linear Unit (GeLU)](https://paperswithcode.com/method/gelu). A fast version of the gaussiane linear unit
/// calculated by
/// ```text
/// 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
/// ````
/// See also [accurate_gelu](super::accurate_gelu::accurate_gelu) for the more accurate version.
///
/// Examples:
/// ```rust
/// # use dfdx::prelude::*;
/// # let dev: Cpu = Default::default();
/// let t = dev.tensor([-1.0, 0.0, 1.0, 2.0]);
/// let r = t.gelu();
/// ```
pub fn fast_gelu<S: Shape, E: Dtype, D: UnaryKernel<FastGeLUKernelOp, E>, T: Tape<E, D>>(
    t: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    t.fast_gelu()
}

/// Use [fast_gelu] instead
#[deprecated(since = "0.12.0", note = "Use `fast_gelu` instead")]
pub fn gelu<S: Shape, E: Dtype, D: UnaryKernel<FastGeLUKernelOp, E>, T: Tape<E, D>>(
    t: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    fast_gelu(t)
}

impl<S: Shape, E: Dtype, D: UnaryKernel<FastGeLUKernelOp, E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// See [fast_gelu]
    pub fn fast_gelu(self) -> Self {
        self.try_fast_gelu().unwrap()
    }
    /// See [fast_gelu]
    pub fn try_fast_gelu(self) -> Result<Self, D::Err> {
        try_unary_op(FastGeLUKernelOp, self)
    }

    /// Use [Tensor::fast_gelu] instead
    #[deprecated(since = "0.12.0", note = "Use `Tensor::fast_gelu` instead")]
    pub fn gelu(self) -> Self {
        self.fast_gelu()
    }

    /// Use [Tensor::try_fast_gelu] instead
    #[deprecated(since = "0.12.0", note = "Use `Tensor::try_fast_gelu` instead")]
    pub fn try_gelu(self) -> Result<Self, D::Err> {
        self.try_fast_gelu()
    }
}

#[cfg(test)]
mod tests {
    use crate::{tensor::*, tensor_ops::*, tests::*};

    #[test]
    fn test_fast_gelu() {
        let dev: TestDevice = Default::default();
        let x = dev
            .tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
            .to_dtype::<TestDtype>();
        let r = x.leaky_trace().fast_gelu();
        assert_close_to_literal!(r, [-0.04540229, -0.158808, 0.0, 0.841192, 1.9545977]);
        // NOTE: call .exp() to make sure we cover cases where .gelu() uses the result's gradient
        let g = r.exp().mean().backward();
        assert_close_to_literal!(
            g.get(&x),
            [-0.016455507, -0.014156329, 0.1, 0.5023068, 1.5338063]
        );
    }

    /// resprune's patch: the fused forward (one tanh for value and derivative) gives `f` and
    /// `df` bit for bit, and the tape's gradient is `df(x) · grad_out` exactly as before.
    #[test]
    fn test_fast_gelu_fused_is_bit_identical() {
        use crate::tensor_ops::cpu_kernels::UnaryDerivative;
        let op = super::FastGeLUKernelOp;
        let mut xs: std::vec::Vec<f64> = (0..20_001).map(|i| (i as f64 - 10_000.0) * 1e-3).collect();
        xs.extend([0.0, -0.0, 1e-300, -1e-300, 5e-8, 30.0, -30.0, 1e10, -1e10]);
        for x in &xs {
            let (y, d) = UnaryDerivative::<f64>::f_and_df(&op, x);
            assert_eq!(y.to_bits(), UnaryDerivative::<f64>::f(&op, x).to_bits(), "f at {x}");
            assert_eq!(d.to_bits(), UnaryDerivative::<f64>::df(&op, x).to_bits(), "df at {x}");
        }
        for x in [0.3f32, -1.7, 4.2] {
            let (y, d) = UnaryDerivative::<f32>::f_and_df(&op, &x);
            assert_eq!(y.to_bits(), UnaryDerivative::<f32>::f(&op, &x).to_bits());
            assert_eq!(d.to_bits(), UnaryDerivative::<f32>::df(&op, &x).to_bits());
        }
        let dev: crate::tensor::Cpu = Default::default();
        let n = xs.len();
        let x = dev.tensor_from_vec(xs.clone(), (n,));
        let w: std::vec::Vec<f64> = (0..n).map(|i| 1.0 + (i % 7) as f64 * 0.25).collect();
        let wt = dev.tensor_from_vec(w.clone(), (n,));
        let g = (x.leaky_trace().fast_gelu() * wt).sum::<(), _>().backward();
        let got = g.get(&x).as_vec();
        for i in 0..n {
            let want = 0.0 + UnaryDerivative::<f64>::df(&op, &xs[i]) * w[i];
            assert_eq!(got[i].to_bits(), want.to_bits(), "gradient at {}", xs[i]);
        }
        // a broadcast input (stride 0): the op maps its 3 stored elements, and the gradient
        // reaching them is the sum over the broadcast axis (exact for these weights)
        let xb = dev.tensor([-1.3f64, 0.2, 2.7]);
        let wb = dev.tensor([[1.0f64, 0.5, 0.25], [2.0, -1.0, 4.0]]);
        let gb = (xb.leaky_trace().broadcast::<crate::shapes::Rank2<2, 3>, _>().fast_gelu() * wb.clone())
            .sum::<(), _>()
            .backward();
        let (xv, wv) = (xb.array(), wb.array());
        let got = gb.get(&xb).array();
        for j in 0..3 {
            let want = UnaryDerivative::<f64>::df(&op, &xv[j]) * (wv[0][j] + wv[1][j]);
            assert_eq!(got[j].to_bits(), want.to_bits(), "broadcast gradient {j}");
        }
    }
}
