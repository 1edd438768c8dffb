//! Federation in the real client: two peers on 127.0.0.1, A linked to B at start-up. A
//! browser on A lists B and its universes on the peers page, watches B's sandbox through a
//! portal (it moves), opens a passage with full interaction, drags an entity of A's sandbox
//! into the portal and sees it arrive in B's sandbox — checked on both peers' REST APIs and
//! in the page's own portal mirror. With the passage closed, the next drag shows the peer's
//! refusal and nothing moves.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use multiverse_e2e::{
    browser_lock, entity_count, eventually, get_json, save_screenshot, wait_for_state, Browser,
    PixelStats, RunningPeer,
};
use thirtyfour::prelude::*;

const LOAD: Duration = Duration::from_secs(60);

fn testid(id: &str) -> By {
    By::Css(format!("[data-testid='{id}']"))
}

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

/// Entities in a universe right now, by its peer's count.
async fn entities(peer: &RunningPeer, universe: &str) -> Result<u64> {
    let stats = get_json(peer, &format!("/api/universes/{universe}")).await?;
    stats["info"]["entities"]
        .as_u64()
        .with_context(|| format!("no entity count in {stats}"))
}

/// The portal pane's `(universe, entities, last frame)` as the page's HUD reports it.
async fn portal_view(driver: &WebDriver) -> Result<Option<(String, usize, u64)>> {
    let v = driver
        .execute(
            "const e = document.querySelector(\"[data-testid='portal-count']\");
             return e && !e.hidden ? [e.dataset.universe, e.dataset.count, e.dataset.seq] : null;",
            vec![],
        )
        .await?;
    let v: Option<(String, String, String)> = v.convert()?;
    Ok(v.and_then(|(u, n, seq)| Some((u, n.parse().ok()?, seq.parse().ok()?))))
}

/// The portal's place on the canvas, `(x, y, w, h)` in canvas pixels.
async fn portal_rect(canvas: &WebElement) -> Result<(f64, f64, f64, f64)> {
    let rect = canvas
        .attr("data-second")
        .await?
        .context("the canvas tells where the second pane is")?;
    let n: Vec<f64> = rect.split(',').filter_map(|v| v.parse().ok()).collect();
    ensure!(n.len() == 4, "data-second is {rect:?}");
    Ok((n[0], n[1], n[2], n[3]))
}

/// Pixels that differ between two same-sized PNGs inside the circle inscribed in `rect`.
fn changed_in_circle(a: &[u8], b: &[u8], rect: (f64, f64, f64, f64)) -> Result<usize> {
    let decode = |png_bytes: &[u8]| -> Result<(u32, u32, usize, Vec<u8>)> {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info()?;
        let mut buf = vec![0; reader.output_buffer_size().context("image too large")?];
        let info = reader.next_frame(&mut buf)?;
        buf.truncate(info.buffer_size());
        Ok((info.width, info.height, info.color_type.samples(), buf))
    };
    let (wa, ha, ca, pa) = decode(a)?;
    let (wb, hb, cb, pb) = decode(b)?;
    ensure!(
        (wa, ha, ca) == (wb, hb, cb),
        "screenshots differ in size or format"
    );
    let (x, y, w, h) = rect;
    let (cx, cy, r) = (x + w / 2.0, y + h / 2.0, w.min(h) / 2.0 - 6.0);
    let mut changed = 0;
    for py in 0..ha {
        for px in 0..wa {
            let (dx, dy) = (f64::from(px) - cx, f64::from(py) - cy);
            if dx * dx + dy * dy > r * r {
                continue;
            }
            let i = (py as usize * wa as usize + px as usize) * ca;
            changed += usize::from(pa[i..i + ca] != pb[i..i + ca]);
        }
    }
    Ok(changed)
}

