//! Thread pools for the batch functions: one rayon pool per requested size, built once.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use crate::error::{FeatError, Result};

fn pools() -> &'static Mutex<HashMap<usize, Arc<rayon::ThreadPool>>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Largest thread count accepted: every distinct count keeps a pool alive (see `pool`).
pub const MAX_THREADS: usize = 256;

/// Number of threads used when the caller does not say: all cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn pool(n_threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    let mut map = pools().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = map.get(&n_threads) {
        return Ok(p.clone());
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(n_threads)
        .thread_name(|i| format!("featrs-{i}"))
        .build()
        .map_err(|e| FeatError::Internal(format!("cannot start {n_threads} threads: {e}")))?;
    let p = Arc::new(p);
    map.insert(n_threads, p.clone());
    Ok(p)
}

/// Apply `f(image, out_row)` to each image of a C-ordered stack, in parallel.
///
/// `images` holds `n` images of `image_len` elements, `out` holds `n` rows of `row_len`.
/// The first error (if any) is returned; rows of failed images are left as they were.
pub fn for_each_image<T, F>(
    images: &[T],
    image_len: usize,
    out: &mut [f64],
    row_len: usize,
    n_threads: usize,
    f: F,
) -> Result<()>
where
    T: Sync,
    F: Fn(&[T], &mut [f64]) -> Result<()> + Sync + Send,
{
    if n_threads == 0 || n_threads > MAX_THREADS {
        return Err(FeatError::Value(format!("n_threads must be in [1, {MAX_THREADS}], got {n_threads}")));
    }
    let n = if image_len == 0 { 0 } else { images.len() / image_len };
    if images.len() != n * image_len || out.len() != n * row_len {
        return Err(FeatError::Value(format!(
            "output has {} values, expected {} images x {} features",
            out.len(),
            n,
            row_len
        )));
    }
    if n == 0 || row_len == 0 {
        return Ok(());
    }
    let run = || {
        images
            .par_chunks(image_len)
            .zip(out.par_chunks_mut(row_len))
            .try_for_each(|(img, row)| f(img, row))
    };
    if n_threads == 1 {
        images
            .chunks(image_len)
            .zip(out.chunks_mut(row_len))
            .try_for_each(|(img, row)| f(img, row))
    } else {
        pool(n_threads)?.install(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n_threads: usize, images: &[u8], image_len: usize, row_len: usize) -> Result<Vec<f64>> {
        let mut out = vec![0.0; if image_len == 0 { 0 } else { images.len() / image_len * row_len }];
        for_each_image(images, image_len, &mut out, row_len, n_threads, |img, row| {
            if img[0] == 99 {
                return Err(FeatError::Value("bad image".into()));
            }
            row.iter_mut().enumerate().for_each(|(k, r)| *r = (img.iter().map(|&v| v as u32).sum::<u32>() + k as u32) as f64);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn rows_follow_images_with_any_thread_count() {
        let images: Vec<u8> = (0..40).collect();
        let one = run(1, &images, 4, 2).unwrap();
        assert_eq!(&one[..4], &[6.0, 7.0, 22.0, 23.0]);
        assert_eq!(run(3, &images, 4, 2).unwrap(), one);
    }

    #[test]
    fn errors_and_bad_sizes_are_reported() {
        let mut images = vec![0u8; 12];
        images[4] = 99;
        assert!(run(2, &images, 4, 1).is_err());
        assert!(run(0, &images, 4, 1).is_err());
        assert!(run(MAX_THREADS + 1, &images, 4, 1).is_err());
        let mut short = vec![0.0; 2];
        assert!(for_each_image(&[0u8; 12], 4, &mut short, 1, 1, |_, _| Ok(())).is_err());
    }
}
