//! What a vectorised `tanh` would buy the fast GeLU (docs/performance.md, "Issue 18, fourth
//! part"): glibc's scalar `tanh`, which dfdx calls per element, against `wide`'s `f64x4`
//! one on the target this crate builds for, over inputs spread like GeLU arguments; and how
//! far apart their results are, in units of the last place.
//!
//! `cargo bench --bench elementwise`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use wide::f64x4;

/// 4,096 arguments, a sixth each of magnitude up to 1e-9, 1e-3, 0.3, 1, 3 and 25.
fn arguments() -> Vec<f64> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..4096)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            (2.0 * u - 1.0) * [1e-9, 1e-3, 0.3, 1.0, 3.0, 25.0][i % 6]
        })
        .collect()
}

fn wide_tanh(xs: &[f64], out: &mut [f64]) {
    for (o, x) in out.chunks_exact_mut(4).zip(xs.chunks_exact(4)) {
        o.copy_from_slice(&f64x4::from([x[0], x[1], x[2], x[3]]).tanh().to_array());
    }
}

fn tanh(c: &mut Criterion) {
    let xs = arguments();
    let mut out = vec![0.0; xs.len()];
    let mut reference = vec![0.0; xs.len()];
    for (r, x) in reference.iter_mut().zip(&xs) {
        *r = x.tanh();
    }
    wide_tanh(&xs, &mut out);
    let worst = out
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs() / (b.abs() * f64::EPSILON))
        .fold(0.0f64, f64::max);
    eprintln!("wide's tanh against glibc's: at most {worst:.2} ulp apart on these arguments");
    let mut g = c.benchmark_group("tanh_4096");
    g.throughput(Throughput::Elements(xs.len() as u64));
    g.bench_function("glibc", |b| {
        b.iter(|| {
            for (o, x) in out.iter_mut().zip(black_box(&xs)) {
                *o = x.tanh();
            }
            black_box(&out);
        })
    });
    g.bench_function("wide_f64x4", |b| {
        b.iter(|| {
            wide_tanh(black_box(&xs), &mut out);
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group!(benches, tanh);
criterion_main!(benches);
