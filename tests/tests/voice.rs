//! Voice between two real browsers with fake microphones: B receives A's audio while their
//! avatars are close, stops receiving it once A walks beyond the hearing radius, and hears
//! A again on A's return; B's PannerNode for A follows the avatars all along, and A leaving
//! voice removes A's voice from B.
//!
//! What is checked goes through the client's test hooks (see `web/src/voice/mod.rs`):
//! `window.__multiverse_voice_pc` (its `getStats()` for received audio packets), the status
//! `#voice-status`, the hidden `#voice-debug` list (one row per remote voice with its panner
//! position) and `#my-avatar` (our avatar's world position).

use std::cell::{Cell, RefCell};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use multiverse_core::voice::{HEARING_HYSTERESIS, HEARING_RADIUS, WORLD_UNITS_PER_AUDIO_UNIT};
use multiverse_e2e::{
    browser_lock, eventually, save_screenshot, wait_for_state, Browser, RunningPeer,
};
use thirtyfour::prelude::*;

const LOAD: Duration = Duration::from_secs(60);
const VOICE_UP: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);
/// Audio packets B must receive from A within [`FLOWING_WITHIN`] while A is heard (the
/// fake microphone sends 50 a second).
const FLOWING: u64 = 25;
const FLOWING_WITHIN: Duration = Duration::from_secs(5);
/// How far (world units) avatars may have drifted between reading both positions and the
/// panner.
const POSITION_TOLERANCE: f64 = 15.0;
/// How far left of B (world units) A walks to be surely out of earshot (beyond the radius
/// plus the hysteresis, with room to spare).
const FAR: f64 = 300.0;
const WALK_LIMIT: Duration = Duration::from_secs(15);

/// A world position.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pos {
    x: f64,
    y: f64,
}

impl Pos {
    fn distance(self, other: Pos) -> f64 {
        (self.x - other.x).hypot(self.y - other.y)
    }
}

/// One row of the hidden `#voice-debug` list.
#[derive(Debug, Clone)]
struct VoiceRow {
    member: String,
    kind: String,
    panner: [f64; 3],
}

/// The page's `#my-avatar` position, once it has one.
async fn avatar(driver: &WebDriver) -> Result<Option<Pos>> {
    let v = driver
        .execute(
            "const e = document.getElementById('my-avatar');
             if (!e || e.dataset.avatarX === undefined || e.dataset.avatarY === undefined) return null;
             return [parseFloat(e.dataset.avatarX), parseFloat(e.dataset.avatarY)];",
            vec![],
        )
        .await?;
    let xy: Option<Vec<f64>> = v.convert()?;
    Ok(xy.and_then(|xy| match xy[..] {
        [x, y] if x.is_finite() && y.is_finite() => Some(Pos { x, y }),
        _ => None,
    }))
}

/// Waits until the page's avatar stands still (two reads 300 ms apart agree) and returns
/// where.
async fn settled_avatar(driver: &WebDriver, what: &str) -> Result<Pos> {
    let last: Cell<Option<Pos>> = Cell::new(None);
    eventually(
        &format!("{what}'s avatar to stand still"),
        Duration::from_secs(10),
        || async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = avatar(driver).await?;
            Ok(match (last.replace(now), now) {
                (Some(p), Some(n)) if p.distance(n) < 0.5 => Some(n),
                _ => None,
            })
        },
    )
    .await
    .map_err(|e| e.context(format!("last position {:?}", last.get())))
}

/// The rows of the page's hidden `#voice-debug` list.
async fn voice_rows(driver: &WebDriver) -> Result<Vec<VoiceRow>> {
    let v = driver
        .execute(
            "return Array.from(document.querySelectorAll('#voice-debug li')).map(li => [
                 li.dataset.member || '', li.dataset.kind || '',
                 parseFloat(li.dataset.pannerX), parseFloat(li.dataset.pannerY),
                 parseFloat(li.dataset.pannerZ)]);",
            vec![],
        )
        .await?;
    let rows: Vec<serde_json::Value> = v.convert()?;
    rows.iter()
        .map(|r| {
            let num = |i: usize| r[i].as_f64().unwrap_or(f64::NAN);
            Ok(VoiceRow {
                member: r[0].as_str().context("a member")?.to_owned(),
                kind: r[1].as_str().context("a kind")?.to_owned(),
                panner: [num(2), num(3), num(4)],
            })
        })
        .collect()
}

/// The text of the page's `#voice-status`.
async fn voice_status(driver: &WebDriver) -> Result<String> {
    Ok(driver.find(By::Id("voice-status")).await?.text().await?)
}

