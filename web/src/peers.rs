//! The peers page at `/peers`: this peer's name, id and address (to give to other peers), a
//! form to link to another peer, the linked peers with their universes (each can be watched
//! through a portal in a room), and the addresses this peer keeps dialling.
//!
//! Everything comes from `GET /healthz` and `GET /api/peers`, polled every 2 s while the
//! page is open. "My address" is the host this page was loaded from (`ws://<location.host>`),
//! which is right when the page was opened through a LAN link and only good for this
//! machine when it says 127.0.0.1; on an https page (another port) it is the peer's own
//! plain address for that host, from `addresses` in `/api/peers`.
//!
//! `?room=<room>&universe=<id>` (set by the room page's "Peers" link) decides where "Watch
//! through a portal" leads: that room, showing that universe, with the remote one in the
//! portal. Without them it is the `sandbox` room.

use gloo_timers::callback::Interval;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;
use multiverse_core::ids::{RoomId, UniverseId};

use crate::api::{self, Peers};
use crate::passages::PassagesPanel;
use crate::room_panels::copy_to_clipboard;

/// How often the page asks the peer about its links (ms).
const POLL_MS: u32 = 2_000;

/// What another peer dials to reach this one: `ws://<host this page came from>`; on an
/// https page (another port) the peer's own plain address for the same host.
fn my_address(peers: Option<&Peers>) -> String {
    let location = web_sys::window().map(|w| w.location());
    let host = location
        .as_ref()
        .and_then(|l| l.host().ok())
        .unwrap_or_default();
    let https = location
        .as_ref()
        .and_then(|l| l.protocol().ok())
        .is_some_and(|p| p == "https:");
    if !https {
        return format!("ws://{host}");
    }
    let hostname = location
        .as_ref()
        .and_then(|l| l.hostname().ok())
        .unwrap_or_default();
    let addresses = peers.map(|p| p.addresses.as_slice()).unwrap_or_default();
    addresses
        .iter()
        .find(|a| {
            a.trim_start_matches("ws://")
                .starts_with(&format!("{hostname}:"))
        })
        .or(addresses.first())
        .cloned()
        .unwrap_or_else(|| format!("ws://{hostname}"))
}

/// The first 8 hex digits of an id, for people.
fn short(id: &str) -> String {
    id.chars().filter(char::is_ascii_hexdigit).take(8).collect()
}

/// The peers page.
#[component]
pub fn PeersPage() -> impl IntoView {
    let query = use_query_map();
    let room = query
        .read_untracked()
        .get("room")
        .and_then(|r| RoomId::new(&r).ok())
        .unwrap_or_else(|| RoomId::new("sandbox").expect("a valid room id"));
    let main = query
        .read_untracked()
        .get("universe")
        .filter(|u| u.parse::<UniverseId>().is_ok());
    let back = format!(
        "/r/{room}{}",
        main.as_ref()
            .map(|u| format!("?universe={u}"))
            .unwrap_or_default()
    );
    let watch_base = StoredValue::new((room.to_string(), main));

    let (me, set_me) = signal(None::<(String, String)>);
    let (peers, set_peers) = signal(None::<Peers>);
    let (load_error, set_load_error) = signal(None::<String>);
    let (address, set_address) = signal(String::new());
    let (error, set_error) = signal(None::<String>);
    let (note, set_note) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let (copied, set_copied) = signal(false);

    spawn_local(async move {
        match api::this_peer().await {
            Ok(who) => set_me.set(Some(who)),
            Err(e) => set_load_error.set(Some(format!("Cannot reach the peer: {e}"))),
        }
    });
    let load = move || {
        spawn_local(async move {
            match api::peers().await {
                Ok(fresh) => {
                    set_load_error.set(None);
                    set_peers.maybe_update(|p| {
                        let changed = p.as_ref() != Some(&fresh);
                        *p = Some(fresh);
                        changed
                    });
                }
                Err(e) => set_load_error.set(Some(format!("Cannot load the links: {e}"))),
            }
        })
    };
    load();
    let poll = Interval::new(POLL_MS, load);
    let poll = StoredValue::new_local(Some(poll));
    on_cleanup(move || poll.update_value(|p| drop(p.take())));

    let connect = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let wanted = address.get_untracked().trim().to_owned();
        if wanted.is_empty() {
            set_error.set(Some(
                "Enter the other peer's address, like ws://192.168.1.21:8080.".into(),
            ));
            return;
        }
        if busy.get_untracked() {
            return;
        }
        set_busy.set(true);
        set_error.set(None);
        set_note.set(None);
        spawn_local(async move {
            let answer = api::add_peer(&wanted).await;
            set_busy.set(false);
            match answer {
                Ok(dialled) => {
                    set_address.set(String::new());
                    set_note.set(Some(format!("Dialling {dialled}…")));
                    load();
                }
                Err(e) => set_error.set(Some(e.message)),
            }
        });
    };
    let copy = move |_| {
        copy_to_clipboard(&my_address(peers.get_untracked().as_ref()));
        set_copied.set(true);
    };

    let this_peer = move || {
        let (name, id) = me.get().unwrap_or_default();
        view! {
            <p class="me-peer">
                <strong data-testid="this-peer-name">{name}</strong>
                <span class="meta" data-testid="this-peer-id" title=id.clone()>{format!(" · id {}", short(&id))}</span>
            </p>
        }
    };
    // The lists are written as HTML text (every peer-supplied string escaped), redrawn only
    // when the answer changes: as Leptos views they would cost some 30 KB of wasm.
    let linked = move || {
        let (room, main) = watch_base.get_value();
        list_html(peers.get().as_ref(), &room, main.as_deref())
    };

    view! {
        <main class="page narrow peers" data-testid="peers-page">
            <nav class="crumbs">
                <A href="/">"Lobby"</A>" · "<a href=back>"Back to the room"</a>
            </nav>
            <h1>"Peers"</h1>
            <section class="panel">
                <h2>"This peer"</h2>
                {this_peer}
                <p class="address">
                    <span class="meta">"My address "</span>
                    <code data-testid="my-address">{move || my_address(peers.get().as_ref())}</code>
                    <button type="button" data-testid="copy-address" on:click=copy>
                        {move || if copied.get() { "Copied!" } else { "Copy" }}
                    </button>
                </p>
                <p class="hint">"Give this address to other peers. It is the address you opened this page with: if it says 127.0.0.1, use one of the LAN links the peer printed at start-up instead."</p>
            </section>
            <form class="join" on:submit=connect>
                <label class="field">
                    <span>"Connect to a peer"</span>
                    <input data-testid="peer-address" placeholder="ws://192.168.1.21:8080" prop:value=address
                        on:input=move |ev| { set_error.set(None); set_address.set(event_target_value(&ev)) } />
                </label>
                <button type="submit" data-testid="connect-peer" disabled=busy>"Connect"</button>
            </form>
            {move || error.get().map(|e| view! { <p class="error" data-testid="peer-error" role="alert">{e}</p> })}
            {move || note.get().map(|n| view! { <p class="hint" data-testid="peer-note">{n}</p> })}
            {move || load_error.get().map(|e| view! { <p class="error" data-testid="peers-error">{e}</p> })}
            <section class="linked">
                <h2>"Linked peers"</h2>
                <div inner_html=linked></div>
            </section>
            <PassagesPanel peers=peers />
        </main>
    }
}

