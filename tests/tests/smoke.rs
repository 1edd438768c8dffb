//! The browser smoke tests: the real client, served by a real peer, in headless Chromium.

use std::time::Duration;

use anyhow::Result;
use multiverse_core::wire::PROTOCOL_VERSION;
use multiverse_e2e::{browser_lock, wait_for_state, Browser, PixelStats, RunningPeer};
use thirtyfour::prelude::*;

const LOAD: Duration = Duration::from_secs(60);

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Runs `body` with a browser, quitting it whatever happens.
async fn with_browser<F, Fut>(body: F) -> Result<()>
where
    F: FnOnce(WebDriver) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let _one_at_a_time = browser_lock().await;
    let browser = Browser::launch().await?;
    let result = body(browser.driver.clone()).await;
    if result.is_err() {
        let _ = browser.screenshot("failure").await;
    }
    browser.quit().await?;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_link_connects_and_renders() -> Result<()> {
    let peer = RunningPeer::start(any_port(), |_| {}).await?;
    let url = peer.url("/r/demo");
    with_browser(|driver| async move {
        driver.goto(&url).await?;
        let text = wait_for_state(&driver, "connected", LOAD).await?;
        assert!(text.contains("e2e-peer"), "badge names the peer: {text:?}");
        let room = driver
            .find(By::Css("[data-testid='room-name']"))
            .await?
            .text()
            .await?;
        assert_eq!(room, "#demo");
        let png = driver.screenshot_as_png().await?;
        let dir = multiverse_e2e::workspace_root().join("target/e2e-screenshots");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("room-demo.png"), &png)?;
        let stats = PixelStats::of_png(&png)?;
        assert!(
            stats.looks_rendered(),
            "the screenshot looks blank: {stats:?}"
        );
        Ok(())
    })
    .await?;
    peer.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lobby_joins_a_room_with_the_chosen_name() -> Result<()> {
    let peer = RunningPeer::start(any_port(), |_| {}).await?;
    let url = peer.url("/");
    let base = peer.url("");
    with_browser(|driver| async move {
        driver.goto(&url).await?;
        let name = driver
            .query(By::Css("[data-testid='display-name']"))
            .wait(LOAD, Duration::from_millis(100))
            .first()
            .await?;
        name.clear().await?;
        name.send_keys("Ada Lovelace").await?;
        let room = driver.find(By::Css("[data-testid='room-input']")).await?;
        room.send_keys("no spaces allowed").await?;
        driver
            .find(By::Css("[data-testid='join-room']"))
            .await?
            .click()
            .await?;
        let error = driver
            .query(By::Css("[data-testid='room-error']"))
            .first()
            .await?
            .text()
            .await?;
        assert!(
            error.contains("a-z"),
            "a bad room name is explained: {error:?}"
        );
        room.clear().await?;
        room.send_keys("Orbit-7").await?;
        driver
            .find(By::Css("[data-testid='join-room']"))
            .await?
            .click()
            .await?;
        wait_for_state(&driver, "connected", LOAD).await?;
        assert_eq!(
            driver.current_url().await?.as_str(),
            format!("{base}/r/orbit-7")
        );
        let me = driver
            .find(By::Css("[data-testid='my-name']"))
            .await?
            .text()
            .await?;
        assert_eq!(me, "Ada Lovelace");
        Ok(())
    })
    .await?;
    peer.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_peer_restarts() -> Result<()> {
    let first = RunningPeer::start(any_port(), |_| {}).await?;
    let addr = first.addr;
    let url = first.url("/r/demo");
    let mut first = Some(first);
    with_browser(|driver| async move {
        driver.goto(&url).await?;
        wait_for_state(&driver, "connected", LOAD).await?;
        first.take().unwrap().stop().await?;
        wait_for_state(&driver, "reconnecting", Duration::from_secs(10)).await?;
        let second = RunningPeer::start(addr, |_| {}).await?;
        let connected = wait_for_state(&driver, "connected", Duration::from_secs(30)).await;
        second.stop().await?;
        connected.map(drop)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_version_shows_incompatible() -> Result<()> {
    let peer = RunningPeer::start(any_port(), |c| {
        c.session.protocol_version = PROTOCOL_VERSION + 1
    })
    .await?;
    let url = peer.url("/r/demo");
    with_browser(|driver| async move {
        driver.goto(&url).await?;
        let text = wait_for_state(&driver, "incompatible", LOAD).await?;
        assert!(text.contains("protocol version"), "{text:?}");
        // It must stay incompatible rather than hammer the peer with retries.
        tokio::time::sleep(Duration::from_secs(2)).await;
        wait_for_state(&driver, "incompatible", Duration::from_secs(1))
            .await
            .map(drop)
    })
    .await?;
    peer.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_app_routes_show_not_found_and_bad_rooms_are_explained() -> Result<()> {
    let peer = RunningPeer::start(any_port(), |_| {}).await?;
    let (a, b) = (peer.url("/nowhere/at/all"), peer.url("/r/bad%20room"));
    with_browser(|driver| async move {
        driver.goto(&a).await?;
        driver
            .query(By::Css("[data-testid='not-found']"))
            .wait(LOAD, Duration::from_millis(100))
            .first()
            .await?;
        driver.goto(&b).await?;
        driver
            .query(By::Css("[data-testid='bad-room']"))
            .wait(LOAD, Duration::from_millis(100))
            .first()
            .await?;
        Ok(())
    })
    .await?;
    peer.stop().await
}
