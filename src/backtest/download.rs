//! `bsc-bot data download`: Binance's public spot archive (`data.binance.vision`) into
//! `backtest-data/`, verified against each file's published SHA-256.
//!
//! Whole months before the current one come as monthly zips, the rest as daily zips; a month
//! whose monthly zip is missing falls back to its days. Files already extracted are skipped, and
//! every write goes through a temporary name, so an interrupted download never leaves a partial
//! CSV that a later run would take as complete.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::Symbol;

pub const DEFAULT_BASE_URL: &str = "https://data.binance.vision";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveKind {
    Klines { interval: String },
    Trades,
    AggTrades,
}

impl ArchiveKind {
    /// The token in Binance's file names: `1m`, `trades`, `aggTrades`.
    pub fn token(&self) -> &str {
        match self {
            ArchiveKind::Klines { interval } => interval,
            ArchiveKind::Trades => "trades",
            ArchiveKind::AggTrades => "aggTrades",
        }
    }

    fn dir(&self, symbol: &str) -> String {
        match self {
            ArchiveKind::Klines { interval } => format!("klines/{symbol}/{interval}"),
            ArchiveKind::Trades => format!("trades/{symbol}"),
            ArchiveKind::AggTrades => format!("aggTrades/{symbol}"),
        }
    }
}

pub const KLINE_INTERVALS: &[&str] = &[
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d",
];

#[derive(Debug, Clone)]
pub struct DownloadRequest {
    pub symbol: Symbol,
    pub kind: ArchiveKind,
    /// First day included.
    pub from: NaiveDate,
    /// First day not included.
    pub to: NaiveDate,
    /// `today` decides which months are complete (monthly files exist only for past months).
    pub today: NaiveDate,
    pub base_url: String,
    pub dest: PathBuf,
}

/// One archive file: where it is remotely and what it becomes locally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveFile {
    pub url_path: String,
    pub csv_name: String,
    pub monthly: bool,
    pub month: (i32, u32),
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct DownloadReport {
    pub downloaded: Vec<String>,
    pub skipped: Vec<String>,
    pub missing: Vec<String>,
    pub bytes: u64,
    pub dest: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(
        "{url}: checksum mismatch (published {expected}, got {actual}); the file was discarded"
    )]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{0}")]
    Archive(String),
}

/// Progress notifications for the terminal.
pub enum DownloadEvent<'a> {
    Start {
        total: usize,
    },
    File {
        index: usize,
        name: &'a str,
        status: &'a str,
    },
}

fn month_start(y: i32, m: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, 1)
}

fn next_month(y: i32, m: u32) -> (i32, u32) {
    if m == 12 {
        (y + 1, 1)
    } else {
        (y, m + 1)
    }
}

impl DownloadRequest {
    fn symbol_token(&self) -> String {
        format!("{}{}", self.symbol.base(), self.symbol.quote())
    }

    fn monthly(&self, y: i32, m: u32) -> ArchiveFile {
        let s = self.symbol_token();
        let name = format!("{s}-{}-{y:04}-{m:02}", self.kind.token());
        ArchiveFile {
            url_path: format!("/data/spot/monthly/{}/{name}.zip", self.kind.dir(&s)),
            csv_name: format!("{name}.csv"),
            monthly: true,
            month: (y, m),
        }
    }

    fn daily(&self, d: NaiveDate) -> ArchiveFile {
        let s = self.symbol_token();
        let name = format!("{s}-{}-{}", self.kind.token(), d.format("%Y-%m-%d"));
        ArchiveFile {
            url_path: format!("/data/spot/daily/{}/{name}.zip", self.kind.dir(&s)),
            csv_name: format!("{name}.csv"),
            monthly: false,
            month: (d.year(), d.month()),
        }
    }

    /// Daily files of one month that fall inside the range.
    fn days_of(&self, y: i32, m: u32) -> Vec<ArchiveFile> {
        let Some(start) = month_start(y, m) else {
            return Vec::new();
        };
        let (ny, nm) = next_month(y, m);
        let end = month_start(ny, nm).unwrap_or(start);
        start
            .iter_days()
            .take_while(|d| *d < end)
            .filter(|d| *d >= self.from && *d < self.to && *d < self.today)
            .map(|d| self.daily(d))
            .collect()
    }

    /// The files covering `[from, to)`: monthly for complete past months, daily otherwise.
    pub fn plan(&self) -> Vec<ArchiveFile> {
        let mut out = Vec::new();
        let (mut y, mut m) = (self.from.year(), self.from.month());
        let this_month = (self.today.year(), self.today.month());
        while let Some(start) = month_start(y, m) {
            if start >= self.to {
                break;
            }
            let (ny, nm) = next_month(y, m);
            let end = month_start(ny, nm).unwrap_or(start);
            let whole = start >= self.from && end <= self.to;
            if whole && (y, m) < this_month {
                out.push(self.monthly(y, m));
            } else {
                out.extend(self.days_of(y, m));
            }
            (y, m) = (ny, nm);
        }
        out
    }

