//! Central-difference gradients, row by row, with skimage's choice of channel.
use std::collections::HashMap;

use super::Work;

/// The image as skimage's gradient sees it: pixels promoted to `W` by `work`.
pub(crate) struct Grid<'a, V, F> {
    pub(crate) image: &'a [V],
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) channels: usize,
    pub(crate) work: F,
}

/// Channel choices that numpy must confirm: (row, col) -> channel.
pub(crate) type Overrides = HashMap<(usize, usize), usize>;

/// A pixel whose strongest channel is a near tie, with every channel's gradient.
pub(crate) struct NearTie {
    pub(crate) y: usize,
    pub(crate) x: usize,
    pub(crate) chosen: usize,
    pub(crate) gr: Vec<f64>,
    pub(crate) gc: Vec<f64>,
}

impl<V: Copy, W: Work, F: Fn(V) -> W> Grid<'_, V, F> {
    /// Central-difference gradient of row `y` for columns `0..gx.len()` (zero on the
    /// image border), taken from the channel with the largest magnitude (the first on
    /// ties, as `np.argmax`). Near ties go to `ties`; `overrides` replaces choices.
    #[inline(always)]
    pub(crate) fn gradient_row(
        &self,
        y: usize,
        gx: &mut [f64],
        gy: &mut [f64],
        overrides: &Overrides,
        mut ties: Option<&mut Vec<NearTie>>,
    ) {
        let (rows, cols, channels) = (self.rows, self.cols, self.channels);
        let work = &self.work;
        let image = self.image;
        let width = gx.len();
        let stride = cols * channels;
        let row = &image[y * stride..(y + 1) * stride];
        let interior_y = y > 0 && y + 1 < rows;
        let (up, down) = if interior_y {
            (&image[(y - 1) * stride..y * stride], &image[(y + 1) * stride..(y + 2) * stride])
        } else {
            (row, row)
        };
        if channels == 1 {
            // Interior columns without per-pixel branches (so the loop vectorises).
            gx.iter_mut().for_each(|g| *g = 0.0);
            let inner = width.min(cols.saturating_sub(1));
            if inner > 1 {
                let (left, right) = (&row[..inner - 1], &row[2..inner + 1]);
                for ((g, &l), &r) in gx[1..inner].iter_mut().zip(left).zip(right) {
                    *g = (work(r) - work(l)).to_f64();
                }
            }
            if interior_y {
                for ((g, &u), &d) in gy.iter_mut().zip(&up[..width]).zip(&down[..width]) {
                    *g = (work(d) - work(u)).to_f64();
                }
            } else {
                gy.iter_mut().for_each(|g| *g = 0.0);
            }
            return;
        }
        let channel_gradient = |x: usize, ch: usize| {
            let i = x * channels + ch;
            let gc = if x > 0 && x + 1 < cols { work(row[i + channels]) - work(row[i - channels]) } else { W::ZERO };
            let gr = if interior_y { work(down[i]) - work(up[i]) } else { W::ZERO };
            (gr, gc)
        };
        for x in 0..width {
            let mut best = 0;
            let mut best_g = channel_gradient(x, 0);
            let mut best_mag = W::magnitude(best_g.0, best_g.1);
            for ch in 1..channels {
                let g = channel_gradient(x, ch);
                let m = W::magnitude(g.0, g.1);
                if m > best_mag {
                    best = ch;
                    best_g = g;
                    best_mag = m;
                }
            }
            if let Some(ties) = ties.as_deref_mut() {
                // Another channel with a different gradient and (almost) the same
                // magnitude: numpy's hypot decides which comes first.
                let floor = best_mag - best_mag.mul(W::TIE_RTOL);
                let near_tie = (0..channels).any(|ch| {
                    let g = channel_gradient(x, ch);
                    ch != best && g != best_g && W::magnitude(g.0, g.1) >= floor
                });
                if near_tie {
                    let (gr, gc) = (0..channels)
                        .map(|ch| {
                            let g = channel_gradient(x, ch);
                            (g.0.to_f64(), g.1.to_f64())
                        })
                        .unzip();
                    ties.push(NearTie { y, x, chosen: best, gr, gc });
                }
            }
            if !overrides.is_empty() {
                if let Some(&ch) = overrides.get(&(y, x)) {
                    best_g = channel_gradient(x, ch);
                }
            }
            gy[x] = best_g.0.to_f64();
            gx[x] = best_g.1.to_f64();
        }
    }
}
