//! Opening inputs the way users hand them over: files or stdin, gzip recognised by its magic bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A reader over a file (or stdin for `-`), decompressing gzip transparently.
pub fn open(path: &Path) -> Result<Box<dyn Read + Send>> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
    };
    let mut buffered = BufReader::with_capacity(1 << 20, raw);
    let is_gzip =
        buffered.fill_buf().with_context(|| format!("cannot read {}", path.display()))?.starts_with(&GZIP_MAGIC);
    Ok(if is_gzip { Box::new(MultiGzDecoder::new(buffered)) } else { Box::new(buffered) })
}

/// Reads a whole input (file or `-`) into memory.
pub fn read_all(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open(path)?.read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}