/// One try at carrying an entity of the main pane into the portal. Reads the grabbable
/// entities the page exposes (`data-grab`, slowest first), extrapolates the slowest but
/// `skip` to this moment, presses on it, moves to the portal's centre (a screenshot there)
/// and releases. Returns the entity (`index:generation`) it aimed at.
async fn drag_into_portal(driver: &WebDriver, skip: usize) -> Result<Option<String>> {
    let aim = driver
        .execute(
            r#"const c = document.querySelector("[data-testid='universe-canvas']");
               const grab = (c.dataset.grab || "").split(";").filter(s => s);
               const second = (c.dataset.second || "").split(",").map(Number);
               if (grab.length === 0 || second.length !== 4) return null;
               const pick = grab[Math.min(arguments[0], grab.length - 1)];
               const [index, generation, x, y, vx, vy] = pick.split(":").map(Number);
               const dt = (performance.now() - Number(c.dataset.grabAt)) / 1000 + 0.03;
               const r = c.getBoundingClientRect();
               return [index + ":" + generation,
                       Math.round(r.left + x + vx * dt), Math.round(r.top + y + vy * dt),
                       Math.round(r.left + second[0] + second[2] / 2),
                       Math.round(r.top + second[1] + second[3] / 2)];"#,
            vec![serde_json::Value::from(skip)],
        )
        .await?;
    let Some((entity, ex, ey, px, py)) = aim.convert::<Option<(String, i64, i64, i64, i64)>>()?
    else {
        return Ok(None);
    };
    driver
        .action_chain_with_delay(None, Some(Duration::ZERO))
        .move_to(ex, ey)
        .click_and_hold()
        .move_to(ex + (px - ex) / 3, ey + (py - ey) / 3)
        .move_to(ex + 2 * (px - ex) / 3, ey + 2 * (py - ey) / 3)
        .move_to(px, py)
        .perform()
        .await?;
    // Held over the portal: the entity is drawn at the pointer and the portal's rim is lit.
    save_screenshot(driver, "federation-dragging").await?;
    driver
        .action_chain_with_delay(None, Some(Duration::ZERO))
        .release()
        .perform()
        .await?;
    Ok(Some(entity))
}

/// The transfer status line: `(state, text)`, once shown.
async fn transfer_status(driver: &WebDriver) -> Result<Option<(String, String)>> {
    let status = driver.find(testid("transfer-status")).await?;
    let state = status.attr("data-state").await?.unwrap_or_default();
    if state.is_empty() {
        return Ok(None);
    }
    Ok(Some((state, status.text().await?)))
}

