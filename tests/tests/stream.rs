//! The universe canvas in a real browser against a real peer.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use multiverse_e2e::{browser_lock, wait_for_state, Browser, PixelStats, RunningPeer};
use serde_json::Value;
use thirtyfour::prelude::*;

const LOAD: Duration = Duration::from_secs(60);

async fn api(peer: &RunningPeer, path: &str) -> Result<Value> {
    let text = reqwest::get(peer.url(path)).await?.text().await?;
    serde_json::from_str(&text).with_context(|| format!("{path} returned {text}"))
}

async fn sandbox_id(peer: &RunningPeer) -> Result<String> {
    let list = api(peer, "/api/universes").await?;
    let sandbox = list
        .as_array()
        .context("a list")?
        .iter()
        .find(|u| u["name"] == "sandbox")
        .context("sandbox listed")?;
    Ok(sandbox["id"].as_str().context("an id")?.to_owned())
}

/// `(seq, count)` the page shows for its main universe, read in one go.
async fn dom_view(driver: &WebDriver) -> Result<(Option<u64>, usize)> {
    let v = driver
        .execute("const e = document.querySelector(\"[data-testid='entity-count']\"); return [e.dataset.seq, e.dataset.count];", vec![])
        .await?;
    let pair: (String, String) = v.convert()?;
    Ok((pair.0.parse().ok(), pair.1.parse()?))
}

async fn wait_for_entities(driver: &WebDriver, at_least: usize) -> Result<usize> {
    let deadline = tokio::time::Instant::now() + LOAD;
    loop {
        let (_, count) = dom_view(driver).await?;
        if count >= at_least {
            return Ok(count);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the page shows {count} entities, wanted at least {at_least}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn canvas_png(canvas: &WebElement) -> Result<Vec<u8>> {
    Ok(canvas.screenshot_as_png().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canvas_shows_the_universe_moving_and_the_mirror_matches_the_peer() -> Result<()> {
    let _one_at_a_time = browser_lock().await;
    let peer = RunningPeer::start("127.0.0.1:0".parse()?, |_| {}).await?;
    let sandbox = sandbox_id(&peer).await?;
    let browser = Browser::launch().await?;
    let result = async {
        let driver = &browser.driver;
        driver.goto(peer.url("/r/demo")).await?;
        wait_for_state(driver, "connected", LOAD).await?;
        wait_for_entities(driver, 1).await?;
        let canvas = driver
            .find(By::Css("[data-testid='universe-canvas']"))
            .await?;

        // Motion: two screenshots of the canvas a moment apart differ, and are not blank.
        let first = canvas_png(&canvas).await?;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let second = canvas_png(&canvas).await?;
        assert_ne!(first, second, "the canvas did not change in 400 ms");
        let stats = PixelStats::of_png(&second)?;
        assert!(
            stats.distinct_colours >= 20 && stats.non_background >= 0.05,
            "the canvas looks empty: {stats:?}"
        );
        browser.screenshot("stream-sandbox").await?;

        // The page's mirror holds exactly what the peer says that view holds, at the same frame.
        let mut compared = 0;
        for _ in 0..50 {
            let (seq, count) = dom_view(driver).await?;
            let views = api(&peer, &format!("/api/universes/{sandbox}/views")).await?;
            let recent = views[0]["recent"].as_array().context("one subscriber")?;
            let at_seq = recent.iter().find(|pair| pair[0].as_u64() == seq);
            if let Some(pair) = at_seq {
                assert_eq!(
                    pair[1].as_u64(),
                    Some(count as u64),
                    "the mirror and the peer disagree at seq {seq:?}"
                );
                compared += 1;
                if compared >= 3 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        assert!(
            compared >= 3,
            "could not line up the page's frame with the peer's history"
        );
        let total = api(&peer, &format!("/api/universes/{sandbox}")).await?["info"]["entities"]
            .as_u64()
            .context("count")?;
        assert_eq!(
            dom_view(driver).await?.1 as u64,
            total,
            "the whole sandbox is in view at start"
        );

        // Interaction: shift-click spawns an entity owned by this user, end to end.
        driver
            .action_chain()
            .key_down(Key::Shift)
            .move_to_element_center(&canvas)
            .click()
            .key_up(Key::Shift)
            .perform()
            .await?;
        let grown = wait_for_entities(driver, total as usize + 1).await?;
        assert_eq!(grown as u64, total + 1);
        let now =
            api(&peer, &format!("/api/universes/{sandbox}")).await?["info"]["entities"].as_u64();
        assert_eq!(
            now,
            Some(total + 1),
            "the peer's universe gained the entity"
        );

        // Split layout: a second universe appears beside the first.
        driver
            .find(By::Css("[data-testid='layout-split']"))
            .await?
            .click()
            .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let list = api(&peer, "/api/universes").await?;
        let aquarium = list
            .as_array()
            .context("list")?
            .iter()
            .find(|u| u["name"] == "aquarium")
            .context("aquarium")?;
        let stats = api(
            &peer,
            &format!("/api/universes/{}", aquarium["id"].as_str().context("id")?),
        )
        .await?;
        assert_eq!(
            stats["subscribers"].as_u64(),
            Some(1),
            "split view subscribes to a second universe"
        );
        browser.screenshot("stream-split").await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("stream-failure").await;
    }
    browser.quit().await?;
    peer.stop().await?;
    result
}
