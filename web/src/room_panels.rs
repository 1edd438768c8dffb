//! The room's side panels: members, chat, and sharing (link, QR code, invites).

use leptos::prelude::*;
use multiverse_core::ids::MessageId;
use multiverse_core::room::{AccessPolicy, CursorPosition, Presence};
use multiverse_core::wire::ClientMessage;

use crate::room_model::RoomSnapshot;

/// Who is in the room, with presence, colour and a speaking-indicator slot.
#[component]
pub fn MembersPanel(
    /// The room state.
    room: ReadSignal<RoomSnapshot>,
    /// Members whose voice is lit as speaking.
    #[prop(into)]
    speaking: Signal<std::collections::BTreeSet<u64>>,
) -> impl IntoView {
    view! {
        <section class="panel members" data-testid="members">
            <h2>"Here now"</h2>
            <ul>
                <For each=move || room.get().members key=|m| (m.member, m.presence, m.name.clone()) let:m>
                    <li data-testid="member" data-member=m.member.to_string() data-name=m.name.clone()
                        data-presence=if m.presence == Presence::Active { "active" } else { "away" }>
                        <span class="presence" class:away=m.presence == Presence::Away></span>
                        <span class="swatch" style=format!("background:#{:06x}", m.colour)></span>
                        <span class="name">{m.name.clone()}</span>
                        {m.owner.then(|| view! { <span class="tag">"owner"</span> })}
                        {(Some(m.member) == room.get_untracked().you).then(|| view! { <span class="tag">"you"</span> })}
                        <span class="speaking" data-testid="speaking" aria-hidden="true"
                            class:on=move || speaking.with(|s| s.contains(&m.member))
                            data-speaking=move || speaking.with(|s| s.contains(&m.member)).to_string()
                            title="speaking"></span>
                    </li>
                </For>
            </ul>
        </section>
    }
}

/// The chat: history in server order, our pending messages marked, and the input.
#[component]
pub fn ChatPanel(
    /// The room state.
    room: ReadSignal<RoomSnapshot>,
    /// Sends a message (it is kept until acknowledged and resent after reconnects).
    on_send: Callback<String>,
) -> impl IntoView {
    let (draft, set_draft) = signal(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = draft.get_untracked().trim().to_owned();
        if !text.is_empty() {
            on_send.run(text);
            set_draft.set(String::new());
        }
    };
    view! {
        <section class="panel chat" data-testid="chat">
            <h2>"Chat"</h2>
            <ol class="lines">
                <For each=move || room.get().lines key=|l| (l.id, l.seq) let:l>
                    <li data-testid="chat-message" data-state=if l.seq.is_some() { "sent" } else { "pending" }
                        data-seq=l.seq.map(|s| s.to_string()).unwrap_or_default()>
                        <span class="who" style=format!("color:#{:06x}", l.colour)>{l.name.clone()}</span>
                        <span class="text">{l.text.clone()}</span>
                        {l.seq.is_none().then(|| view! { <span class="tag">"sending…"</span> })}
                    </li>
                </For>
            </ol>
            <form on:submit=submit>
                <input data-testid="chat-input" placeholder="Say something" maxlength="500" prop:value=draft
                    on:input=move |ev| set_draft.set(event_target_value(&ev)) />
                <button type="submit" data-testid="chat-send">"Send"</button>
            </form>
        </section>
    }
}

/// Copy link, QR code for phones, and (for the owner) privacy and invites.
#[component]
pub fn SharePanel(
    /// The room state.
    room: ReadSignal<RoomSnapshot>,
    /// Sends a request to the peer.
    send: Callback<ClientMessage>,
) -> impl IntoView {
    let link = page_link(None);
    let (copied, set_copied) = signal(false);
    let copy = {
        let link = link.clone();
        move |_| {
            copy_to_clipboard(&link);
            set_copied.set(true);
        }
    };
    let qr = qr_svg(&link);
    let toggle_private = move |_| {
        let private = !room.get_untracked().private;
        let access = if private {
            AccessPolicy::Private
        } else {
            AccessPolicy::Shared
        };
        send.run(ClientMessage::ConfigureRoom {
            access,
            max_players: 16,
            multiplayer: true,
        });
    };
    view! {
        <section class="panel share" data-testid="share">
            <h2>"Invite people"</h2>
            <p class="link"><code data-testid="room-link">{link.clone()}</code></p>
            <button data-testid="copy-link" on:click=copy>{move || if copied.get() { "Copied!" } else { "Copy room link" }}</button>
            <details>
                <summary>"QR code for phones"</summary>
                <div class="qr" data-testid="qr" inner_html=qr></div>
            </details>
            <Show when=move || room.get().owner>
                <label class="private">
                    <input type="checkbox" data-testid="private" prop:checked=move || room.get().private on:change=toggle_private />
                    " Private (invite only)"
                </label>
                <Show when=move || room.get().private>
                    <button data-testid="create-invite" on:click=move |_| send.run(ClientMessage::CreateInvite)>"Create invite link"</button>
                    <ul class="invites">
                        <For each=move || room.get().invites key=|t| t.clone() let:token>
                            <li>
                                <code data-testid="invite-link">{page_link(Some(&token))}</code>
                                <button on:click=move |_| send.run(ClientMessage::RevokeInvite { token: token.clone() })>"Revoke"</button>
                            </li>
                        </For>
                    </ul>
                </Show>
            </Show>
        </section>
    }
}

