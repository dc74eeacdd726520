//! Opening inputs the way users hand them over: files or stdin, zstd or gzip recognised by their magic bytes
//! ([`salesflow_store::codec`], the reader of `raw/` and `landed/` objects).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};

/// A reader over a file (or stdin for `-`), decompressing zstd and gzip transparently.
pub fn open(path: &Path) -> Result<Box<dyn Read + Send>> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
    };
    let buffered = BufReader::with_capacity(1 << 20, raw);
    Ok(Box::new(
        salesflow_store::codec::decompressing(buffered).with_context(|| format!("cannot read {}", path.display()))?,
    ))
}

/// Reads a whole input (file or `-`) into memory.
pub fn read_all(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open(path)?.read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}