    /// Where extracted CSVs go: `backtest-data/BTCUSDT/1m/`.
    pub fn dest_dir(&self) -> PathBuf {
        self.dest.join(self.symbol_token()).join(self.kind.token())
    }
}

/// HTTP with a few retries on transport errors and 5xx; 404 is an answer, not a failure.
async fn get(
    client: &reqwest::Client,
    url: &str,
) -> Result<Option<reqwest::Response>, DownloadError> {
    let mut delay = Duration::from_millis(250);
    let mut last = String::new();
    for _ in 0..4 {
        match client.get(url).send().await {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => return Ok(None),
            Ok(r) if r.status().is_success() => return Ok(Some(r)),
            Ok(r) if r.status().is_server_error() => last = format!("HTTP {}", r.status()),
            Ok(r) => {
                return Err(DownloadError::Http {
                    url: url.to_string(),
                    message: format!("HTTP {}", r.status()),
                })
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    Err(DownloadError::Http {
        url: url.to_string(),
        message: format!("gave up after 4 attempts: {last}"),
    })
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> DownloadError {
    DownloadError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Fetch one archive: checksum, zip (hashed while streaming to disk), verify, extract.
/// `Ok(None)` when the archive does not exist remotely.
async fn fetch(
    client: &reqwest::Client,
    base: &str,
    file: &ArchiveFile,
    dir: &Path,
) -> Result<Option<u64>, DownloadError> {
    let url = format!("{}{}", base.trim_end_matches('/'), file.url_path);
    let Some(sum) = get(client, &format!("{url}.CHECKSUM")).await? else {
        return Ok(None);
    };
    let sum_text = sum.text().await.map_err(|e| DownloadError::Http {
        url: format!("{url}.CHECKSUM"),
        message: e.to_string(),
    })?;
    let expected = sum_text
        .split_whitespace()
        .next()
        .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| {
            DownloadError::Archive(format!("{url}.CHECKSUM: no SHA-256 in {sum_text:?}"))
        })?
        .to_ascii_lowercase();
    let Some(mut resp) = get(client, &url).await? else {
        return Ok(None);
    };
    let zip_tmp = dir.join(format!(".{}.zip.part", file.csv_name));
    let mut out = new_part(&zip_tmp)?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| DownloadError::Http {
        url: url.clone(),
        message: e.to_string(),
    })? {
        hasher.update(&chunk);
        out.write_all(&chunk).map_err(|e| io_err(&zip_tmp, e))?;
        bytes += chunk.len() as u64;
    }
    out.flush().map_err(|e| io_err(&zip_tmp, e))?;
    drop(out);
    let actual = hex(&hasher.finalize());
    if actual != expected {
        let _ = std::fs::remove_file(&zip_tmp);
        return Err(DownloadError::Checksum {
            url,
            expected,
            actual,
        });
    }
    let csv_tmp = dir.join(format!(".{}.part", file.csv_name));
    let extract = {
        let zip_tmp = zip_tmp.clone();
        let csv_tmp = csv_tmp.clone();
        tokio::task::spawn_blocking(move || extract_single_csv(&zip_tmp, &csv_tmp))
    };
    let result = extract
        .await
        .map_err(|e| DownloadError::Archive(e.to_string()))
        .and_then(|r| r);
    let _ = std::fs::remove_file(&zip_tmp);
    result?;
    let final_path = dir.join(&file.csv_name);
    std::fs::rename(&csv_tmp, &final_path).map_err(|e| io_err(&final_path, e))?;
    Ok(Some(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn extract_single_csv(zip_path: &Path, csv_path: &Path) -> Result<(), DownloadError> {
    let file = std::fs::File::open(zip_path).map_err(|e| io_err(zip_path, e))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| DownloadError::Archive(format!("{}: {e}", zip_path.display())))?;
    let index = (0..archive.len())
        .find(|&i| {
            archive
                .by_index(i)
                .ok()
                .and_then(|f| f.name().ok().map(|n| n.ends_with(".csv")))
                .unwrap_or(false)
        })
        .ok_or_else(|| DownloadError::Archive(format!("{}: no .csv inside", zip_path.display())))?;
    let mut entry = archive
        .by_index(index)
        .map_err(|e| DownloadError::Archive(format!("{}: {e}", zip_path.display())))?;
    let zipped = std::fs::metadata(zip_path).map(|m| m.len()).unwrap_or(0);
    let limit = zipped.saturating_mul(MAX_INFLATION).max(MIN_INFLATED_LIMIT);
    let mut out = new_part(csv_path)?;
    let copied = std::io::copy(&mut std::io::Read::take(&mut entry, limit + 1), &mut out)
        .map_err(|e| io_err(csv_path, e))?;
    if copied > limit {
        drop(out);
        let _ = std::fs::remove_file(csv_path);
        return Err(DownloadError::Archive(format!(
            "{}: inflates past {limit} bytes ({MAX_INFLATION} times its {zipped}): not a market \
             data archive",
            zip_path.display()
        )));
    }
    out.flush().map_err(|e| io_err(csv_path, e))
}

/// A CSV compresses 5-15 times; an archive that inflates past this many times its size is a
/// zip bomb, refused before it fills the disk.
const MAX_INFLATION: u64 = 100;
/// Small archives may inflate up to this whatever their ratio.
const MIN_INFLATED_LIMIT: u64 = 64 << 20;

/// A download's scratch file: whatever a crashed run (or anyone) left at its name goes (a link
/// itself, never its target), then a new private file.
fn new_part(path: &Path) -> Result<std::fs::File, DownloadError> {
    let _ = std::fs::remove_file(path);
    crate::private_files::create_new(path).map_err(|e| io_err(path, e))
}

/// Run a download; `progress` hears of each file.
pub async fn download(
    req: &DownloadRequest,
    progress: &mut (dyn FnMut(DownloadEvent<'_>) + Send),
) -> Result<DownloadReport, DownloadError> {
    let dir = req.dest_dir();
    crate::private_files::create_private_dirs(&dir).map_err(|e| io_err(&dir, e))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .user_agent(concat!("bsc-bot/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DownloadError::Http {
            url: req.base_url.clone(),
            message: e.to_string(),
        })?;
    let mut report = DownloadReport {
        dest: dir.display().to_string(),
        ..Default::default()
    };
    let mut queue = req.plan();
    progress(DownloadEvent::Start { total: queue.len() });
    let mut i = 0;
    while i < queue.len() {
        let file = queue[i].clone();
        i += 1;
        let exists = std::fs::metadata(dir.join(&file.csv_name)).is_ok_and(|m| m.len() > 0);
        // A month whose monthly CSV is absent but whose days are all there is also done.
        if exists {
            progress(DownloadEvent::File {
                index: i,
                name: &file.csv_name,
                status: "already there",
            });
            report.skipped.push(file.csv_name);
            continue;
        }
        match fetch(&client, &req.base_url, &file, &dir).await? {
            Some(bytes) => {
                report.bytes += bytes;
                progress(DownloadEvent::File {
                    index: i,
                    name: &file.csv_name,
                    status: "downloaded, sha256 ok",
                });
                report.downloaded.push(file.csv_name);
            }
            None if file.monthly => {
                // No monthly archive (yet): take the month day by day instead.
                progress(DownloadEvent::File {
                    index: i,
                    name: &file.csv_name,
                    status: "not published, trying daily files",
                });
                let days = req.days_of(file.month.0, file.month.1);
                let at = i;
                queue.splice(at..at, days);
            }
            None => {
                progress(DownloadEvent::File {
                    index: i,
                    name: &file.csv_name,
                    status: "not published",
                });
                report.missing.push(file.csv_name);
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(from: &str, to: &str, today: &str) -> DownloadRequest {
        DownloadRequest {
            symbol: "BTC/USDT".parse().unwrap(),
            kind: ArchiveKind::Klines {
                interval: "1m".into(),
            },
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
            today: today.parse().unwrap(),
            base_url: DEFAULT_BASE_URL.into(),
            dest: PathBuf::from("backtest-data"),
        }
    }

    #[test]
    fn whole_past_months_are_monthly_edges_are_daily() {
        let plan = req("2025-05-30", "2025-07-02", "2025-11-21").plan();
        let names: Vec<&str> = plan.iter().map(|f| f.csv_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "BTCUSDT-1m-2025-05-30.csv",
                "BTCUSDT-1m-2025-05-31.csv",
                "BTCUSDT-1m-2025-06.csv",
                "BTCUSDT-1m-2025-07-01.csv"
            ]
        );
        assert_eq!(
            plan[2].url_path,
            "/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-06.zip"
        );
        assert_eq!(
            plan[0].url_path,
            "/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-05-30.zip"
        );
    }

    #[test]
    fn current_month_is_daily_and_stops_before_today() {
        let plan = req("2025-11-01", "2025-12-01", "2025-11-04").plan();
        let names: Vec<&str> = plan.iter().map(|f| f.csv_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "BTCUSDT-1m-2025-11-01.csv",
                "BTCUSDT-1m-2025-11-02.csv",
                "BTCUSDT-1m-2025-11-03.csv"
            ]
        );
    }

    #[test]
    fn trades_layout() {
        let mut r = req("2025-06-01", "2025-07-01", "2025-11-21");
        r.kind = ArchiveKind::AggTrades;
        assert_eq!(
            r.plan()[0].url_path,
            "/data/spot/monthly/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2025-06.zip"
        );
        assert_eq!(
            r.dest_dir(),
            PathBuf::from("backtest-data/BTCUSDT/aggTrades")
        );
    }
}
