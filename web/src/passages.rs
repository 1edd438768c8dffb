//! The passages section of the peers page: open a passage from a universe here to one of a
//! linked peer (view mode, interaction, portal rate, the owner's password), the passages
//! with their state and health (closable), and the passage policy of this peer's universes
//! (access and password). Polls `GET /api/passages` every 2 s while shown.

use gloo_timers::callback::Interval;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, PassageAsk, PassageInfo, Peers};

/// How often the passages are reloaded (ms).
const POLL_MS: u32 = 2_000;

/// Local universes and the linked peers' universes, as `(id, label)`.
fn names(local: &[(String, String)], peers: Option<&Peers>) -> Vec<(String, String)> {
    let mut all = local.to_vec();
    for link in peers.map(|p| p.links.as_slice()).unwrap_or_default() {
        all.extend(
            link.universes
                .iter()
                .map(|u| (u.id.clone(), format!("{}/{}", link.name, u.name))),
        );
    }
    all
}

fn label(names: &[(String, String)], id: &str) -> String {
    names
        .iter()
        .find(|(i, _)| i == id)
        .map_or_else(|| id.chars().take(8).collect(), |(_, n)| n.clone())
}

fn select(
    testid: &'static str,
    options: Vec<(String, String)>,
    set: WriteSignal<String>,
) -> impl IntoView {
    view! {
        <select data-testid=testid on:change=move |ev| set.set(event_target_value(&ev))>
            <option value="">"—"</option>
            {options.into_iter().map(|(v, l)| view! { <option value=v>{l}</option> }).collect_view()}
        </select>
    }
}

