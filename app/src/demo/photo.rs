//! The photo a demo customer sends of the lamp that arrived broken: a small PNG drawn
//! here (a cracked blue lamp base on a table, a shard beside it), so the demo needs no
//! image file and the inbox has a real image to show. The fake Graph API serves it as
//! Meta serves a customer's media; Parley fetches it, checks its sha256 and stores it.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::LazyLock;

pub const MIME_TYPE: &str = "image/png";
/// Larger than the inbox's thumbnails, so that showing it full size shows more.
const WIDTH: u32 = 480;
const HEIGHT: u32 = 360;

static PNG: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let (palette, pixels) = draw();
    encode_png(WIDTH, HEIGHT, &palette, &pixels)
});

/// The photo's bytes.
pub fn png() -> &'static [u8] {
    &PNG
}

/// Hex SHA-256 of the photo, as the webhook and the media lookup announce it.
pub fn sha256() -> String {
    hex::encode(Sha256::digest(png()))
}

/// The palette (at most 256 colours) and the rows of palette indexes, top to bottom.
fn draw() -> (Vec<[u8; 3]>, Vec<u8>) {
    let mut palette: Vec<[u8; 3]> = Vec::new();
    let mut index = HashMap::new();
    let mut pixels = Vec::with_capacity((WIDTH * HEIGHT) as usize);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            // Drawn on a 192 x 144 grid, whatever the size.
            let colour = pixel(
                x as f32 * 192.0 / WIDTH as f32,
                y as f32 * 144.0 / HEIGHT as f32,
            );
            let i = *index.entry(colour).or_insert_with(|| {
                palette.push(colour);
                palette.len() - 1
            });
            pixels.push(u8::try_from(i).unwrap_or(u8::MAX));
        }
    }
    (palette, pixels)
}

fn pixel(x: f32, y: f32) -> [u8; 3] {
    // The lamp's base: an ellipse, lit from the left, split by a zigzag crack.
    let (dx, dy) = (x - 84.0, y - 78.0);
    if (dx / 40.0).powi(2) + (dy / 34.0).powi(2) <= 1.0 {
        let phase = (y / 5.0).rem_euclid(2.0);
        let zig = if phase < 1.0 { phase } else { 2.0 - phase };
        if (x - (79.0 + zig * 10.0)).abs() <= 0.9 {
            return [34, 30, 28];
        }
        let light = ((40.0 - dx).clamp(0.0, 80.0) / 8.0).floor() as u8 * 8;
        return [50 + light / 2, 100 + light / 2, 160 + light / 3];
    }
    // A shard that broke off, lying on the table.
    if (108.0..=132.0).contains(&y) && x >= 140.0 && x - 140.0 <= (y - 108.0) * 2.0 / 3.0 + 6.0 {
        return [60, 115, 175];
    }
    if y < 96.0 {
        // The wall, a little lighter towards the top.
        let shade = ((96.0 - y) / 4.0).floor() as u8;
        [200 + shade, 205 + shade, 212 + shade]
    } else {
        // The table, with a faint grain.
        let grain = ((x as u32 * 7 + y as u32 * 13) % 17) as u8;
        [140 + grain, 98 + grain / 2, 64 + grain / 3]
    }
}

/// A PNG of 8-bit palette indexes, its image data in stored (uncompressed) deflate
/// blocks: no compression library for one small picture.
fn encode_png(width: u32, height: u32, palette: &[[u8; 3]], pixels: &[u8]) -> Vec<u8> {
    let row = width as usize;
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for line in pixels.chunks(row) {
        raw.push(0); // filter: none
        raw.extend_from_slice(line);
    }
    let mut zlib = vec![0x78, 0x01];
    let mut blocks = raw.chunks(0xffff).peekable();
    while let Some(block) = blocks.next() {
        zlib.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    // 8 bits, indexed colour, deflate, no filter, no interlace.
    header.extend_from_slice(&[8, 3, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"PLTE", palette.concat().as_slice());
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = png.len();
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let crc = crc32(&png[start..]);
    png.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn the_drawing_fits_a_palette() {
        let (palette, pixels) = draw();
        assert!(palette.len() <= 256, "{} colours", palette.len());
        assert_eq!(pixels.len(), (WIDTH * HEIGHT) as usize);
    }

    #[test]
    fn the_photo_is_a_png_of_its_size() {
        let png = png();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(&png[16..20], &WIDTH.to_be_bytes());
        assert_eq!(&png[20..24], &HEIGHT.to_be_bytes());
        assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]));
        // Well under WhatsApp's 5 MB for images.
        assert!(png.len() < 200_000, "{}", png.len());
    }
}
