//! A user's own worlds in the real client: create one from a template in the lobby, find it
//! again after a reload, open it, see it rendered, save it; a duplicate name is refused with
//! the peer's own message; someone else opening the room sees the world but no save controls.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use multiverse_e2e::{
    browser_lock, entity_count, eventually, local_storage, save_screenshot, wait_for_state,
    Browser, PixelStats, RunningPeer,
};
use thirtyfour::prelude::*;

const LOAD: Duration = Duration::from_secs(60);
const WORLD: &str = "My tank";

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
        let _ = browser.screenshot("worlds-failure").await;
    }
    browser.quit().await?;
    result
}

fn testid(id: &str) -> By {
    By::Css(format!("[data-testid='{id}']"))
}

async fn text_of(driver: &WebDriver, id: &str) -> Result<String> {
    Ok(driver.find(testid(id)).await?.text().await?)
}

/// Waits for the lobby's templates and the user's worlds to have loaded.
async fn lobby_ready(driver: &WebDriver) -> Result<()> {
    let list = driver
        .query(By::Css("[data-testid='my-worlds'][data-state='ready']"))
        .wait(LOAD, Duration::from_millis(100))
        .first()
        .await;
    if list.is_err() {
        let error = text_of(driver, "world-error").await.unwrap_or_default();
        anyhow::bail!("the lobby did not list my worlds within {LOAD:?}; it says {error:?}");
    }
    driver
        .query(testid("template-aquarium"))
        .wait(LOAD, Duration::from_millis(100))
        .first()
        .await
        .context("the aquarium template is offered")?;
    Ok(())
}

/// Picks `template`, types `name` and presses "Create world".
async fn create_world(driver: &WebDriver, template: &str, name: &str) -> Result<()> {
    driver
        .find(testid(&format!("template-{template}")))
        .await?
        .click()
        .await?;
    let input = driver.find(testid("world-name")).await?;
    input.clear().await?;
    input.send_keys(name).await?;
    driver.find(testid("create-world")).await?.click().await?;
    Ok(())
}

/// Waits until the page shows entities on its canvas; returns how many.
async fn wait_for_entities(driver: &WebDriver) -> Result<usize> {
    eventually("entities on the canvas", LOAD, || async {
        let n = entity_count(driver).await?;
        Ok((n > 0).then_some(n))
    })
    .await
}

/// The path of the current URL (`/r/w-…`).
async fn path(driver: &WebDriver) -> Result<String> {
    Ok(driver.current_url().await?.path().to_owned())
}

