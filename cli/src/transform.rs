//! `salesflow transform`: NDJSON through a pipeline, in parallel chunks with output kept in input order.
//! Every input line ends in exactly one outcome; the counts on stderr add up, and rejects (with `--rejects`)
//! are written one JSON line each with the file, line number, step and reason.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use rayon::prelude::*;
use salesflow_core::{Counts, Outcome, Pipeline};
use serde_json::json;

use crate::{input, pipeline};

#[derive(Args)]
pub struct TransformArgs {
    /// Pipeline file (YAML or JSON); the embedded sample pipeline when absent.
    #[arg(long, short)]
    pipeline: Option<PathBuf>,
    /// NDJSON inputs, gzip or not; stdin when none (or `-`).
    inputs: Vec<PathBuf>,
    /// Output file for the emitted records (NDJSON); stdout by default.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// File receiving one JSON line per rejected record: file, line, step, reason, payload.
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Worker threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
}

/// Lines are processed in chunks of about this many bytes.
const CHUNK_BYTES: usize = 4 << 20;
/// Lines per parallel task.
const LINES_PER_TASK: usize = 32;

/// What one task produced, written in order.
#[derive(Default)]
struct Processed {
    out: Vec<u8>,
    rejects: Vec<u8>,
    counts: Counts,
}

