//! Passages that wait for the owner's approval, decided on the owner's peers page: bee's
//! sandbox asks for approval; a browser on alpha opens a passage into it, bee's page shows
//! it pending and the test clicks Approve there, and alpha's list shows it connected. A
//! second request is declined the same way and alpha's list shows it refused.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use multiverse_e2e::{browser_lock, eventually, get_json, save_screenshot, Browser, RunningPeer};
use thirtyfour::prelude::*;

const LOAD: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

/// The id of the universe called `name` that `peer` hosts.
async fn universe_id(peer: &RunningPeer, name: &str) -> Result<String> {
    let list = get_json(peer, "/api/universes").await?;
    let found = list
        .as_array()
        .context("a list of universes")?
        .iter()
        .find(|u| u["name"] == name)
        .with_context(|| format!("{name} is not hosted: {list}"))?;
    Ok(found["id"].as_str().context("an id")?.to_owned())
}

/// Waits for a passage row of the page with this role and state.
async fn row(driver: &WebDriver, role: &str, state: &str) -> Result<WebElement> {
    let css = format!("[data-testid='passage'][data-role='{role}'][data-state='{state}']");
    driver
        .query(By::Css(css))
        .wait(LOAD, POLL)
        .first()
        .await
        .with_context(|| format!("a passage row, {role}, {state}"))
}

/// How many passage rows of the page are in `state`.
async fn rows_in(driver: &WebDriver, state: &str) -> Result<usize> {
    let css = format!("[data-testid='passage'][data-state='{state}']");
    Ok(driver.find_all(By::Css(css)).await?.len())
}

/// On alpha's peers page: asks for a passage alpha.sandbox → bee.sandbox (participate, full).
async fn ask(driver: &WebDriver, from: &str, to: &str) -> Result<()> {
    for (select, value) in [
        ("passage-from", from),
        ("passage-to", to),
        ("passage-view", "participate"),
        ("passage-interaction", "full"),
    ] {
        driver
            .query(By::Css(format!(
                "[data-testid='{select}'] option[value='{value}']"
            )))
            .wait(LOAD, POLL)
            .first()
            .await
            .with_context(|| format!("{select} offers {value}"))?
            .click()
            .await?;
    }
    driver
        .find(By::Css("[data-testid='open-passage']"))
        .await?
        .click()
        .await?;
    Ok(())
}

/// Clicks `button` (`approve-passage` or `deny-passage`) of bee's one pending row.
async fn decide(driver: &WebDriver, bee: &RunningPeer, button: &str) -> Result<()> {
    driver.goto(bee.url("/peers")).await?;
    let pending = row(driver, "owner", "pending_approval").await?;
    pending.scroll_into_view().await?;
    save_screenshot(driver, &format!("passages-pending-{button}")).await?;
    pending
        .find(By::Css(format!("[data-testid='{button}']")))
        .await?
        .click()
        .await?;
    eventually("bee's page to drop the pending row", LOAD, || async {
        Ok((rows_in(driver, "pending_approval").await? == 0).then_some(()))
    })
    .await
}

async fn in_browser(driver: &WebDriver, alpha: &RunningPeer, bee: &RunningPeer) -> Result<()> {
    let (from, to) = (
        universe_id(alpha, "sandbox").await?,
        universe_id(bee, "sandbox").await?,
    );
    // Approve: alpha asks, bee's page shows it waiting, Approve connects it on alpha.
    driver.goto(alpha.url("/peers")).await?;
    ask(driver, &from, &to).await?;
    row(driver, "opener", "pending_approval").await?;
    decide(driver, bee, "approve-passage").await?;
    row(driver, "owner", "connected").await?;
    driver.goto(alpha.url("/peers")).await?;
    row(driver, "opener", "connected")
        .await?
        .scroll_into_view()
        .await?;
    save_screenshot(driver, "passages-approved").await?;

    // Decline: a second request, declined on bee's page, shows refused on alpha's.
    ask(driver, &from, &to).await?;
    row(driver, "opener", "pending_approval").await?;
    decide(driver, bee, "deny-passage").await?;
    driver.goto(alpha.url("/peers")).await?;
    let refused = row(driver, "opener", "error").await?;
    refused.scroll_into_view().await?;
    let text = refused.text().await?;
    ensure!(text.contains("declined"), "the refusal says why: {text:?}");
    ensure!(
        rows_in(driver, "connected").await? == 1,
        "the approved passage stays connected"
    );
    save_screenshot(driver, "passages-declined").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_approves_and_declines_passages_from_its_peers_page() -> Result<()> {
    let _one_at_a_time = browser_lock().await;
    let bee = RunningPeer::start_linked("bee", &[]).await?;
    let alpha = RunningPeer::start_linked("alpha", &[bee.addr]).await?;
    let result = async {
        eventually("alpha to list bee's universes", LOAD, || async {
            let peers = get_json(&alpha, "/api/peers").await?;
            let listed = peers["links"][0]["universes"]
                .as_array()
                .is_some_and(|u| u.len() >= 3);
            Ok(listed.then_some(()))
        })
        .await?;
        // bee's sandbox admits passages only with the owner's approval.
        let sandbox = universe_id(&bee, "sandbox").await?;
        let policy = reqwest::Client::new()
            .put(bee.url(&format!("/api/universes/{sandbox}/passage-policy")))
            .header("content-type", "application/json")
            .body(r#"{"access": "shared", "approval": true}"#)
            .send()
            .await?;
        ensure!(policy.status().as_u16() == 204, "policy: {policy:?}");
        let browser = Browser::launch().await?;
        let outcome = in_browser(&browser.driver, &alpha, &bee).await;
        if outcome.is_err() {
            let _ = browser.screenshot("passages-failure").await;
        }
        browser.quit().await?;
        outcome
    }
    .await;
    alpha.stop().await?;
    bee.stop().await?;
    result
}