/// Text for HTML element content and double-quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The linked peers (each with its universes and a "Watch through a portal" link into
/// `room`, showing `main` if given) and the dialled addresses, as HTML.
fn list_html(peers: Option<&Peers>, room: &str, main: Option<&str>) -> String {
    use std::fmt::Write;
    let Some(peers) = peers else {
        return r#"<ul class="peer-list" data-testid="peer-list" data-state="loading"></ul>"#
            .into();
    };
    let main = main
        .map(|m| format!("&amp;universe={}", esc(m)))
        .unwrap_or_default();
    let mut h =
        String::from(r#"<ul class="peer-list" data-testid="peer-list" data-state="ready">"#);
    for link in &peers.links {
        let how = match link.direction.as_str() {
            "outbound" => "we dialled it",
            "inbound" => "it dialled us",
            _ => "linked",
        };
        let address = link
            .address
            .as_deref()
            .map(|a| format!(" · {}", esc(a)))
            .unwrap_or_default();
        let name = esc(&link.name);
        let _ = write!(
            h,
            r#"<li class="peer" data-testid="peer-{name}" data-peer-id="{id}" data-direction="{dir}" data-status="connected"><div class="about"><strong class="name">{name}</strong><span class="status ok">connected</span><span class="meta">id {short} · {how}{address}</span></div><ul class="universes">"#,
            id = esc(&link.peer_id),
            dir = esc(&link.direction),
            short = short(&link.peer_id),
        );
        for u in &link.universes {
            let (id, title) = (esc(&u.id), esc(&u.name));
            let _ = write!(
                h,
                r#"<li class="remote-universe" data-testid="remote-universe-{name}/{title}" data-universe="{id}"><span class="name">{title}</span><span class="meta">{n} entities</span><a class="button" data-testid="watch-portal" href="/r/{room}?portal={id}{main}">Watch through a portal</a></li>"#,
                n = u.entities,
                room = esc(room),
            );
        }
        if link.universes.is_empty() {
            h.push_str(r#"<li class="meta">It shares no universes.</li>"#);
        }
        h.push_str("</ul></li>");
    }
    h.push_str("</ul>");
    if peers.links.is_empty() {
        let _ = write!(
            h,
            r#"<p class="hint" data-testid="no-peers">No linked peers yet: connect to one above, or start another peer with <code>--peer {}</code>.</p>"#,
            esc(&my_address(Some(peers)))
        );
    }
    h.push_str(r#"<h2>Dialled addresses</h2><ul class="dial-list" data-testid="dial-list">"#);
    for d in &peers.dialled {
        let class = match d.state.as_str() {
            "connected" => "ok",
            "retrying" => "bad",
            _ => "warn",
        };
        let peer = d
            .peer_id
            .as_deref()
            .map(|p| format!(" · id {}", short(p)))
            .unwrap_or_default();
        let error = d
            .last_error
            .as_deref()
            .map(|e| {
                format!(
                    r#"<span class="error" data-testid="dial-error">{}</span>"#,
                    esc(e)
                )
            })
            .unwrap_or_default();
        let _ = write!(
            h,
            r#"<li class="dial" data-testid="dial" data-address="{address}" data-state="{state}"><code>{address}</code><span class="status {class}">{state}</span><span class="meta">{peer}</span>{error}</li>"#,
            address = esc(&d.address),
            state = esc(&d.state),
        );
    }
    h.push_str("</ul>");
    h
}