fn hex_only(id: &str) -> String {
    id.chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_world_is_created_listed_after_a_reload_opened_and_saved() -> Result<()> {
    let peer = RunningPeer::start(any_port(), |_| {}).await?;
    let base = peer.url("");
    with_browser(|driver| async move {
        driver.goto(format!("{base}/")).await?;
        lobby_ready(&driver).await?;
        let card = text_of(&driver, "template-aquarium").await?;
        ensure!(
            card.contains("entities"),
            "the template card tells its entity count: {card:?}"
        );
        save_screenshot(&driver, "worlds-lobby").await?;

        // Create: the lobby takes us straight into the world's room.
        create_world(&driver, "aquarium", WORLD).await?;
        let room = eventually("navigation to the world's room", LOAD, || async {
            let p = path(&driver).await?;
            Ok(p.strip_prefix("/r/w-").map(|_| p.clone()))
        })
        .await?;
        wait_for_state(&driver, "connected", LOAD).await?;
        wait_for_entities(&driver).await?;
        let token = local_storage(&driver, "multiverse.session_token")
            .await?
            .context("the lobby stored a session token")?;
        ensure!(
            local_storage(&driver, "multiverse.user_id")
                .await?
                .is_some(),
            "the user id is stored beside the token"
        );

        // The owner sees the save state and can save now.
        let state = driver
            .query(testid("save-state"))
            .wait(LOAD, Duration::from_millis(100))
            .first()
            .await
            .context("the owner sees the save state")?;
        let before = state.text().await?;
        ensure!(before.starts_with("Saved"), "save state: {before:?}");
        driver.find(testid("save-now")).await?.click().await?;
        eventually("a finished save", LOAD, || async {
            let s = driver.find(testid("save-state")).await?;
            let (state, text) = (s.attr("data-state").await?, s.text().await?);
            ensure!(
                state.as_deref() != Some("failed"),
                "saving failed: {text:?}"
            );
            Ok((state.as_deref() == Some("saved") && text.starts_with("Saved")).then_some(()))
        })
        .await?;

        // Back in the lobby, after a reload, the world is listed.
        driver.goto(format!("{base}/")).await?;
        lobby_ready(&driver).await?;
        driver.refresh().await?;
        lobby_ready(&driver).await?;
        let item = driver
            .query(testid(&format!("world-{WORLD}")))
            .wait(LOAD, Duration::from_millis(100))
            .first()
            .await
            .context("the world is listed after a reload")?;
        let listed = item.text().await?;
        ensure!(
            listed.contains("aquarium") && listed.contains("saved"),
            "the item tells its template and last save: {listed:?}"
        );
        ensure!(
            item.attr("data-room").await?.map(|r| format!("/r/{r}")) == Some(room.clone()),
            "the item opens the room we were taken to ({room})"
        );
        ensure!(
            local_storage(&driver, "multiverse.session_token").await? == Some(token.clone()),
            "the same session was kept across the reload"
        );

        // A second world of the same name is refused, with the peer's own words.
        create_world(&driver, "aquarium", WORLD).await?;
        let shown = eventually("the duplicate-name error", LOAD, || async {
            let text = match driver.find(testid("world-error")).await {
                Ok(e) => e.text().await?,
                Err(_) => return Ok(None),
            };
            Ok((!text.trim().is_empty()).then_some(text))
        })
        .await?;
        ensure!(
            path(&driver).await? == "/",
            "a refused world does not navigate"
        );
        let answer = reqwest::Client::new()
            .post(format!("{base}/api/worlds"))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(serde_json::json!({"template": "aquarium", "name": WORLD}).to_string())
            .send()
            .await?;
        ensure!(answer.status() == 409, "the peer says {}", answer.status());
        let body: serde_json::Value = serde_json::from_str(&answer.text().await?)?;
        ensure!(body["error"] == "duplicate_name", "{body}");
        ensure!(
            shown == body["message"].as_str().unwrap_or_default(),
            "the lobby shows the peer's message: {shown:?} vs {body}"
        );
        ensure!(
            driver
                .find_all(By::Css("[data-testid='my-worlds'] > li"))
                .await?
                .len()
                == 1,
            "still one world"
        );
        save_screenshot(&driver, "worlds-duplicate").await?;

        // Open it from the list: the canvas shows the world.
        item.find(testid("open-world")).await?.click().await?;
        eventually("navigation from Open", LOAD, || async {
            Ok((path(&driver).await? == room).then_some(()))
        })
        .await?;
        wait_for_state(&driver, "connected", LOAD).await?;
        let n = wait_for_entities(&driver).await?;
        let world_id = driver
            .query(By::Css(".world-save[data-world]"))
            .wait(LOAD, Duration::from_millis(100))
            .first()
            .await?
            .attr("data-world")
            .await?
            .unwrap_or_default();
        let shown_universe: String = driver
            .execute(
                "return document.querySelector(\"[data-testid='universe-select']\").value;",
                vec![],
            )
            .await?
            .convert()?;
        ensure!(
            hex_only(&shown_universe) == hex_only(&world_id),
            "the room shows the world ({world_id}), not {shown_universe:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await; // let the canvas draw
        let png = save_screenshot(&driver, "world-my-tank").await?;
        let stats = PixelStats::of_png(&png)?;
        ensure!(
            stats.looks_rendered(),
            "{n} entities, but the screenshot looks blank: {stats:?}"
        );

        // Someone else (another user's token) opening the room sees the world, no save controls.
        let other = reqwest::Client::new()
            .post(format!("{base}/api/session"))
            .header("Content-Type", "application/json")
            .body(r#"{"display_name": "Visitor", "persistent": false, "token": null}"#)
            .send()
            .await?
            .text()
            .await?;
        let other: serde_json::Value = serde_json::from_str(&other)?;
        let other_token = other["token"].as_str().context("a visitor token")?;
        driver
            .execute(
                "window.localStorage.setItem('multiverse.session_token', arguments[0]);",
                vec![serde_json::Value::from(other_token)],
            )
            .await?;
        driver.refresh().await?;
        wait_for_state(&driver, "connected", LOAD).await?;
        wait_for_entities(&driver).await?;
        tokio::time::sleep(Duration::from_millis(1500)).await; // time for an ownership check
        ensure!(
            driver.find_all(testid("save-state")).await?.is_empty(),
            "a visitor sees no save controls"
        );
        save_screenshot(&driver, "world-my-tank-visitor").await?;

        // The owner again, in the lobby: Delete asks once more, then the world is gone.
        driver
            .execute(
                "window.localStorage.setItem('multiverse.session_token', arguments[0]);",
                vec![serde_json::Value::from(token.as_str())],
            )
            .await?;
        driver.goto(format!("{base}/")).await?;
        lobby_ready(&driver).await?;
        let delete = driver
            .find(By::Css(format!(
                "[data-testid='world-{WORLD}'] [data-testid='delete-world']"
            )))
            .await?;
        delete.click().await?;
        let asking = driver
            .find(By::Css(format!(
                "[data-testid='world-{WORLD}'] [data-testid='delete-world']"
            )))
            .await?;
        ensure!(
            asking.text().await?.contains("Really"),
            "the first press asks again"
        );
        asking.click().await?;
        driver
            .query(testid("no-worlds"))
            .wait(LOAD, Duration::from_millis(100))
            .first()
            .await
            .context("the list is empty after deleting")?;
        let gone = reqwest::Client::new()
            .get(format!("{base}/api/worlds"))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await?
            .text()
            .await?;
        ensure!(gone.trim() == "[]", "the peer has no world left: {gone}");
        Ok(())
    })
    .await?;
    peer.stop().await
}
