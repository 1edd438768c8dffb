//! # multiverse-e2e
//!
//! Helpers for tests that run the real thing: a peer on `127.0.0.1:0` serving the
//! trunk-built client from `dist/`, and headless Chromium driven through ChromeDriver
//! (WebDriver, via thirtyfour). `scripts/test` builds `dist/` before these tests run.
//!
//! | helper | does |
//! |---|---|
//! | [`RunningPeer`] | starts a peer in-process (optionally named and linked to others), stops it on request |
//! | [`Browser`] | a chromedriver process + one headless Chromium session |
//! | [`wait_for_state`] | waits for the connection badge to reach a state |
//! | [`PixelStats`] | checks a screenshot is not blank |
//! | [`eventually`] | polls a check until it yields a value |
//! | [`save_screenshot`] | a PNG of the page into `target/e2e-screenshots/` |
//! | [`entity_count`] | the entities the room page's HUD reports |
//! | [`local_storage`] | one localStorage item of the page |
//! | [`get_json`] | a peer's JSON answer to a GET |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use multiverse_peer::Config;
use thirtyfour::prelude::*;
use tokio::sync::{oneshot, Mutex, MutexGuard};

/// Chromium flags for tests: headless, no network chatter, WebRTC allowed on loopback,
/// fake media devices, media that plays without a gesture (see ../shared/TOOLCHAIN.md).
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
];

/// The repository root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The trunk-built client. Fails with instructions if it has not been built.
pub fn dist_dir() -> Result<PathBuf> {
    let dist = workspace_root().join("dist");
    let has_wasm = std::fs::read_dir(&dist)
        .map(|d| {
            d.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "wasm"))
        })
        .unwrap_or(false);
    if !dist.join("index.html").exists() || !has_wasm {
        bail!(
            "{} has no built client; run scripts/test (it runs scripts/build-client first)",
            dist.display()
        );
    }
    Ok(dist)
}

/// Browser tests run one at a time: two Chromiums on two cores only make both flaky.
pub async fn browser_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::const_new(());
    LOCK.lock().await
}

/// A peer serving the real client, running in this process.
pub struct RunningPeer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _data: tempfile::TempDir,
}

impl RunningPeer {
    /// Starts a peer on `bind` (use port 0 for any) after `tweak` adjusts its config.
    pub async fn start(bind: SocketAddr, tweak: impl FnOnce(&mut Config)) -> Result<RunningPeer> {
        let data = tempfile::tempdir()?;
        let mut config = Config::new(data.path())
            .with_bind(bind)
            .with_name("e2e-peer")
            .with_dist_dir(dist_dir()?);
        tweak(&mut config);
        let peer = multiverse_peer::bind(config).await?;
        let addr = peer.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = peer.serve(shutdown).await {
                eprintln!("peer stopped with an error: {e}");
            }
        });
        Ok(RunningPeer {
            addr,
            stop: Some(stop),
            task,
            _data: data,
        })
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the peer and waits for it to finish.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .context("peer did not stop within 15 s")??;
        Ok(())
    }
}

/// ChromeDriver plus one headless Chromium session. Call [`Browser::quit`] at the end;
/// dropping it kills chromedriver (and with it Chromium) anyway.
pub struct Browser {
    /// The WebDriver session.
    pub driver: WebDriver,
    _chromedriver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a Chromium session.
    pub async fn launch() -> Result<Browser> {
        let port = free_port()?;
        let chromedriver = tokio::process::Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start /usr/bin/chromedriver (scripts/install installs it)")?;
        wait_for_port(port, Duration::from_secs(20)).await?;
        let profile = tempfile::tempdir()?;
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary("/usr/bin/chromium")?;
        for arg in CHROMIUM_ARGS {
            caps.add_arg(arg)?;
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))?;
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
            .await
            .context("cannot open a Chromium session")?;
        Ok(Browser {
            driver,
            _chromedriver: chromedriver,
            _profile: profile,
        })
    }

    /// Saves a PNG screenshot under `target/e2e-screenshots/<name>.png` and returns its bytes.
    pub async fn screenshot(&self, name: &str) -> Result<Vec<u8>> {
        let png = self.driver.screenshot_as_png().await?;
        let dir = workspace_root().join("target/e2e-screenshots");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{name}.png")), &png)?;
        Ok(png)
    }

    /// Ends the session and Chromium.
    pub async fn quit(self) -> Result<()> {
        self.driver.quit().await?;
        Ok(())
    }
}

