//! Reusable activation buffers of the training engine. A training step allocates the same tensors
//! every step (each unit's input, pre-activation and output on the tape; each gradient on the way
//! back); taking them from a pool instead of the allocator saves the zero-fill of every fresh buffer
//! and the page faults of returning it, which together were about a sixth of a step at 32×32.
//!
//! Values in a buffer taken with [`ActPool::overwritten`] are stale: only kernels that write every
//! element may use it. Results do not depend on what a buffer held before.

use super::act::Act;

/// Free buffers, reused best-fit by length. Holds at most [`ActPool::MAX_BUFFERS`] buffers.
#[derive(Debug, Default)]
pub struct ActPool {
    free: Vec<Vec<f32>>,
}

impl ActPool {
    /// More than a step of MobileNetV2 ever frees (≈ 3 tensors per unit, 52 units, plus gradients).
    pub const MAX_BUFFERS: usize = 512;

    /// An `n × c × h × w` tensor whose values are unspecified (left from an earlier use): for kernels
    /// that write every element.
    pub fn overwritten(&mut self, n: usize, c: usize, h: usize, w: usize) -> Act {
        let len = n * c * h * w;
        let best = self.free.iter().enumerate().filter(|(_, v)| v.capacity() >= len).min_by_key(|(_, v)| v.capacity()).map(|(i, _)| i);
        let mut data = match best {
            Some(i) => self.free.swap_remove(i),
            None => Vec::with_capacity(len),
        };
        // Only growth within the capacity is zero-filled; a shorter buffer keeps its stale values.
        data.resize(len, 0.0);
        Act { n, c, h, w, data }
    }

    /// [`ActPool::overwritten`] with the shape of `like`.
    pub fn overwritten_like(&mut self, like: &Act) -> Act {
        self.overwritten(like.n, like.c, like.h, like.w)
    }

    /// A copy of `a` in a pooled buffer.
    pub fn copy(&mut self, a: &Act) -> Act {
        let mut out = self.overwritten_like(a);
        out.data.copy_from_slice(&a.data);
        out
    }

    /// Returns a tensor's buffer to the pool.
    pub fn give(&mut self, a: Act) {
        if self.free.len() < Self::MAX_BUFFERS && a.data.capacity() > 0 {
            self.free.push(a.data);
        }
    }

    /// Buffers held.
    pub fn len(&self) -> usize {
        self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.free.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_the_smallest_buffer_that_fits() {
        let mut pool = ActPool::default();
        pool.give(Act::zeros(1, 1, 1, 100));
        pool.give(Act::zeros(1, 1, 1, 10));
        pool.give(Act::zeros(1, 1, 1, 50));
        let a = pool.overwritten(1, 1, 1, 40);
        assert_eq!((a.data.len(), a.data.capacity()), (40, 50));
        assert_eq!(pool.len(), 2);
        let b = pool.overwritten(1, 1, 1, 200);
        assert_eq!(b.data.len(), 200);
        assert_eq!(pool.len(), 2, "nothing fits: a new buffer");
    }

    #[test]
    fn a_copy_equals_its_source_whatever_the_buffer_held() {
        let mut pool = ActPool::default();
        pool.give(Act { n: 1, c: 1, h: 1, w: 4, data: vec![9.0; 4] });
        let src = Act { n: 1, c: 1, h: 1, w: 3, data: vec![1.0, -0.0, 3.0] };
        let c = pool.copy(&src);
        assert_eq!(c, src);
        assert!(c.data[1].is_sign_negative());
    }
}