/// The passages section; `peers` is the peers page's latest `/api/peers`.
#[component]
pub fn PassagesPanel(peers: ReadSignal<Option<Peers>>) -> impl IntoView {
    let (local, set_local) = signal(Vec::<(String, String)>::new());
    let (list, set_list) = signal(Vec::<PassageInfo>::new());
    let (from, set_from) = signal(String::new());
    let (to, set_to) = signal(String::new());
    let (view_mode, set_view_mode) = signal("observe".to_owned());
    let (interaction, set_interaction) = signal("none".to_owned());
    let (sync_hz, set_sync_hz) = signal("20".to_owned());
    let (password, set_password) = signal(String::new());
    let (policy_universe, set_policy_universe) = signal(String::new());
    let (policy_access, set_policy_access) = signal("shared".to_owned());
    let (policy_password, set_policy_password) = signal(String::new());
    let (message, set_message) = signal(None::<(bool, String)>);

    spawn_local(async move {
        if let Ok(l) = api::local_universes().await {
            set_local.set(l);
        }
    });
    let load = move || {
        spawn_local(async move {
            if let Ok(fresh) = api::passages().await {
                set_list.maybe_update(|l| {
                    let changed = *l != fresh;
                    *l = fresh;
                    changed
                });
            }
        })
    };
    load();
    let poll = StoredValue::new_local(Some(Interval::new(POLL_MS, load)));
    on_cleanup(move || poll.update_value(|p| drop(p.take())));

    let open = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let ask = PassageAsk {
            from: from.get_untracked(),
            to: to.get_untracked(),
            view: view_mode.get_untracked(),
            interaction: interaction.get_untracked(),
            sync_hz: sync_hz.get_untracked().trim().parse().unwrap_or(0),
            password: password.get_untracked(),
        };
        if ask.from.is_empty() || ask.to.is_empty() {
            set_message.set(Some((
                false,
                "Pick a universe here and one of a linked peer.".into(),
            )));
            return;
        }
        spawn_local(async move {
            match api::open_passage(&ask).await {
                Ok(_) => {
                    set_message.set(Some((true, "Asked the owner; see its state below.".into())));
                    load();
                }
                Err(e) => set_message.set(Some((false, e.message))),
            }
        });
    };
    let save_policy = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (universe, access, pw) = (
            policy_universe.get_untracked(),
            policy_access.get_untracked(),
            policy_password.get_untracked(),
        );
        if universe.is_empty() {
            set_message.set(Some((false, "Pick one of your universes.".into())));
            return;
        }
        spawn_local(async move {
            match api::set_passage_policy(&universe, &access, &pw).await {
                Ok(()) => set_message.set(Some((true, "Policy saved.".into()))),
                Err(e) => set_message.set(Some((false, e.message))),
            }
        });
    };
    let remote = move || names(&[], peers.get().as_ref());
    let rows = move || {
        let all = names(&local.get(), peers.get().as_ref());
        list.get()
            .into_iter()
            .map(|p| {
                let id = p.id.clone();
                let close = move |_| {
                    let id = id.clone();
                    spawn_local(async move {
                        if let Err(e) = api::close_passage(&id).await {
                            set_message.set(Some((false, e.message)));
                        }
                        load();
                    });
                };
                let waiting = p.role == "owner" && p.state == "pending_approval";
                let approve = {
                    let id = p.id.clone();
                    move |_| {
                        let id = id.clone();
                        spawn_local(async move {
                            if let Err(e) = api::decide_passage(&id, true).await {
                                set_message.set(Some((false, e.message)));
                            }
                            load();
                        });
                    }
                };
                let deny = {
                    let id = p.id.clone();
                    move |_| {
                        let id = id.clone();
                        spawn_local(async move {
                            if let Err(e) = api::decide_passage(&id, false).await {
                                set_message.set(Some((false, e.message)));
                            }
                            load();
                        });
                    }
                };
                let health = format!("width: {:.0}%", p.health.clamp(0.0, 1.0) * 100.0);
                let open = matches!(p.state.as_str(), "connected" | "degraded" | "connecting" | "pending_approval");
                let detail = match (&p.error, p.score, &p.view) {
                    (Some(e), _, _) => e.clone(),
                    (None, Some(score), view) => format!("score {score:.2} · view {}", view.clone().unwrap_or_else(|| "none".into())),
                    _ => String::new(),
                };
                view! {
                    <li class="passage" data-testid="passage" data-state=p.state.clone() data-role=p.role.clone()>
                        <span class="name">{format!("{} → {}", label(&all, &p.from_universe), label(&all, &p.to_universe))}</span>
                        <span class="meta">{format!("{} · {}", p.role, p.state.replace('_', " "))}</span>
                        <span class="health" title="health"><span class="bar" style=health></span></span>
                        <span class="meta">{detail}</span>
                        <Show when=move || open>
                            <button type="button" data-testid="close-passage" on:click=close.clone()>"Close"</button>
                        </Show>
                        <Show when=move || waiting>
                            <button type="button" data-testid="approve-passage" on:click=approve.clone()>"Approve"</button>
                            <button type="button" data-testid="deny-passage" on:click=deny.clone()>"Decline"</button>
                        </Show>
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <section class="passages" data-testid="passages">
            <h2>"Passages"</h2>
            <form class="passage-form" on:submit=open>
                <label class="field"><span>"From (here)"</span>{move || select("passage-from", local.get(), set_from)}</label>
                <label class="field"><span>"To (a linked peer)"</span>{move || select("passage-to", remote(), set_to)}</label>
                <label class="field"><span>"View"</span>
                    <select data-testid="passage-view" on:change=move |ev| set_view_mode.set(event_target_value(&ev))>
                        <option value="observe">"observe"</option>
                        <option value="participate">"participate"</option>
                        <option value="none">"none"</option>
                    </select>
                </label>
                <label class="field"><span>"Interaction"</span>
                    <select data-testid="passage-interaction" on:change=move |ev| set_interaction.set(event_target_value(&ev))>
                        <option value="none">"none"</option>
                        <option value="limited">"limited"</option>
                        <option value="full">"full"</option>
                        <option value="collaborative">"collaborative"</option>
                    </select>
                </label>
                <label class="field"><span>"Portal frames/s"</span>
                    <input type="number" min="1" max="60" data-testid="passage-sync" prop:value=sync_hz
                        on:input=move |ev| set_sync_hz.set(event_target_value(&ev)) />
                </label>
                <label class="field"><span>"Password (if the owner asks)"</span>
                    <input type="password" data-testid="passage-password" prop:value=password
                        on:input=move |ev| set_password.set(event_target_value(&ev)) />
                </label>
                <button type="submit" data-testid="open-passage">"Open passage"</button>
            </form>
            {move || message.get().map(|(ok, m)| view! {
                <p class=if ok { "hint" } else { "error" } data-testid="passage-message">{m}</p>
            })}
            <ul class="passage-list" data-testid="passage-list">{rows}</ul>
            <h3>"Who may open passages into my universes"</h3>
            <form class="policy-form" on:submit=save_policy>
                <label class="field"><span>"Universe"</span>{move || select("policy-universe", local.get(), set_policy_universe)}</label>
                <label class="field"><span>"Access"</span>
                    <select data-testid="policy-access" on:change=move |ev| set_policy_access.set(event_target_value(&ev))>
                        <option value="shared">"shared"</option>
                        <option value="public">"public"</option>
                        <option value="private">"private (password needed)"</option>
                    </select>
                </label>
                <label class="field"><span>"Password"</span>
                    <input type="password" data-testid="policy-password" prop:value=policy_password
                        on:input=move |ev| set_policy_password.set(event_target_value(&ev)) />
                </label>
                <button type="submit" data-testid="save-policy">"Save policy"</button>
            </form>
        </section>
    }
}
