use std::borrow::Cow;

use super::ops::{BinaryKernel, UnaryKernel};
use crate::{
    shapes::{Dtype, Shape, Unit},
    tensor::{
        cpu::{CachableVec, Cpu, CpuError},
        unique_id, Tensor, Tensorlike,
    },
};

pub trait UnaryDerivative<E> {
    /// Whether the [UnaryDerivative::df] function can re-use the output
    /// from [UnaryDerivative::f].
    const DF_USES_FX: bool;
    /// Whether the derivative of this op can be computed without
    /// any data.
    const HAS_CONST_DF: bool;

    fn f(&self, x: &E) -> E;

    /// Receives `f(x)` if [UnaryDerivative::DF_USES_FX] is true,
    /// otherwise `x`.
    fn df(&self, x: &E) -> E;

    fn const_df(&self) -> E {
        unimplemented!()
    }

    /// Whether [UnaryDerivative::f_and_df] computes both at less than their separate cost;
    /// the CPU's forward pass then writes the derivative too (resprune's patch).
    const F_AND_DF: bool = false;

    /// `(f(x), df(x))` for an op whose `df` takes `x`; must equal them bit for bit.
    fn f_and_df(&self, x: &E) -> (E, E) {
        (self.f(x), self.df(x))
    }
}

pub trait BinaryDerivative<E>: std::fmt::Debug {
    /// Whether the derivative of this op can be computed without
    /// any data.
    const HAS_CONST_DF: bool;
    fn f(&self, x: &E, y: &E) -> E;
    fn dfdx(&self, x: &E, y: &E) -> E;
    fn dfdy(&self, x: &E, y: &E) -> E;
    fn const_dfdx(&self) -> E {
        unimplemented!()
    }
    fn const_dfdy(&self) -> E {
        unimplemented!()
    }
}

impl<E: Dtype, Op: UnaryDerivative<E>> UnaryKernel<Op, E> for Cpu {
    const BACKWARD_WITHOUT_INP: bool = Op::DF_USES_FX;
    const BACKWARD_WITHOUT_DATA: bool = Op::HAS_CONST_DF;
    const FORWARD_WITH_DF: bool = Op::F_AND_DF && !Op::DF_USES_FX && !Op::HAS_CONST_DF;

    fn forward_with_df<S: Shape>(
        &self,
        op: Op,
        inp: &Tensor<S, E, Self>,
    ) -> Result<(Tensor<S, E, Self>, Tensor<S, E, Self>), Self::Err> {
        // both buffers map the input's physical buffer element by element, as `forward` does
        let n = inp.data.len();
        let mut df = self.try_alloc_empty::<E>(n)?;
        let out = self.try_alloc_written::<E>(n, |out| {
            for x in inp.data.iter() {
                let (y, d) = op.f_and_df(x);
                out.push(y);
                df.data.push(d);
            }
        })?;
        assert_eq!(df.data.len(), n, "a kernel wrote the wrong number of elements");
        Ok((
            self.tensor_of(out, inp.shape, inp.strides),
            self.tensor_of(df, inp.shape, inp.strides),
        ))
    }

    fn backward_with_df<S: Shape>(
        &self,
        df: &Tensor<S, E, Self>,
        grad_inp: &mut Self::Vec,
        grad_out: &Self::Vec,
    ) -> Result<(), Self::Err> {
        assert_eq!(grad_inp.len(), grad_out.len());
        assert_eq!(grad_inp.len(), df.data.len());
        // the same product and sum as `backward`'s, with df(x) read instead of evaluated
        for ((x, d), g) in grad_inp.iter_mut().zip(df.data.iter()).zip(grad_out.iter()) {
            *x += *d * *g;
        }
        Ok(())
    }

