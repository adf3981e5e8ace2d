//! Image output: tensors in [-1, 1] to 8-bit pixels, PNG grids and IDX files.

use std::path::Path;

use anyhow::{Context, Result};
use cign_data::IdxImages;
use image::GrayImage;
use tch::{Kind, Tensor};

/// Converts `[N, 1, H, W]` images in [-1, 1] to 8-bit pixels (round to nearest, as a PNG
/// writer of `(x + 1) / 2` would).
///
/// # Errors
///
/// Some pixel is NaN or infinite (a diverged model): such images are never written.
pub fn to_u8(images: &Tensor) -> Result<IdxImages> {
    let bad = images
        .isfinite()
        .logical_not()
        .sum(Kind::Int64)
        .int64_value(&[]);
    if bad > 0 {
        anyhow::bail!(
            "the model produced {bad} non-finite pixel values (NaN or infinite) in {} images: \
             it diverged, so nothing was written",
            images.size()[0]
        );
    }
    let size = images.size();
    let (n, h, w) = (size[0] as usize, size[2] as usize, size[3] as usize);
    let pixels = ((images.detach().to_device(tch::Device::Cpu) + 1.0) * 127.5)
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8)
        .reshape([-1]);
    Ok(IdxImages {
        count: n,
        rows: h,
        cols: w,
        pixels: Vec::<u8>::try_from(pixels).context("cannot read the pixels back")?,
    })
}

/// Lays out `rows` rows of images (each a `[N, 1, H, W]` tensor in [-1, 1]) into one grid
/// with a 2-pixel border, and writes it as PNG, atomically.
///
/// # Errors
///
/// Non-finite pixels (see [`to_u8`]), or the file cannot be written.
pub fn write_grid(path: &Path, rows: &[Tensor]) -> Result<()> {
    let rows_u8: Vec<IdxImages> = rows.iter().map(to_u8).collect::<Result<_>>()?;
    write_grid_u8(path, &rows_u8)
}

/// [`write_grid`] of rows already converted to 8-bit pixels ([`to_u8`]).
///
/// # Errors
///
/// The file cannot be written (the error names it).
pub fn write_grid_u8(path: &Path, rows_u8: &[IdxImages]) -> Result<()> {
    let pad = 2u32;
    let cols = rows_u8.iter().map(|r| r.count).max().unwrap_or(0) as u32;
    let (h, w) = rows_u8
        .first()
        .map(|r| (r.rows as u32, r.cols as u32))
        .unwrap_or((28, 28));
    let mut grid = GrayImage::from_pixel(
        pad + cols * (w + pad),
        pad + rows_u8.len() as u32 * (h + pad),
        image::Luma([64]),
    );
    for (r, row) in rows_u8.iter().enumerate() {
        for c in 0..row.count {
            let img = row.image(c);
            let (x0, y0) = (pad + c as u32 * (w + pad), pad + r as u32 * (h + pad));
            for y in 0..h {
                for x in 0..w {
                    let v = img[(y * w + x) as usize];
                    grid.put_pixel(x0 + x, y0 + y, image::Luma([v]));
                }
            }
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_png(path, &image::DynamicImage::ImageLuma8(grid))
}

/// Encodes `img` as PNG and writes it atomically.
///
/// # Errors
///
/// Encoding or writing failed; the error names the file.
pub fn write_png(path: &Path, img: &image::DynamicImage) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .with_context(|| format!("cannot encode {}", path.display()))?;
    cign_data::atomic::write_atomic_bytes(path, &bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a greyscale image file (PNG, JPEG) as a `[1, 1, H, W]` tensor in [-1, 1].
///
/// # Errors
///
/// `path` is a directory, cannot be read or decoded; the error names the file.
pub fn read_gray(path: &Path) -> Result<Tensor> {
    if path.is_dir() {
        anyhow::bail!("{}: is a directory, not an image file", path.display());
    }
    let img = image::open(path)
        .with_context(|| format!("cannot read image {}", path.display()))?
        .to_luma8();
    let (w, h) = img.dimensions();
    Ok(Tensor::from_slice(img.as_raw())
        .view([1, 1, h as i64, w as i64])
        .to_kind(Kind::Float)
        * (2.0 / 255.0)
        - 1.0)
}