/// Names of the others' cursors, for screen readers and tests; world cursors are drawn on the
/// canvas, viewport ones as markers over the page.
#[component]
pub fn CursorList(
    /// The room state.
    room: ReadSignal<RoomSnapshot>,
) -> impl IntoView {
    let on_page = move || {
        let all = room.get().cursors;
        all.into_iter()
            .filter(|(_, p)| matches!(p, CursorPosition::Viewport { .. }))
            .collect::<Vec<_>>()
    };
    let place = |p: &CursorPosition, colour: u32| {
        let (x, y) = match p {
            CursorPosition::Viewport { x, y } => (x * 100.0, y * 100.0),
            CursorPosition::World { .. } => (0.0, 0.0),
        };
        format!("left:{x}%;top:{y}%;color:#{colour:06x}")
    };
    view! {
        <ul class="visually-hidden" data-testid="cursors">
            <For each=move || room.get().cursors key=|(m, p)| (m.member, format!("{p:?}")) let:c>
                <li data-testid="cursor" data-member=c.0.member.to_string() data-name=c.0.name.clone()
                    data-x=coords(&c.1).0 data-y=coords(&c.1).1>
                    {format!("{} is pointing", c.0.name)}
                </li>
            </For>
        </ul>
        <For each=on_page key=|(m, p)| (m.member, format!("{p:?}")) let:c>
            <div class="page-cursor" style=place(&c.1, c.0.colour)>"➤ " {c.0.name.clone()}</div>
        </For>
    }
}

fn coords(p: &CursorPosition) -> (String, String) {
    match p {
        CursorPosition::World { at, .. } => (format!("{:.1}", at.x), format!("{:.1}", at.y)),
        CursorPosition::Viewport { x, y } => (format!("{x:.3}"), format!("{y:.3}")),
    }
}

/// This page's room link without its query, optionally with an invite.
fn page_link(invite: Option<&str>) -> String {
    let location = web_sys::window().map(|w| w.location());
    let origin = location
        .as_ref()
        .and_then(|l| l.origin().ok())
        .unwrap_or_default();
    let path = location
        .as_ref()
        .and_then(|l| l.pathname().ok())
        .unwrap_or_default();
    match invite {
        Some(token) => format!("{origin}{path}?invite={token}"),
        None => format!("{origin}{path}"),
    }
}

/// `navigator.clipboard.writeText(text)`, if the browser allows it here.
pub fn copy_to_clipboard(text: &str) {
    use wasm_bindgen::JsCast;
    let Some(navigator) = web_sys::window().map(|w| w.navigator()) else {
        return;
    };
    let clipboard = js_sys::Reflect::get(&navigator, &"clipboard".into()).ok();
    let write = clipboard
        .as_ref()
        .and_then(|c| js_sys::Reflect::get(c, &"writeText".into()).ok());
    if let (Some(c), Some(f)) = (
        clipboard,
        write.and_then(|f| f.dyn_into::<js_sys::Function>().ok()),
    ) {
        let _ = f.call1(&c, &text.into());
    }
}

fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(180, 180)
            .build(),
        Err(_) => String::from("(link too long for a QR code)"),
    }
}

/// A fresh message id from the browser's random UUID.
pub fn new_message_id() -> MessageId {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .and_then(|c| c.random_uuid().parse().ok())
        .unwrap_or_else(|| MessageId::from_u128((js_sys::Math::random() * 2f64.powi(64)) as u128))
}