/// Audio packets the page's voice connection has received so far (all inbound audio
/// streams summed); fails when voice is not on.
async fn audio_packets(driver: &WebDriver) -> Result<u64> {
    let v = driver
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const pc = window.__multiverse_voice_pc;
             if (!pc) { done('no RTCPeerConnection'); return; }
             pc.getStats().then(stats => {
                 let n = 0;
                 stats.forEach(r => {
                     if (r.type === 'inbound-rtp' && r.kind === 'audio') n += r.packetsReceived || 0;
                 });
                 done(n);
             }, e => done('getStats failed: ' + e));",
            vec![],
        )
        .await?;
    match v.json() {
        serde_json::Value::Number(n) => n.as_u64().context("a packet count"),
        other => bail!("cannot read audio packets: {other}"),
    }
}

/// Waits until the page has received at least `at_least` more audio packets than it had
/// when called; returns the count reached.
async fn packets_grow(driver: &WebDriver, what: &str, at_least: u64) -> Result<u64> {
    let from = audio_packets(driver).await?;
    let last = Cell::new(from);
    let grown = eventually(what, FLOWING_WITHIN, || async {
        let now = audio_packets(driver).await?;
        last.set(now);
        Ok((now >= from + at_least).then_some(now))
    })
    .await;
    grown.map_err(|e| e.context(format!("audio packets went from {from} to {}", last.get())))
}

/// Clicks *Join voice* once it is enabled and waits for `Voice: connected`.
async fn join_voice(driver: &WebDriver) -> Result<()> {
    let join = driver
        .query(By::Id("voice-join"))
        .and_enabled()
        .wait(LOAD, POLL)
        .first()
        .await
        .context("an enabled Join voice button")?;
    join.click().await?;
    Ok(())
}

async fn wait_voice_connected(driver: &WebDriver, who: &str) -> Result<()> {
    let last = RefCell::new(String::new());
    let done = eventually(&format!("{who}'s voice to connect"), VOICE_UP, || async {
        let now = voice_status(driver).await?;
        let connected = now == "Voice: connected";
        *last.borrow_mut() = now;
        Ok(connected.then_some(()))
    })
    .await;
    done.map_err(|e| e.context(format!("{who}'s voice status: {:?}", last.borrow())))
}

/// Waits until B's only remote voice is placed at (A − B) / 2, A and B read from their own
/// pages; returns that row.
async fn panner_follows(a: &WebDriver, b: &WebDriver) -> Result<VoiceRow> {
    let tolerance = POSITION_TOLERANCE / f64::from(WORLD_UNITS_PER_AUDIO_UNIT);
    let seen = RefCell::new(String::from("(nothing read yet)"));
    let found = eventually(
        "B's panner for A to follow the avatars",
        Duration::from_secs(5),
        || async {
            let (pa, pb) = (avatar(a).await?, avatar(b).await?);
            let rows = voice_rows(b).await?;
            *seen.borrow_mut() = format!("A at {pa:?}, B at {pb:?}, B's voices {rows:?}");
            let (Some(pa), Some(pb), [row]) = (pa, pb, &rows[..]) else {
                return Ok(None);
            };
            let scale = f64::from(WORLD_UNITS_PER_AUDIO_UNIT);
            let want = [(pa.x - pb.x) / scale, 0.0, (pa.y - pb.y) / scale];
            let close = row
                .panner
                .iter()
                .zip(want)
                .all(|(got, want)| (got - want).abs() <= tolerance);
            Ok((row.kind == "audio" && close).then(|| row.clone()))
        },
    )
    .await;
    found.map_err(|e| e.context(seen.into_inner()))
}

/// Holds `key` down on the page until its avatar satisfies `arrived` (bounded), then lets
/// go and waits for the avatar to stop; returns where it stopped.
async fn walk(
    driver: &WebDriver,
    who: &str,
    key: Key,
    arrived: impl Fn(Pos) -> bool,
) -> Result<Pos> {
    driver
        .action_chain()
        .key_down(key.clone())
        .perform()
        .await?;
    let last = Cell::new(None);
    let walked = eventually(
        &format!("{who}'s avatar to walk there"),
        WALK_LIMIT,
        || async {
            let now = avatar(driver).await?;
            last.set(now);
            Ok(now.filter(|p| arrived(*p)))
        },
    )
    .await;
    let released = driver.action_chain().key_up(key).perform().await;
    walked.map_err(|e| e.context(format!("{who}'s avatar got to {:?}", last.get())))?;
    released?;
    settled_avatar(driver, who).await
}

