//! GLCM properties of every tile of a `grid x grid` split, each tile an image of its own.
use super::pair_stats::PairScratch;
use super::small::{props_small, View, SMALL_LEVELS_MAX};
use super::{props_from_pairs, Spec};
use crate::error::Result;
use crate::tiles::Tile;
use crate::value_err;

/// Properties of each tile of `image` (`rows x cols`) into `out`: tile-major, then the
/// layout of [`props_from_pairs`] (prop, then offset). `unsure[t * n_offsets + o]` flags
/// a correlation left NaN for the caller to settle (see [`super::UNSURE_STD`]).
pub fn props_grid(
    image: &[u8],
    rows: usize,
    cols: usize,
    tiles: &[Tile],
    spec: &Spec<'_>,
    scratch: &mut PairScratch,
    out: &mut [f64],
    unsure: &mut [u8],
) -> Result<()> {
    let (per_tile, n_offsets) = (spec.len(), spec.offsets.len());
    if image.len() != rows * cols {
        return value_err!("image holds {} values, expected {rows} x {cols}", image.len());
    }
    if out.len() != tiles.len() * per_tile || unsure.len() != tiles.len() * n_offsets {
        return value_err!("outputs must have {} x {per_tile} values", tiles.len());
    }
    for (t, tile) in tiles.iter().enumerate() {
        if tile.r1 > rows || tile.c1 > cols || tile.r0 >= tile.r1 || tile.c0 >= tile.c1 {
            return value_err!("tile {tile:?} is not inside a {rows} x {cols} image");
        }
        let (h, w) = (tile.r1 - tile.r0, tile.c1 - tile.c0);
        let dst = &mut out[t * per_tile..][..per_tile];
        let flags = &mut unsure[t * n_offsets..][..n_offsets];
        if spec.levels <= SMALL_LEVELS_MAX {
            let view = View { data: &image[tile.r0 * cols + tile.c0..], rows: h, cols: w, stride: cols };
            props_small(&view, spec, &mut scratch.small, dst, flags)?;
        } else {
            let mut copy = std::mem::take(&mut scratch.tile);
            copy.clear();
            for r in tile.r0..tile.r1 {
                copy.extend_from_slice(&image[r * cols + tile.c0..][..w]);
            }
            let r = props_from_pairs(&copy, h, w, spec, scratch, dst, flags);
            scratch.tile = copy;
            r?;
        }
    }
    Ok(())
}
