//! Two real browsers in one room: chat, ghost cursors, leaving.

use std::time::Duration;

use anyhow::{bail, Result};
use multiverse_e2e::{browser_lock, wait_for_state, Browser, RunningPeer};
use thirtyfour::prelude::*;

const LOAD: Duration = Duration::from_secs(60);

/// Polls `check` every 100 ms until it returns `Some`, or fails after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T>
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

async fn names(driver: &WebDriver) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for m in driver.find_all(By::Css("[data-testid='member']")).await? {
        out.push(m.attr("data-name").await?.unwrap_or_default());
    }
    Ok(out)
}

async fn set_name(driver: &WebDriver, base: &str, name: &str) -> Result<()> {
    driver.goto(format!("{base}/")).await?;
    let input = driver
        .query(By::Css("[data-testid='display-name']"))
        .wait(LOAD, Duration::from_millis(100))
        .first()
        .await?;
    input.clear().await?;
    input.send_keys(name).await?;
    driver
        .find(By::Css("[data-testid='room-input']"))
        .await?
        .send_keys("meeting")
        .await?;
    driver
        .find(By::Css("[data-testid='join-room']"))
        .await?
        .click()
        .await?;
    wait_for_state(driver, "connected", LOAD).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_chat_see_cursors_and_notice_leaving() -> Result<()> {
    let _one_at_a_time = browser_lock().await;
    let peer = RunningPeer::start("127.0.0.1:0".parse()?, |_| {}).await?;
    let base = peer.url("");
    let a = Browser::launch().await?;
    let b = Browser::launch().await?;
    let result = async {
        set_name(&a.driver, &base, "Ada").await?;
        set_name(&b.driver, &base, "Grace").await?;
        let both = eventually("both members listed in B", LOAD, || async {
            let n = names(&b.driver).await?;
            Ok((n.len() == 2).then_some(n))
        })
        .await?;
        assert!(
            both.contains(&"Ada".to_owned()) && both.contains(&"Grace".to_owned()),
            "{both:?}"
        );

        // A message typed in A appears in B.
        let input = a.driver.find(By::Css("[data-testid='chat-input']")).await?;
        input.send_keys("hello from Ada").await?;
        a.driver
            .find(By::Css("[data-testid='chat-send']"))
            .await?
            .click()
            .await?;
        eventually(
            "the message reaching B",
            Duration::from_secs(10),
            || async {
                let lines = b
                    .driver
                    .find_all(By::Css("[data-testid='chat-message'][data-state='sent']"))
                    .await?;
                for l in lines {
                    if l.text().await?.contains("hello from Ada") {
                        return Ok(Some(()));
                    }
                }
                Ok(None)
            },
        )
        .await?;
        eventually(
            "A's own message acknowledged",
            Duration::from_secs(10),
            || async {
                Ok(a.driver
                    .find_all(By::Css(
                        "[data-testid='chat-message'][data-state='pending']",
                    ))
                    .await?
                    .is_empty()
                    .then_some(()))
            },
        )
        .await?;

        // B sees A's cursor move over the canvas.
        let canvas = a
            .driver
            .find(By::Css("[data-testid='universe-canvas']"))
            .await?;
        let mut positions = Vec::new();
        for offset in [-120i64, 80] {
            a.driver
                .action_chain()
                .move_to_element_with_offset(&canvas, offset, offset / 2)
                .perform()
                .await?;
            let seen = eventually("A's cursor in B", Duration::from_secs(5), || async {
                let cursors = b
                    .driver
                    .find_all(By::Css("[data-testid='cursor'][data-name='Ada']"))
                    .await?;
                let Some(c) = cursors.first() else {
                    return Ok(None);
                };
                let x = c.attr("data-x").await?.unwrap_or_default();
                Ok((positions.last() != Some(&x)).then_some(x))
            })
            .await?;
            positions.push(seen);
        }
        let xs: Vec<f32> = positions
            .iter()
            .map(|x| x.parse().unwrap_or(f32::NAN))
            .collect();
        assert!(
            xs[0] < xs[1],
            "A moved right, so B must see A's world x grow: {positions:?}"
        );
        b.screenshot("room-b-sees-ada").await?;

        // Closing A removes A and A's cursor from B within the heartbeat timeout.
        a.driver.clone().quit().await?;
        eventually(
            "A leaving B's member list",
            Duration::from_secs(12),
            || async {
                let n = names(&b.driver).await?;
                let cursors = b
                    .driver
                    .find_all(By::Css("[data-testid='cursor'][data-name='Ada']"))
                    .await?;
                Ok((n == ["Grace"] && cursors.is_empty()).then_some(()))
            },
        )
        .await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = b.screenshot("rooms-failure-b").await;
        let _ = a.screenshot("rooms-failure-a").await;
    }
    let _ = b.quit().await;
    drop(a);
    peer.stop().await?;
    result
}