async fn open_room(driver: &WebDriver, url: &str, who: &str) -> Result<Pos> {
    driver.goto(url).await?;
    wait_for_state(driver, "connected", LOAD).await?;
    eventually(&format!("{who}'s avatar to appear"), LOAD, || async {
        avatar(driver).await
    })
    .await
}

async fn scenario(a: &WebDriver, b: &WebDriver, url: &str) -> Result<()> {
    // Both in the room, each with an avatar near the centre.
    open_room(a, url, "A").await?;
    open_room(b, url, "B").await?;

    // Both join voice: the fake microphone and fake-UI grant make this need no prompt.
    join_voice(a).await?;
    join_voice(b).await?;
    wait_voice_connected(a, "A").await?;
    wait_voice_connected(b, "B").await?;

    // Close: B hears A, and places A's voice at (A − B) / 2.
    let (pa, pb) = (settled_avatar(a, "A").await?, settled_avatar(b, "B").await?);
    ensure!(
        pa.distance(pb) < f64::from(HEARING_RADIUS),
        "both spawn within earshot: A at {pa:?}, B at {pb:?}"
    );
    let heard = packets_grow(b, "B receiving A's audio while close", FLOWING).await?;
    let row = panner_follows(a, b).await?;
    println!("close: A at {pa:?}, B at {pb:?}, B's panner for A {row:?}, {heard} packets");
    save_screenshot(b, "voice-b-close").await?;

    // A walks away to the left, far beyond the hearing radius.
    let far = walk(a, "A", Key::Left, |p| p.x < pb.x - FAR).await?;
    let out = f64::from(HEARING_RADIUS + HEARING_HYSTERESIS);
    ensure!(
        far.distance(pb) > out,
        "A stopped within earshot of B: A at {far:?}, B at {pb:?}"
    );
    // Packets already on the way may still arrive; after that, none.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = audio_packets(b).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = audio_packets(b).await?;
    ensure!(
        after.saturating_sub(before) <= 2,
        "B still receives A's audio with A {:.0} units away: {before} → {after} packets in 2 s",
        far.distance(pb)
    );
    let row = panner_follows(a, b).await?;
    ensure!(
        row.panner[0] < -(FAR / f64::from(WORLD_UNITS_PER_AUDIO_UNIT)) + 10.0,
        "B's panner for A should be far to the left: {row:?}"
    );
    ensure!(
        voice_status(b).await? == "Voice: connected",
        "B's voice stays connected while A is out of earshot"
    );
    println!("far: A at {far:?}, B's panner for A {row:?}, {before} → {after} packets in 2 s");

    // A walks back next to B: the audio flows again (the stop was the hearing set).
    let back = walk(a, "A", Key::Right, |p| (p.x - pb.x).abs() < 40.0).await?;
    ensure!(
        back.distance(pb) < f64::from(HEARING_RADIUS),
        "A came back within earshot: A at {back:?}, B at {pb:?}"
    );
    let heard = packets_grow(b, "B receiving A's audio again after A's return", FLOWING).await?;
    let row = panner_follows(a, b).await?;
    println!("back: A at {back:?}, B's panner for A {row:?}, {heard} packets");
    let member = row.member;

    // A leaves voice: A's voice goes from B's list.
    a.find(By::Id("voice-leave")).await?.click().await?;
    eventually(
        "A's voice to leave B's list",
        Duration::from_secs(5),
        || async {
            let rows = voice_rows(b).await?;
            Ok((!rows.iter().any(|r| r.member == member)).then_some(()))
        },
    )
    .await?;
    ensure!(
        voice_status(a).await? == "Voice off",
        "A's status after leaving: {:?}",
        voice_status(a).await?
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_flows_between_close_avatars_and_stops_beyond_earshot() -> Result<()> {
    let _one_at_a_time = browser_lock().await;
    let peer = RunningPeer::start("127.0.0.1:0".parse()?, |_| {}).await?;
    let url = peer.url("/r/voice-e2e");
    let a = Browser::launch().await?;
    let b = match Browser::launch().await {
        Ok(b) => b,
        Err(e) => {
            let _ = a.quit().await;
            let _ = peer.stop().await;
            return Err(e);
        }
    };
    let result = scenario(&a.driver, &b.driver, &url).await;
    if result.is_err() {
        for (name, browser) in [("a", &a), ("b", &b)] {
            let status = voice_status(&browser.driver).await;
            let packets = audio_packets(&browser.driver).await;
            let rows = voice_rows(&browser.driver).await;
            eprintln!("{name}: status {status:?}, audio packets {packets:?}, voices {rows:?}");
            let _ = browser.screenshot(&format!("voice-failure-{name}")).await;
        }
    }
    let _ = a.quit().await;
    let _ = b.quit().await;
    peer.stop().await?;
    result
}
