//! A real headless Chromium driven over W3C WebDriver (Debian `chromium` + `chromium-driver`,
//! which scripts/test.sh installs when missing). Only what the console tests need: open a page,
//! find, type, click, run a script, take a screenshot.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn binary(env: &str, default: &str) -> String {
    let path = std::env::var(env).unwrap_or_else(|_| default.to_string());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: the console tests drive a real Chromium (install Debian `chromium` and \
         `chromium-driver`, as scripts/test.sh does, or set {env})"
    );
    path
}

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// A failed or finished test must not leave Chromium behind: a console page left open keeps
/// rendering and reconnecting, and takes CPU from every test after it. The session is ended
/// (chromedriver closes the browser), then the driver's whole process group is killed.
impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            end_session(&self.base, &self.session);
        }
        if let Some(group) = rustix::process::Pid::from_raw(self.driver.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE /session/ID`, blocking (a `Drop` cannot wait on the runtime), bounded by 10 s.
fn end_session(base: &str, session: &str) {
    use std::io::{Read, Write};
    let Some(addr) = base.strip_prefix("http://") else {
        return;
    };
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
        return;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        conn,
        "DELETE /session/{session} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
}

impl Browser {
    /// A fresh Chromium (its own empty profile) under a fresh chromedriver.
    pub async fn start() -> Browser {
        let chromium = binary("CHROMIUM_BIN", "/usr/bin/chromium");
        let chromedriver = binary("CHROMEDRIVER_BIN", "/usr/bin/chromedriver");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            // Its own process group, so Drop can end it and the browser it started at once.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{chromedriver}: {e}"));
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == json!(true) {
                        break;
                    }
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1400,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        let v = browser.call("POST", "/session", caps).await;
        browser.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        browser
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
        let v: Value = resp.json().await.unwrap();
        if v["value"].get("error").is_some() {
            return json!({"error": v["value"]});
        }
        v["value"].clone()
    }

    /// A call on this session; a WebDriver error comes back as `{"error": …}`.
    async fn in_session(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    /// A call on this session that must succeed.
    async fn session(&self, method: &str, path: &str, body: Value) -> Value {
        let v = self.in_session(method, path, body).await;
        assert!(v.get("error").is_none(), "webdriver {path}: {v}");
        v
    }

    pub async fn goto(&self, url: &str) {
        self.session("POST", "/url", json!({"url": url})).await;
    }

    /// Run `script` (a function body; `arguments` are `args`) in the page and return its value.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.session(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// The element `css` selects, or `None`.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .in_session(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT].as_str().map(str::to_string)
    }

    /// Wait up to `within` for `css` to match a displayed element.
    pub async fn wait_for(&self, css: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(e) = self.find(css).await {
                let shown = self
                    .in_session("GET", &format!("/element/{e}/displayed"), json!({}))
                    .await;
                if shown == json!(true) {
                    return e;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{css} did not appear within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Type `text` into the element `css` selects (cleared first).
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_for(css, Duration::from_secs(5)).await;
        self.session("POST", &format!("/element/{e}/clear"), json!({}))
            .await;
        self.session(
            "POST",
            &format!("/element/{e}/value"),
            json!({"text": text}),
        )
        .await;
    }

    /// Click what `css` selects, as a pointer would; a page that redrew under it is found again.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let e = self.wait_for(css, Duration::from_secs(5)).await;
            let v = self
                .in_session("POST", &format!("/element/{e}/click"), json!({}))
                .await;
            if v.get("error").is_none() {
                return;
            }
            assert!(Instant::now() < deadline, "click {css}: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of what `css` selects ("" when nothing does).
    pub async fn text(&self, css: &str) -> String {
        self.eval(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    /// How many elements `css` selects.
    pub async fn count(&self, css: &str) -> usize {
        self.eval(
            "return document.querySelectorAll(arguments[0]).length;",
            json!([css]),
        )
        .await
        .as_u64()
        .expect("a count from the page") as usize
    }

    /// Poll `script` (returning a boolean) every 20 ms until true; how long it took, or `None`.
    pub async fn until(&self, script: &str, args: Value, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.eval(script, args.clone()).await == json!(true) {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self.session("GET", "/screenshot", json!({})).await;
        decode_base64(v.as_str().unwrap())
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