/// Waits until the connection badge reports `state`; returns the badge's text.
pub async fn wait_for_state(driver: &WebDriver, state: &str, timeout: Duration) -> Result<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("(no badge yet)");
    loop {
        if let Ok(badge) = driver
            .find(By::Css("[data-testid='connection-state']"))
            .await
        {
            let current = badge.attr("data-state").await?.unwrap_or_default();
            if current == state {
                return Ok(badge.text().await?);
            }
            last = current;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("connection state is {last:?}, not {state:?}, after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a screenshot contains, to tell a rendered page from a blank one.
#[derive(Debug)]
pub struct PixelStats {
    /// Number of distinct colours (quantised to 5 bits per channel).
    pub distinct_colours: usize,
    /// Fraction of pixels that differ from the most common colour.
    pub non_background: f64,
    /// Fraction of bright pixels (luma ≥ 160): text and highlights on our dark theme. The
    /// page background alone (gradients included) has none.
    pub bright: f64,
}

impl PixelStats {
    /// Whether the image shows rendered content rather than an empty themed page.
    pub fn looks_rendered(&self) -> bool {
        self.distinct_colours >= 20 && self.non_background >= 0.02 && self.bright >= 0.002
    }
}

impl PixelStats {
    /// Decodes a PNG and counts its colours.
    pub fn of_png(png_bytes: &[u8]) -> Result<PixelStats> {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info()?;
        let mut buf = vec![0; reader.output_buffer_size().context("image too large")?];
        let info = reader.next_frame(&mut buf)?;
        let channels = info.color_type.samples();
        let mut counts = std::collections::HashMap::<u32, usize>::new();
        let mut bright = 0usize;
        for px in buf[..info.buffer_size()].chunks_exact(channels) {
            let rgb = if channels >= 3 {
                [px[0], px[1], px[2]]
            } else {
                [px[0]; 3]
            };
            let luma =
                (299 * u32::from(rgb[0]) + 587 * u32::from(rgb[1]) + 114 * u32::from(rgb[2]))
                    / 1000;
            bright += usize::from(luma >= 160);
            let key = rgb.iter().fold(0u32, |k, c| (k << 5) | u32::from(c >> 3));
            *counts.entry(key).or_default() += 1;
        }
        let total: usize = counts.values().sum();
        let dominant = counts.values().copied().max().unwrap_or(0);
        Ok(PixelStats {
            distinct_colours: counts.len(),
            non_background: 1.0 - dominant as f64 / total.max(1) as f64,
            bright: bright as f64 / total.max(1) as f64,
        })
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{what} did not happen within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Saves a PNG screenshot of the page under `target/e2e-screenshots/<name>.png` and returns
/// its bytes (like [`Browser::screenshot`], for code that only holds the driver).
pub async fn save_screenshot(driver: &WebDriver, name: &str) -> Result<Vec<u8>> {
    let png = driver.screenshot_as_png().await?;
    let dir = workspace_root().join("target/e2e-screenshots");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{name}.png")), &png)?;
    Ok(png)
}

/// The number of entities the room page's HUD reports for its main universe (0 while it
/// has none or no HUD is shown).
pub async fn entity_count(driver: &WebDriver) -> Result<usize> {
    let v = driver
        .execute(
            "const e = document.querySelector(\"[data-testid='entity-count']\"); return e ? e.dataset.count : '0';",
            vec![],
        )
        .await?;
    let count: String = v.convert()?;
    Ok(count.parse().unwrap_or(0))
}

/// One localStorage item of the page, if set.
pub async fn local_storage(driver: &WebDriver, key: &str) -> Result<Option<String>> {
    let v = driver
        .execute(
            "return window.localStorage.getItem(arguments[0]);",
            vec![serde_json::Value::from(key)],
        )
        .await?;
    Ok(v.convert()?)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_for_port(port: u16, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if tokio::time::Instant::now() >= deadline {
            bail!("chromedriver did not listen on port {port} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

impl RunningPeer {
    /// Starts a peer called `name` on any loopback port that links at start-up to each peer
    /// listening at `peers` — what `--name <name> --peer ws://<addr>` does for the binary.
    pub async fn start_linked(name: &str, peers: &[SocketAddr]) -> Result<RunningPeer> {
        let addresses = peers
            .iter()
            .map(|a| {
                multiverse_peer::federation::peer_address(&format!("ws://{a}"))
                    .map_err(anyhow::Error::msg)
            })
            .collect::<Result<Vec<_>>>()?;
        let name = name.to_owned();
        RunningPeer::start("127.0.0.1:0".parse()?, move |config| {
            config.name = name;
            config.peers = addresses;
        })
        .await
    }
}

/// `GET http://<peer><path>`, parsed as JSON (fails with the body if it is not JSON).
pub async fn get_json(peer: &RunningPeer, path: &str) -> Result<serde_json::Value> {
    let text = reqwest::get(peer.url(path)).await?.text().await?;
    serde_json::from_str(&text).with_context(|| format!("{path} answered {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_of(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        let data: Vec<u8> = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .flat_map(|(x, y)| pixel(x, y))
            .collect();
        writer.write_image_data(&data).unwrap();
        drop(writer);
        out
    }

    #[test]
    fn a_blank_or_gradient_only_page_does_not_look_rendered() {
        let blank = PixelStats::of_png(&png_of(64, 64, |_, _| [11, 16, 32])).unwrap();
        assert!(!blank.looks_rendered(), "{blank:?}");
        let gradient =
            PixelStats::of_png(&png_of(64, 64, |x, y| [(x + y) as u8, 16, 40 + x as u8])).unwrap();
        assert!(!gradient.looks_rendered(), "{gradient:?}");
        let text = PixelStats::of_png(&png_of(64, 64, |x, y| {
            if x % 9 == 0 && y % 3 == 0 {
                [230, 236, 255]
            } else {
                [(x + y) as u8, 16, 40 + x as u8]
            }
        }))
        .unwrap();
        assert!(text.looks_rendered(), "{text:?}");
    }
}
