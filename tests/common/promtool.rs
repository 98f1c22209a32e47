//! The shipped alert rules (`deploy/prometheus-alerts.yml`) evaluated by `promtool test rules`
//! against a daemon's real `/metrics`: every scraped sample becomes a series holding its value
//! for ten minutes, beside `up{job="bsc-bot"}` (1 when the scrape answered, 0 when it failed, as
//! Prometheus records it), and each alert must fire for exactly the expected label sets.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

/// `promtool` from `PATH`; `None` (and a note) outside CI when it is missing, a panic in CI.
pub fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is missing (Debian package prometheus; scripts/test.sh installs it)"
        );
        eprintln!("promtool missing: alert rule checks skipped (scripts/test.sh installs it)");
    }
    found
}

pub fn rules_path() -> PathBuf {
    crate::common::repo_path("deploy/prometheus-alerts.yml")
}

/// The rules without their annotations (which format `$value` as floats): what fires, and
/// for which labels, is what is tested.
fn rules_without_annotations() -> String {
    let text = std::fs::read_to_string(rules_path()).unwrap();
    let mut out = String::new();
    let mut skipping = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(level) = skipping {
            if indent > level || line.trim().is_empty() {
                continue;
            }
            skipping = None;
        }
        if line.trim_start().starts_with("annotations:") {
            skipping = Some(indent);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Samples of a Prometheus text exposition as `(series, value)`.
fn samples(metrics: &str) -> Vec<(String, String)> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.to_string()))
        })
        .collect()
}

/// Per alert, the label sets it must fire with.
pub type Expected<'a> = [(&'a str, Vec<Vec<(&'a str, &'a str)>>)];

/// Evaluate every rule at 10 minutes over `metrics` held constant (and `up` as given);
/// `expected` names, per alert, the label sets (besides `alertname` and the rule's own labels,
/// which are added) it must fire with — an alert not listed must not fire.
pub fn assert_alerts(promtool: &std::path::Path, metrics: &str, up: bool, expected: &Expected<'_>) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, rules_without_annotations()).unwrap();
    let severity = |alert: &str| match alert {
        "HighErrorRate" | "LowGasBalance" => "warning",
        _ => "critical",
    };
    let mut series = String::new();
    for (name, value) in samples(metrics) {
        series.push_str(&format!(
            "      - series: '{}'\n        values: '{value}+0x10'\n",
            name.replace('\'', "''"),
        ));
    }
    series.push_str(&format!(
        "      - series: 'up{{job=\"bsc-bot\",instance=\"daemon\"}}'\n        values: '{}+0x10'\n",
        u8::from(up)
    ));
    let mut tests = String::new();
    for alert in [
        "StrategyLossExceeded",
        "FundsAbnormalMovement",
        "HighErrorRate",
        "LowGasBalance",
        "BotSystemDown",
    ] {
        let fired = expected
            .iter()
            .find(|(a, _)| *a == alert)
            .map(|(_, sets)| sets.clone())
            .unwrap_or_default();
        tests.push_str(&format!(
            "      - eval_time: 10m\n        alertname: {alert}\n        exp_alerts:{}\n",
            if fired.is_empty() { " []" } else { "" }
        ));
        for labels in fired {
            tests.push_str("          - exp_labels:\n");
            tests.push_str(&format!("              severity: {}\n", severity(alert)));
            for (k, v) in labels {
                tests.push_str(&format!("              {k}: '{v}'\n"));
            }
        }
    }
    let file = format!(
        "rule_files:\n  - {}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{series}    alert_rule_test:\n{tests}",
        rules.display()
    );
    let test = dir.path().join("test.yml");
    std::fs::write(&test, &file).unwrap();
    let out = Command::new(promtool)
        .args(["test", "rules"])
        .arg(&test)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules failed:\n{}\n{}\n--- test file ---\n{file}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