/// Drags entities into the portal until one press catches an entity and the peer answers
/// the transfer: `(entity, state, text)` of the transfer status. The status line is cleared
/// before each try, so a press that missed (a pan, no status) is told apart. An avatar (a
/// member's own entity, which never travels) is skipped for the next grabbable entity.
async fn drag_until_answered(driver: &WebDriver) -> Result<(String, String, String)> {
    let mut skip = 0;
    for attempt in 1..=6 {
        driver
            .execute(
                "const e = document.querySelector(\"[data-testid='transfer-status']\");
                 if (e) e.dataset.state = '';",
                vec![],
            )
            .await?;
        let Some(entity) = drag_into_portal(driver, skip).await? else {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        let shown = eventually("a transfer status", Duration::from_millis(1500), || async {
            transfer_status(driver).await
        })
        .await;
        if shown.is_err() {
            eprintln!("attempt {attempt}: missed entity {entity}; trying again");
            continue;
        }
        let (state, text) = eventually("the transfer's answer", LOAD, || async {
            Ok(transfer_status(driver)
                .await?
                .filter(|(state, _)| state != "sending"))
        })
        .await?;
        if state == "failed" && text.contains("avatar") {
            eprintln!("attempt {attempt}: {entity} is an avatar ({text}); trying another");
            skip += 1;
            continue;
        }
        return Ok((entity, state, text));
    }
    anyhow::bail!("could not grab an entity in six attempts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_on_one_peer_watches_and_feeds_another_peers_universe() -> Result<()> {
    let _one_at_a_time = browser_lock().await;
    let bee = RunningPeer::start_linked("bee", &[]).await?;
    let alpha = RunningPeer::start_linked("alpha", &[bee.addr]).await?;
    // A third peer nobody links to at start: the browser links alpha to it.
    let cat = RunningPeer::start_linked("cat", &[]).await?;
    let result = async {
        // The link is up and A knows B's universes.
        eventually("alpha linked to bee", LOAD, || async {
            let peers = get_json(&alpha, "/api/peers").await?;
            let linked = peers["links"].as_array().is_some_and(|links| {
                links.iter().any(|l| {
                    l["name"] == "bee" && l["universes"].as_array().is_some_and(|u| u.len() >= 3)
                })
            });
            Ok(linked.then_some(()))
        })
        .await?;
        let bee_sandbox = universe_id(&bee, "sandbox").await?;
        let alpha_sandbox = universe_id(&alpha, "sandbox").await?;
        let browser = Browser::launch().await?;
        let peers = Peers {
            alpha: &alpha,
            bee: &bee,
            cat: &cat,
        };
        let outcome = in_browser(&browser.driver, peers, &alpha_sandbox, &bee_sandbox).await;
        if outcome.is_err() {
            let _ = browser.screenshot("federation-failure").await;
        }
        browser.quit().await?;
        outcome
    }
    .await;
    alpha.stop().await?;
    bee.stop().await?;
    cat.stop().await?;
    result
}

/// The three peers of the test.
#[derive(Clone, Copy)]
struct Peers<'a> {
    alpha: &'a RunningPeer,
    bee: &'a RunningPeer,
    cat: &'a RunningPeer,
}

async fn in_browser(
    driver: &WebDriver,
    peers: Peers<'_>,
    alpha_sandbox: &str,
    bee_sandbox: &str,
) -> Result<()> {
    let Peers { alpha, bee, cat } = peers;
    // The peers page lists bee, how it is linked, and its universes.
    driver.goto(alpha.url("/peers")).await?;
    let link = driver
        .query(testid("peer-bee"))
        .wait(LOAD, Duration::from_millis(100))
        .first()
        .await
        .context("the peers page lists bee")?;
    ensure!(
        link.attr("data-direction").await?.as_deref() == Some("outbound"),
        "alpha dialled bee"
    );
    for name in ["sandbox", "aquarium", "galaxy"] {
        driver
            .query(testid(&format!("remote-universe-bee/{name}")))
            .wait(LOAD, Duration::from_millis(100))
            .first()
            .await
            .with_context(|| format!("bee/{name} is listed"))?;
    }
    let mine = driver.find(testid("my-address")).await?.text().await?;
    ensure!(
        mine == format!("ws://{}", alpha.addr),
        "my address is the page's host: {mine:?}"
    );
    let dial = driver
        .query(By::Css("[data-testid='dial'][data-state='connected']"))
        .wait(LOAD, Duration::from_millis(100))
        .first()
        .await
        .context("the dialled address shows connected")?;
    let dialled = dial.attr("data-address").await?.unwrap_or_default();
    ensure!(
        dialled == format!("ws://{}/peer", bee.addr),
        "dialled {dialled:?}"
    );
    // Linking to another peer from the page: it is dialled and shows up, universes and all.
    driver
        .find(testid("peer-address"))
        .await?
        .send_keys(format!("ws://{}", cat.addr))
        .await?;
    driver.find(testid("connect-peer")).await?.click().await?;
    let note = driver
        .query(testid("peer-note"))
        .wait(LOAD, Duration::from_millis(100))
        .first()
        .await
        .context("connecting shows what is dialled")?
        .text()
        .await?;
    ensure!(
        note.contains(&format!("ws://{}/peer", cat.addr)),
        "note: {note:?}"
    );
    driver
        .query(testid("remote-universe-cat/sandbox"))
        .wait(LOAD, Duration::from_millis(100))
        .first()
        .await
        .context("cat and its universes appear once linked")?;
    let input = driver.find(testid("peer-address")).await?;
    ensure!(
        input.prop("value").await?.unwrap_or_default().is_empty(),
        "the form is cleared after dialling"
    );
    // A bad address is refused with the peer's own words.
    driver
        .find(testid("peer-address"))
        .await?
        .send_keys("not a peer")
        .await?;
    driver.find(testid("connect-peer")).await?.click().await?;
    let refused = driver
        .query(testid("peer-error"))
        .wait(LOAD, Duration::from_millis(100))
        .first()
        .await
        .context("a bad address shows an error")?
        .text()
        .await?;
    ensure!(
        refused.contains("not a peer address"),
        "the error is the peer's: {refused:?}"
    );
    // A passage opened from the page reaches "connected", with its health shown. Entities
    // cross only through a passage that grants full interaction: asked for here.
    for (select, value) in [
        ("passage-from", alpha_sandbox),
        ("passage-to", bee_sandbox),
        ("passage-view", "participate"),
        ("passage-interaction", "full"),
    ] {
        driver
            .query(By::Css(format!(
                "[data-testid='{select}'] option[value='{value}']"
            )))
            .wait(LOAD, Duration::from_millis(100))
            .first()
            .await
            .with_context(|| format!("{select} offers {value}"))?
            .click()
            .await?;
    }
    driver.find(testid("open-passage")).await?.click().await?;
    driver
        .query(By::Css("[data-testid='passage'][data-state='connected']"))
        .wait(LOAD, Duration::from_millis(100))
        .first()
        .await
        .context("the passage opened from the page connects")?;
    save_screenshot(driver, "federation-peers").await?;

    // "Watch through a portal": alpha's sandbox room with bee's sandbox in the portal.
    driver
        .find(By::Css(
            "[data-testid='remote-universe-bee/sandbox'] [data-testid='watch-portal']",
        ))
        .await?
        .click()
        .await?;
    eventually("the room page", LOAD, || async {
        let url = driver.current_url().await?;
        Ok((url.path() == "/r/sandbox").then_some(url))
    })
    .await?;
    wait_for_state(driver, "connected", LOAD).await?;
    let first = eventually("bee's sandbox in the portal", LOAD, || async {
        let view = portal_view(driver).await?;
        Ok(view.filter(|(u, n, _)| u == bee_sandbox && *n > 0))
    })
    .await?;
    eventually("alpha's sandbox in the main pane", LOAD, || async {
        Ok((entity_count(driver).await? > 0).then_some(()))
    })
    .await?;
    ensure!(
        driver
            .find(testid("layout-portal"))
            .await?
            .class_name()
            .await?
            .unwrap_or_default()
            .contains("active"),
        "the portal layout is on"
    );

    // The remote universe moves: frames keep coming, and the portal's pixels change.
    let canvas = driver.find(testid("universe-canvas")).await?;
    tokio::time::sleep(Duration::from_millis(500)).await; // let the canvas draw
    let rect = portal_rect(&canvas).await?;
    let before = canvas.screenshot_as_png().await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after = canvas.screenshot_as_png().await?;
    let changed = changed_in_circle(&before, &after, rect)?;
    ensure!(
        changed > 200,
        "only {changed} pixels of the portal changed in 400 ms"
    );
    let later = portal_view(driver)
        .await?
        .context("the portal is still shown")?;
    ensure!(
        later.2 > first.2,
        "the portal's frames advance: {first:?} then {later:?}"
    );
    let stats = PixelStats::of_png(&after)?;
    ensure!(stats.looks_rendered(), "the canvas looks blank: {stats:?}");
    save_screenshot(driver, "federation-portal").await?;

    // Drag an entity of alpha's sandbox into the portal: it moves to bee's sandbox.
    ensure!(
        canvas.attr("data-transfers").await?.as_deref() == Some("on"),
        "dragging into the portal is offered for a universe hosted here"
    );
    let (alpha_before, bee_before) = (
        entities(alpha, alpha_sandbox).await?,
        entities(bee, bee_sandbox).await?,
    );
    let portal_before = portal_view(driver).await?.context("portal")?.1;
    let (entity, state, text) = drag_until_answered(driver).await?;
    ensure!(
        state == "sent" && text == "Sent",
        "the transfer of {entity} ended {state}: {text}"
    );
    eventually("the entity arriving in bee's sandbox", LOAD, || async {
        let (a, b) = (
            entities(alpha, alpha_sandbox).await?,
            entities(bee, bee_sandbox).await?,
        );
        Ok((a + 1 == alpha_before && b == bee_before + 1).then_some(()))
    })
    .await
    .with_context(|| format!("entity {entity}: alpha had {alpha_before}, bee had {bee_before}"))?;
    eventually("the portal showing one entity more", LOAD, || async {
        let n = portal_view(driver).await?.map_or(0, |v| v.1);
        Ok((n == portal_before + 1).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    save_screenshot(driver, "federation-transferred").await?;

    // Once the passage is closed, a drag is refused with the peer's words and the entity
    // stays home.
    let passages = get_json(alpha, "/api/passages").await?;
    let id = passages[0]["id"].as_str().context("alpha's passage")?;
    let closed = reqwest::Client::new()
        .delete(alpha.url(&format!("/api/passages/{id}")))
        .send()
        .await?;
    ensure!(
        closed.status().as_u16() == 204,
        "closing answered {closed:?}"
    );
    let (alpha_before, bee_before) = (
        entities(alpha, alpha_sandbox).await?,
        entities(bee, bee_sandbox).await?,
    );
    let (entity, state, text) = drag_until_answered(driver).await?;
    ensure!(
        state == "failed" && text.contains("open a passage from sandbox to bee/sandbox"),
        "the transfer of {entity} without a passage ended {state}: {text}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = (
        entities(alpha, alpha_sandbox).await?,
        entities(bee, bee_sandbox).await?,
    );
    ensure!(
        after == (alpha_before, bee_before),
        "nothing moves without a passage: {after:?}, not {:?}",
        (alpha_before, bee_before)
    );
    save_screenshot(driver, "federation-refused").await?;

    // A universe watched through a portal is not offered for dragging from.
    let select = driver.find(testid("universe-select")).await?;
    select
        .find(By::XPath(".//option[text()='bee/sandbox']"))
        .await?
        .click()
        .await?;
    eventually(
        "dragging switched off for a remote main universe",
        LOAD,
        || async {
            let on = canvas.attr("data-transfers").await?;
            let mode = driver.find(testid("mode")).await?.text().await?;
            Ok((on.as_deref() == Some("off") && mode.contains("View Only")).then_some(()))
        },
    )
    .await?;
    save_screenshot(driver, "federation-remote-main").await?;
    Ok::<(), anyhow::Error>(())
}