    fn forward<S: Shape>(
        &self,
        op: Op,
        inp: Cow<Tensor<S, E, Self>>,
    ) -> Result<Tensor<S, E, Self>, Self::Err> {
        match inp {
            Cow::Borrowed(inp) => {
                // a new buffer, written once from the input's (resprune's patch: dfdx 0.13
                // copied the input's buffer, then overwrote it); the same strides, since
                // the op maps the physical buffer element by element
                let data = self.try_alloc_written::<E>(inp.data.len(), |data| {
                    data.extend(inp.data.iter().map(|x| op.f(x)))
                })?;
                Ok(self.tensor_of(data, inp.shape, inp.strides))
            }
            Cow::Owned(mut inp) => {
                // re-use the data buffer
                inp.id = unique_id();
                for x in inp.buf_iter_mut() {
                    *x = op.f(x);
                }
                Ok(inp)
            }
        }
    }
    fn backward<S: Shape>(
        &self,
        op: Op,
        inp: &impl Tensorlike<S, E, Self>,
        grad_inp: &mut Self::Vec,
        out: &impl Tensorlike<S, E, Self>,
        grad_out: &Self::Vec,
    ) -> Result<(), Self::Err> {
        // the op maps the physical buffer element by element: all of them have one length
        assert_eq!(grad_inp.len(), grad_out.len());
        match (inp.data(), out.data()) {
            (None, None) => {
                let df = op.const_df();
                // zipped, not indexed: no bounds checks, so the loop vectorises (resprune's
                // patch; the same operations in the same order)
                for (x, g) in grad_inp.iter_mut().zip(grad_out.iter()) {
                    *x += df * *g;
                }
            }
            (None, Some(out)) => {
                for ((x, y), g) in grad_inp.iter_mut().zip(out.iter()).zip(grad_out.iter()) {
                    *x += op.df(y) * *g;
                }
            }
            (Some(inp), None) => {
                for ((x, y), g) in grad_inp.iter_mut().zip(inp.iter()).zip(grad_out.iter()) {
                    *x += op.df(y) * *g;
                }
            }
            _ => unreachable!(),
        }
        Ok(())
    }
}

impl Cpu {
    /// A buffer of `numel` elements that `fill` writes once, pushing exactly `numel`
    /// (resprune's patch: dfdx 0.13 zeroed every output buffer before overwriting it). Taken
    /// from the allocation cache when that is on, as every other allocation is, so cached
    /// buffers are reused rather than piling up; otherwise allocated and not zeroed.
    fn try_alloc_written<E: Unit>(
        &self,
        numel: usize,
        fill: impl FnOnce(&mut Vec<E>),
    ) -> Result<CachableVec<E>, CpuError> {
        let mut out = self.try_alloc_empty::<E>(numel)?;
        fill(&mut out.data);
        assert_eq!(out.data.len(), numel, "a kernel wrote the wrong number of elements");
        Ok(out)
    }

    /// A new tensor (a fresh id, no tape) over a buffer a kernel wrote (resprune's patch).
    fn tensor_of<S: Shape, E: Unit>(
        &self,
        data: CachableVec<E>,
        shape: S,
        strides: S::Concrete,
    ) -> Tensor<S, E, Self> {
        Tensor {
            id: unique_id(),
            data: std::sync::Arc::new(data),
            shape,
            strides,
            device: self.clone(),
            tape: Default::default(),
        }
    }

    /// An empty buffer with room for `numel` elements: from the allocation cache when that is
    /// on (so it goes back where it came from when dropped), otherwise newly reserved.
    fn try_alloc_empty<E: Unit>(&self, numel: usize) -> Result<CachableVec<E>, CpuError> {
        if self.cache.is_enabled() {
            let mut out = self.try_alloc_elem::<E>(numel, Default::default())?;
            out.data.clear();
            Ok(out)
        } else {
            let mut data = Vec::new();
            data.try_reserve_exact(numel)
                .map_err(|_| CpuError::OutOfMemory)?;
            Ok(CachableVec {
                data,
                cache: self.cache.clone(),
            })
        }
    }
}

/// Walks a strided layout of `shape` (two layouts `sa`, `sb` of it at once) row by row, a row
/// being the last axis: calls `f(row, a, b)` with the offset in each layout of the row's
/// first element, rows in the order [NdIndex] visits them (the last axis fastest), so work
/// done element by element inside a row keeps dfdx's order of operations exactly.
/// A scalar is one row of length 1.
///
/// (resprune's patch: dfdx 0.13 computed a strided index per element; see vendor/README.md.)
#[inline(always)]
fn for_each_row<S: Shape>(
    shape: &S::Concrete,
    sa: &S::Concrete,
    sb: &S::Concrete,
    mut f: impl FnMut(usize, usize, usize),
) {
    let d = S::NUM_DIMS;
    if d == 0 {
        f(0, 0, 0);
        return;
    }
    let rows: usize = (0..d - 1).map(|k| shape[k]).product();
    if rows == 0 || shape[d - 1] == 0 {
        return;
    }
    let mut idx: S::Concrete = Default::default();
    let (mut a, mut b) = (0, 0);
    for row in 0..rows {
        f(row, a, b);
        let mut k = d - 1;
        while k > 0 {
            k -= 1;
            idx[k] += 1;
            a += sa[k];
            b += sb[k];
            if idx[k] < shape[k] {
                break;
            }
            a -= shape[k] * sa[k];
            b -= shape[k] * sb[k];
            idx[k] = 0;
        }
    }
}

