//! `salesflow demo` end to end on a small chain: the summary's numbers are checked against the files the run left
//! in the bucket directory — the raw copy, the rejects, and the CSV datasets read through the QuickSight manifests.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;

use rust_decimal::Decimal;
use serde_json::Value;

fn demo(out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_salesflow"))
        .args(["demo", "--stores", "6", "--hours", "3", "--seed", "7", "--date", "2026-11-26", "--quiet", "--out"])
        .arg(out)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn lines_of(path: &Path) -> usize {
    let file = BufReader::new(std::fs::File::open(path).unwrap());
    salesflow_store::codec::decompressing(file).unwrap().lines().count()
}

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

/// The CSV files a daily manifest lists, as paths in the bucket directory.
fn listed(bucket_dir: &Path, bucket: &str, dataset: &str, date: &str) -> Vec<PathBuf> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bucket_dir.join(format!("manifests/{dataset}/dt={date}.json"))).unwrap())
            .unwrap();
    assert_eq!(manifest["globalUploadSettings"]["containsHeader"], "true");
    let prefix = format!("s3://{bucket}/");
    manifest["fileLocations"][0]["URIs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| bucket_dir.join(u.as_str().unwrap().strip_prefix(&prefix).unwrap()))
        .collect()
}

/// (rows, distinct receipts, turnover per category) of the rows of a store-time date in these CSV files.
fn read_csv(files: &[PathBuf], date: &str, total_column: &str) -> (u64, BTreeSet<String>, BTreeMap<String, Decimal>) {
    let mut rows = 0;
    let mut receipts = BTreeSet::new();
    let mut by_category: BTreeMap<String, Decimal> = BTreeMap::new();
    for file in files {
        let mut reader = csv::Reader::from_path(file).unwrap();
        let headers = reader.headers().unwrap().clone();
        let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let (d, category, total) = (col("date"), col("category"), col(total_column));
        let receipt = headers.iter().position(|h| h == "receipt_id");
        for record in reader.records() {
            let r = record.unwrap();
            assert_eq!(&r[d], date, "{}", file.display());
            rows += 1;
            if let Some(i) = receipt {
                receipts.insert(r[i].to_string());
            }
            *by_category.entry(r[category].to_string()).or_default() += r[total].parse::<Decimal>().unwrap();
        }
    }
    (rows, receipts, by_category)
}

#[test]
fn the_summary_adds_up_and_matches_the_csv_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = demo(&out);
    assert!(o.status.success(), "{}\n{}", text(&o.stdout), text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("add up to exactly what the stores rang up"), "{stdout}");
    assert!(stdout.contains("dashboard.html"), "{stdout}");

    let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["datasets_match"], true);
    let bucket = summary["bucket"].as_str().unwrap();
    let bucket_dir = out.join(bucket);
    for prefix in ["raw", "landed", "rejects", "datasets/sales_lines", "datasets/hourly_sales", "manifests"] {
        assert!(bucket_dir.join(prefix).is_dir(), "{prefix}/ is missing");
    }

    // Counts add up, from both ends.
    let t = &summary["totals"];
    let n = |v: &Value| v.as_u64().unwrap();
    assert_eq!(n(&t["records_in"]), n(&t["landed"]) + n(&t["filtered"]) + n(&t["rejected"]));
    assert!(n(&t["filtered"]) + n(&t["rejected"]) > 0 || n(&t["records_in"]) < 100);
    let raw_lines: usize = files_under(&bucket_dir.join("raw")).iter().map(|p| lines_of(p)).sum();
    assert_eq!(raw_lines as u64, n(&t["records_in"]), "every record in has its raw copy");
    let reject_lines: usize = files_under(&bucket_dir.join("rejects")).iter().map(|p| lines_of(p)).sum();
    assert_eq!(reject_lines as u64, n(&t["rejected"]), "every reject is in rejects/");

    let mut sales_rows = 0;
    let days = summary["days"].as_array().unwrap();
    assert_eq!(days.len(), 2);
    for day in days {
        let date = day["date"].as_str().unwrap();
        let sent_bad: u64 = day["sent_bad"].as_object().unwrap().values().map(n).sum();
        assert_eq!(n(&day["records_in"]), n(&day["sent_receipts"]) + n(&day["sent_training"]) + sent_bad);
        assert_eq!(n(&day["landed"]), n(&day["sent_receipts"]));
        assert_eq!(n(&day["filtered"]), n(&day["sent_training"]));
        assert_eq!(n(&day["lines"]), n(&day["sent_lines"]));

        // sales_lines, through the manifest: one row per line landed, the receipts landed, the turnover sent.
        let (rows, receipts, by_category) =
            read_csv(&listed(&bucket_dir, bucket, "sales_lines", date), date, "line_total");
        assert_eq!(rows, n(&day["lines"]), "{date}: sales_lines rows");
        assert_eq!(receipts.len() as u64, n(&day["landed"]), "{date}: receipts");
        let expected: BTreeMap<String, Decimal> =
            day["turnover_by_category"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), dec(v))).collect();
        assert_eq!(by_category, expected, "{date}: turnover per category in sales_lines");
        assert_eq!(by_category.values().sum::<Decimal>(), dec(&day["turnover"]));
        sales_rows += rows;

        // hourly_sales, the dashboard's dataset, says the same.
        let (_, _, hourly) = read_csv(&listed(&bucket_dir, bucket, "hourly_sales", date), date, "turnover");
        assert_eq!(hourly, expected, "{date}: turnover per category in hourly_sales");
    }
    assert_eq!(sales_rows, n(&t["sales_lines_rows"]));
    assert_eq!(sales_rows, n(&t["lines"]));

    // The summary's category table is today's vs last week's turnover, most sold first.
    let categories = summary["categories"].as_array().unwrap();
    let today: Vec<Decimal> = categories.iter().map(|c| dec(&c[1])).collect();
    assert!(today.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(today.iter().sum::<Decimal>(), dec(&days[1]["turnover"]));

    // The dashboard: one page, six charts, nothing fetched from elsewhere.
    let html = std::fs::read_to_string(out.join("dashboard.html")).unwrap();
    for chart in ["hourly", "trend", "treemap", "map", "categories", "managers"] {
        assert!(html.contains(&format!(r#"data-chart="{chart}""#)), "chart {chart} is missing");
    }
    assert_eq!(html.matches(r#"<svg class="chart""#).count(), 6);
    for remote in ["src=", "href=", "url(", "@import"] {
        assert!(!html.contains(remote), "the page loads nothing: found {remote}");
    }
    assert!(html.contains("R² = "));

    // A second run clears the first; a directory that is not a demo's is left alone.
    let again = demo(&out);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let again: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(again["totals"], summary["totals"], "the same seed gives the same run");
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "mine").unwrap();
    let refused = demo(&other);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("not a salesflow demo directory"), "{}", text(&refused.stderr));
    assert!(other.join("keep.txt").exists());
}