pub fn run(args: TransformArgs) -> Result<ExitCode> {
    if let Some(n) = args.threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("cannot start the worker threads")?;
    }
    let pipeline = pipeline::load(args.pipeline.as_deref())?;
    let mut out: Box<dyn Write + Send> = match &args.out {
        Some(p) => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout())),
    };
    let mut rejects: Option<Box<dyn Write + Send>> = match &args.rejects {
        Some(p) => {
            Some(Box::new(BufWriter::new(File::create(p).with_context(|| format!("cannot create {}", p.display()))?)))
        }
        None => None,
    };
    let inputs = if args.inputs.is_empty() { vec![PathBuf::from("-")] } else { args.inputs.clone() };
    let started = Instant::now();
    let mut counts = Counts::default();
    let mut bytes_in = 0u64;
    for path in &inputs {
        bytes_in += transform_input(&pipeline, path, &mut *out, &mut rejects, &mut counts)?;
    }
    out.flush().context("cannot write the output")?;
    if let Some(r) = rejects.as_mut() {
        r.flush().context("cannot write the rejects")?;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{counts}");
    eprintln!(
        "{:.1} MB in {:.2} s: {:.1} MB/s, {:.0} records/s",
        bytes_in as f64 / 1e6,
        seconds,
        bytes_in as f64 / 1e6 / seconds,
        counts.records_in as f64 / seconds
    );
    assert!(counts.balanced(), "every record has exactly one outcome");
    if counts.rejected > 0 && rejects.is_none() {
        eprintln!("note: {} record(s) rejected; pass --rejects FILE to keep them with their reasons", counts.rejected);
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams one input through the pipeline; returns the bytes read. Three stages overlap: a reader thread cuts
/// the input into chunks of whole lines, the worker pool transforms a chunk in parallel, a writer thread writes
/// the previous chunk's results in input order.
fn transform_input(
    pipeline: &Pipeline,
    path: &Path,
    out: &mut (dyn Write + Send),
    rejects: &mut Option<Box<dyn Write + Send>>,
    counts: &mut Counts,
) -> Result<u64> {
    let mut reader = input::open(path)?;
    let name = path.display().to_string();
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Result<Vec<u8>>>(2);
    let (result_tx, result_rx) = mpsc::sync_channel::<Vec<Processed>>(2);
    std::thread::scope(|scope| {
        let name_ref = &name;
        let read = scope.spawn(move || read_chunks(&mut reader, &chunk_tx, name_ref));
        let write = scope.spawn(move || -> Result<Counts> {
            let mut counts = Counts::default();
            for results in result_rx {
                for p in results {
                    out.write_all(&p.out).context("cannot write the output")?;
                    if let Some(r) = rejects.as_mut() {
                        r.write_all(&p.rejects).context("cannot write the rejects")?;
                    }
                    counts.merge(&p.counts);
                }
            }
            Ok(counts)
        });
        let mut first_line = 1u64;
        let mut failure = None;
        for chunk in chunk_rx {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            let lines = split_lines(&chunk);
            let results: Vec<Processed> = lines
                .par_chunks(LINES_PER_TASK)
                .enumerate()
                .map(|(task, chunk)| process(pipeline, chunk, &name, first_line + (task * LINES_PER_TASK) as u64))
                .collect();
            first_line += lines.len() as u64;
            if result_tx.send(results).is_err() {
                break; // the writer failed: its error is reported below
            }
        }
        drop(result_tx);
        let written = write.join().expect("the writer thread does not panic");
        let total = read.join().expect("the reader thread does not panic");
        if let Some(e) = failure {
            return Err(e);
        }
        counts.merge(&written?);
        Ok(total)
    })
}

/// The reader's side: cuts the input into chunks of whole lines (about [`CHUNK_BYTES`] each) and sends them,
/// or the read error; returns the bytes read.
fn read_chunks(reader: &mut dyn Read, chunks: &mpsc::SyncSender<Result<Vec<u8>>>, name: &str) -> u64 {
    let mut total = 0u64;
    let mut carry = Vec::new();
    loop {
        let mut chunk = std::mem::take(&mut carry);
        chunk.reserve(CHUNK_BYTES);
        // `read_to_end` fills the spare capacity without zeroing it first.
        let n = match reader.take(CHUNK_BYTES as u64).read_to_end(&mut chunk) {
            Ok(n) => n,
            Err(e) => {
                let _ = chunks.send(Err(anyhow::Error::new(e).context(format!("cannot read {name}"))));
                return total;
            }
        };
        total += n as u64;
        if n > 0 {
            // Keep a trailing partial line for the next chunk.
            let cut = chunk.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            carry = chunk.split_off(cut);
        }
        if !chunk.is_empty() && chunks.send(Ok(chunk)).is_err() {
            return total;
        }
        if n == 0 {
            return total;
        }
    }
}

/// A chunk's lines, without their `\n`.
fn split_lines(chunk: &[u8]) -> Vec<&[u8]> {
    let body = chunk.strip_suffix(b"\n").unwrap_or(chunk);
    let mut lines = Vec::with_capacity(body.len() / 1024);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', body).chain([body.len()]) {
        lines.push(&body[start..end]);
        start = end + 1;
    }
    lines
}

fn process(pipeline: &Pipeline, lines: &[&[u8]], file: &str, first_line: u64) -> Processed {
    let mut p = Processed::default();
    // Splitting and carrying fields usually makes the output a little larger than the input.
    p.out.reserve(lines.iter().map(|l| l.len()).sum::<usize>() * 3 / 2);
    for (i, line) in lines.iter().enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue; // blank lines are not records
        }
        let outcome = pipeline.write_ndjson(line, &mut p.out);
        p.counts.record(&outcome, pipeline);
        match outcome {
            Outcome::Emitted(_) | Outcome::Filtered { .. } => {}
            Outcome::Rejected(r) => {
                let line_no = first_line + i as u64;
                let reject = json!({
                    "file": file,
                    "line": line_no,
                    "step": r.step_label(),
                    "reason": r.error.to_string(),
                    "payload": String::from_utf8_lossy(line),
                });
                serde_json::to_writer(&mut p.rejects, &reject).expect("writing to memory");
                p.rejects.push(b'\n');
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_whole_lines_and_split_back_into_them() {
        let text: Vec<u8> = (0..500_000).flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes()).collect();
        let (tx, rx) = mpsc::sync_channel(1 << 10);
        let total = read_chunks(&mut text.as_slice(), &tx, "input");
        drop(tx);
        let chunks: Vec<Vec<u8>> = rx.into_iter().map(|c| c.unwrap()).collect();
        assert_eq!(total, text.len() as u64);
        assert!(chunks.len() > 1 && chunks.iter().all(|c| c.ends_with(b"\n")), "{} chunks", chunks.len());
        let lines: Vec<&[u8]> = chunks.iter().flat_map(|c| split_lines(c)).collect();
        assert_eq!(lines.len(), 500_000);
        assert_eq!((lines[0], lines[499_999]), (&b"{\"n\":0}"[..], &b"{\"n\":499999}"[..]));
        // A last line without its newline is still a line.
        assert_eq!(split_lines(b"a\nb"), [&b"a"[..], &b"b"[..]]);
    }
}