/// The length and the two layouts' strides of a row for [for_each_row].
#[inline(always)]
fn row_of<S: Shape>(shape: &S::Concrete, sa: &S::Concrete, sb: &S::Concrete) -> (usize, usize, usize) {
    match S::NUM_DIMS {
        0 => (1, 1, 1),
        d => (shape[d - 1], sa[d - 1], sb[d - 1]),
    }
}

impl<E: Dtype, Op: BinaryDerivative<E>> BinaryKernel<Op, E> for Cpu {
    const BACKWARD_WITHOUT_DATA: bool = Op::HAS_CONST_DF;
    fn forward<S: Shape>(
        &self,
        op: Op,
        lhs: Cow<Tensor<S, E, Self>>,
        rhs: Cow<Tensor<S, E, Self>>,
    ) -> Result<Tensor<S, E, Self>, Self::Err> {
        match (lhs, rhs) {
            (Cow::Borrowed(lhs), Cow::Borrowed(rhs)) => {
                let shape = lhs.shape;
                let dims = shape.concrete();
                let (m, ls, rs) = row_of::<S>(&dims, &lhs.strides, &rhs.strides);
                let (l, r) = (lhs.data.as_slice(), rhs.data.as_slice());
                let data = self.try_alloc_written::<E>(shape.num_elements(), |data| {
                    for_each_row::<S>(&dims, &lhs.strides, &rhs.strides, |_, a, b| match (ls, rs) {
                        (1, 1) => data.extend(
                            l[a..a + m]
                                .iter()
                                .zip(r[b..b + m].iter())
                                .map(|(x, y)| op.f(x, y)),
                        ),
                        (1, 0) => data.extend(l[a..a + m].iter().map(|x| op.f(x, &r[b]))),
                        (0, 1) => data.extend(r[b..b + m].iter().map(|y| op.f(&l[a], y))),
                        _ => data.extend((0..m).map(|j| op.f(&l[a + j * ls], &r[b + j * rs]))),
                    })
                })?;
                Ok(self.tensor_of(data, shape, shape.strides()))
            }
            (Cow::Owned(mut lhs), Cow::Owned(mut rhs)) => {
                let lhs_valid = lhs.strides == lhs.shape.strides();
                let rhs_valid = rhs.strides == rhs.shape.strides();
                if lhs_valid || rhs_valid {
                    let lhs_count = std::sync::Arc::strong_count(&lhs.data);
                    let rhs_count = std::sync::Arc::strong_count(&rhs.data);
                    let dims = lhs.shape.concrete();
                    if rhs_valid && (rhs_count == 1 || !lhs_valid || lhs_count != 1) {
                        rhs.id = unique_id();
                        let (m, ls, _) = row_of::<S>(&dims, &lhs.strides, &rhs.strides);
                        let l = lhs.data.as_slice();
                        let out = std::sync::Arc::make_mut(&mut rhs.data).as_mut_slice();
                        for_each_row::<S>(&dims, &lhs.strides, &rhs.strides, |row, a, _| {
                            let o = &mut out[row * m..(row + 1) * m];
                            match ls {
                                1 => o.iter_mut().zip(l[a..a + m].iter()).for_each(|(y, x)| *y = op.f(x, y)),
                                0 => o.iter_mut().for_each(|y| *y = op.f(&l[a], y)),
                                _ => o.iter_mut().enumerate().for_each(|(j, y)| *y = op.f(&l[a + j * ls], y)),
                            }
                        });
                        Ok(rhs)
                    } else {
                        lhs.id = unique_id();
                        let (m, _, rs) = row_of::<S>(&dims, &lhs.strides, &rhs.strides);
                        let r = rhs.data.as_slice();
                        let out = std::sync::Arc::make_mut(&mut lhs.data).as_mut_slice();
                        for_each_row::<S>(&dims, &lhs.strides, &rhs.strides, |row, _, b| {
                            let o = &mut out[row * m..(row + 1) * m];
                            match rs {
                                1 => o.iter_mut().zip(r[b..b + m].iter()).for_each(|(x, y)| *x = op.f(x, y)),
                                0 => o.iter_mut().for_each(|x| *x = op.f(x, &r[b])),
                                _ => o.iter_mut().enumerate().for_each(|(j, x)| *x = op.f(x, &r[b + j * rs])),
                            }
                        });
                        Ok(lhs)
                    }
                } else {
                    <Self as BinaryKernel<Op, E>>::forward(
                        self,
                        op,
                        Cow::Borrowed(&lhs),
                        Cow::Borrowed(&rhs),
                    )
                }
            }
            _ => unreachable!(),
        }
    }
    fn backward<S: Shape>(
        &self,
        op: Op,
        lhs: &impl Tensorlike<S, E, Self>,
        grad_lhs: &mut Self::Vec,
        rhs: &impl Tensorlike<S, E, Self>,
        grad_rhs: &mut Self::Vec,
        grad_out: &Self::Vec,
    ) -> Result<(), Self::Err> {
        // grad_out is contiguous (the op's output was made so in forward); each gradient
        // is accumulated element by element in NdIndex's order, as before, so the sums are
        // the same bit for bit. A broadcast operand (row stride 0) keeps its one running sum
        // in a register instead of a store and a reload per element.
        let dims = lhs.shape().concrete();
        let (sl, sr) = (lhs.strides(), rhs.strides());
        let (m, ls, rs) = row_of::<S>(&dims, &sl, &sr);
        let gl = grad_lhs.as_mut_slice();
        let gr = grad_rhs.as_mut_slice();
        let go = grad_out.as_slice();
        match (lhs.data(), rhs.data()) {
            (Some(lhs_buf), Some(rhs_buf)) => {
                let (l, r) = (lhs_buf.as_slice(), rhs_buf.as_slice());
                for_each_row::<S>(&dims, &sl, &sr, |row, a, b| {
                    let go = &go[row * m..(row + 1) * m];
                    match (ls, rs) {
                        (1, 1) => {
                            let (l, r) = (&l[a..a + m], &r[b..b + m]);
                            let (gl, gr) = (&mut gl[a..a + m], &mut gr[b..b + m]);
                            for j in 0..m {
                                gl[j] += op.dfdx(&l[j], &r[j]) * go[j];
                                gr[j] += op.dfdy(&l[j], &r[j]) * go[j];
                            }
                        }
                        (1, 0) => {
                            let (l, y) = (&l[a..a + m], &r[b]);
                            let gl = &mut gl[a..a + m];
                            let mut acc = gr[b];
                            for j in 0..m {
                                gl[j] += op.dfdx(&l[j], y) * go[j];
                                acc += op.dfdy(&l[j], y) * go[j];
                            }
                            gr[b] = acc;
                        }
                        (0, 1) => {
                            let (x, r) = (&l[a], &r[b..b + m]);
                            let gr = &mut gr[b..b + m];
                            let mut acc = gl[a];
                            for j in 0..m {
                                acc += op.dfdx(x, &r[j]) * go[j];
                                gr[j] += op.dfdy(x, &r[j]) * go[j];
                            }
                            gl[a] = acc;
                        }
                        _ => {
                            for (j, g) in go.iter().enumerate() {
                                let (li, ri) = (a + j * ls, b + j * rs);
                                gl[li] += op.dfdx(&l[li], &r[ri]) * *g;
                                gr[ri] += op.dfdy(&l[li], &r[ri]) * *g;
                            }
                        }
                    }
                });
            }
            (None, None) => {
                assert!(Op::HAS_CONST_DF);
                let dx = op.const_dfdx();
                let dy = op.const_dfdy();
                for_each_row::<S>(&dims, &sl, &sr, |row, a, b| {
                    let go = &go[row * m..(row + 1) * m];
                    match (ls, rs) {
                        (1, 1) => {
                            let (gl, gr) = (&mut gl[a..a + m], &mut gr[b..b + m]);
                            for j in 0..m {
                                gl[j] += dx * go[j];
                                gr[j] += dy * go[j];
                            }
                        }
                        (1, 0) => {
                            let gl = &mut gl[a..a + m];
                            let mut acc = gr[b];
                            for j in 0..m {
                                gl[j] += dx * go[j];
                                acc += dy * go[j];
                            }
                            gr[b] = acc;
                        }
                        (0, 1) => {
                            let gr = &mut gr[b..b + m];
                            let mut acc = gl[a];
                            for j in 0..m {
                                acc += dx * go[j];
                                gr[j] += dy * go[j];
                            }
                            gl[a] = acc;
                        }
                        _ => {
                            for (j, g) in go.iter().enumerate() {
                                gl[a + j * ls] += dx * *g;
                                gr[b + j * rs] += dy * *g;
                            }
                        }
                    }
                });
            }
            _ => unreachable!(),
        }
        Ok(())
    }
}
