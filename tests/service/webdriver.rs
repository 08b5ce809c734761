//! A small W3C WebDriver client: starts Debian's `chromedriver` with headless Chromium and
//! drives it over HTTP, for click-through tests of the checker pages in a real browser.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session, ended (and its driver killed) when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

/// An element on the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session with a fresh
    /// profile and no background networking (the machine has no internet).
    pub fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("address").port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; scripts/setup installs it)");
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let profile = tempfile::tempdir().expect("profile dir");
        let mut browser = Browser { driver, base: format!("http://127.0.0.1:{port}"), agent, _profile: profile };
        let deadline = Instant::now() + Duration::from_secs(30);
        while browser.call("GET", "/status", None).get("ready") != Some(&Value::Bool(true)) {
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1400",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args },
        }}});
        let session = browser.call("POST", "/session", Some(capabilities));
        let id = session["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {session}")).to_string();
        browser.base = format!("{}/session/{id}", browser.base);
        browser
    }

    /// Sends one WebDriver command and returns its `value`, failing the test on an error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body).unwrap_or_else(|error| panic!("{method} {path}: {error}"))
    }

    /// Sends one WebDriver command: its `value`, or the error WebDriver answered with.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let url = format!("{}{path}", self.base);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => {
                let body = serde_json::to_vec(&body.unwrap_or_else(|| json!({}))).expect("json");
                self.agent.post(&url).header("Content-Type", "application/json").send(&body[..])
            }
        };
        let mut response = match response {
            Ok(response) => response,
            Err(e) if path == "/status" => {
                eprintln!("chromedriver not answering yet: {e}");
                return Ok(Value::Null);
            }
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let text = response.body_mut().read_to_string().expect("webdriver body");
        let answer: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        match answer["value"].get("error") {
            Some(_) => Err(answer["value"].clone()),
            None => Ok(answer["value"].clone()),
        }
    }

    /// Waits until the first element matching `css` reads `expected`: after a click that
    /// submits a form, the old page may still be there, or be going, when the click returns.
    pub fn wait_for_text(&self, css: &str, expected: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let found = self.try_call("POST", "/element", Some(json!({ "using": "css selector", "value": css })));
            let text = found.ok().and_then(|f| {
                let id = f[ELEMENT].as_str()?.to_string();
                self.try_call("GET", &format!("/element/{id}/text"), None).ok()
            });
            let text = text.as_ref().and_then(Value::as_str).unwrap_or_default().to_string();
            if text == expected {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{css} reads {text:?}, not {expected:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Loads `url` and waits for it.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// The address of the current page.
    pub fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap_or_default().to_string()
    }

    /// The first element matching a CSS selector.
    pub fn find(&self, css: &str) -> Element<'_> {
        let found = self.call("POST", "/element", Some(json!({ "using": "css selector", "value": css })));
        Element { browser: self, id: found[ELEMENT].as_str().unwrap_or_else(|| panic!("{css}: {found}")).to_string() }
    }

    /// How many elements match a CSS selector.
    pub fn count(&self, css: &str) -> usize {
        let found = self.call("POST", "/elements", Some(json!({ "using": "css selector", "value": css })));
        found.as_array().map_or(0, Vec::len)
    }

    /// The page's HTML as the browser has it.
    pub fn source(&self) -> String {
        self.call("GET", "/source", None).as_str().unwrap_or_default().to_string()
    }

    /// A PNG screenshot of the page.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let encoded = self.call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD.decode(encoded.as_str().expect("base64")).expect("png")
    }
}

impl Element<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    /// Types `text` into the element.
    pub fn type_text(&self, text: &str) {
        self.browser.call("POST", &self.path("/value"), Some(json!({ "text": text })));
    }

    /// The element's text as rendered.
    pub fn text(&self) -> String {
        self.browser.call("GET", &self.path("/text"), None).as_str().unwrap_or_default().to_string()
    }

    /// Clicks the element (and waits for any page load it starts).
    pub fn click(&self) {
        self.browser.call("POST", &self.path("/click"), None);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.base).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
