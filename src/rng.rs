//! Seeded random streams: one seed, an independent stream per purpose, same numbers on every
//! machine and device.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Data = 1,
    Split = 2,
    Init = 3,
    Shuffle = 4,
    Probe = 5,
}

pub fn stream(seed: u64, which: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(which as u64);
    rng
}
