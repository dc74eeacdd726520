//! How the objects salesflow keeps for itself (`raw/`, `landed/`) are compressed, in one place: written as zstd
//! at level [`LEVEL`], read in any format salesflow has written (zstd, the gzip of objects landed before the
//! switch, plain NDJSON), told apart by their first bytes. Measured on the objects of one 6 MB Kinesis event
//! (BENCHMARKS.md, "Compression of raw/ and landed/"): zstd -3 compresses ~870 MB/s to 0.77 MB, where gzip -6
//! (the former choice, miniz_oxide) did ~60 MB/s to 1.56 MB. Athena reads `.zst` text files; the datasets
//! QuickSight reads stay plain CSV.

use std::io::{self, BufRead, BufReader, Read, Write};

use bytes::Bytes;

/// The zstd level of `raw/` and `landed/` objects.
pub const LEVEL: i32 = 3;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Compresses `chunks`, in order, into one zstd frame with a checksum. The same chunks always give the same
/// bytes, so a redelivered batch rewrites an object identically.
pub fn compress(chunks: impl IntoIterator<Item = impl AsRef<[u8]>>) -> Bytes {
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), LEVEL).expect("LEVEL is a valid zstd level");
    encoder.include_checksum(true).expect("the checksum flag is a valid parameter");
    for chunk in chunks {
        encoder.write_all(chunk.as_ref()).expect("writing to memory cannot fail");
    }
    Bytes::from(encoder.finish().expect("writing to memory cannot fail"))
}

/// The decompressed content of `input`, read as a stream: zstd (one or more frames), gzip (one or more
/// members) or, when it starts with neither magic, the bytes as they are. An error means corrupt data.
pub fn decompressing<'a>(input: impl BufRead + Send + 'a) -> io::Result<Box<dyn BufRead + Send + 'a>> {
    const BUFFER: usize = 256 << 10;
    let mut input = input;
    let head = input.fill_buf()?;
    Ok(if head.starts_with(&ZSTD_MAGIC) {
        Box::new(BufReader::with_capacity(BUFFER, zstd::stream::read::Decoder::with_buffer(input)?))
    } else if head.starts_with(&GZIP_MAGIC) {
        Box::new(BufReader::with_capacity(BUFFER, flate2::bufread::MultiGzDecoder::new(input)))
    } else {
        Box::new(input)
    })
}

/// [`decompressing`] read to the end (tests and small objects).
pub fn decompress(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    decompressing(bytes)?.read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compresses_deterministically_and_reads_every_format() {
        let text = b"{\"a\":1}\n{\"b\":2}\n".repeat(1000);
        let chunks = [&text[..10], &text[10..]];
        let once = compress(chunks);
        assert_eq!(once, compress(chunks), "the same chunks give the same bytes");
        assert!(once.starts_with(&ZSTD_MAGIC) && once.len() < text.len() / 10);
        assert_eq!(decompress(&once).unwrap(), text);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        assert_eq!(decompress(&gz.finish().unwrap()).unwrap(), text, "objects landed as gzip still read");
        assert_eq!(decompress(&text).unwrap(), text, "plain NDJSON reads as it is");

        let two_frames = [compress([&text[..5]]), compress([&text[5..]])].concat();
        assert_eq!(decompress(&two_frames).unwrap(), text, "concatenated frames read as one stream");
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let mut bad = compress([&b"{\"a\":1}\n".repeat(100)[..]]).to_vec();
        let middle = bad.len() / 2;
        bad[middle] ^= 0xff;
        assert!(decompress(&bad).is_err());
        assert!(decompress(&ZSTD_MAGIC).is_err());
    }
}
