//! `hearth up`: the daemon. It opens the store, starts the node, serves the local API on
//! 127.0.0.1 until Ctrl-C, SIGTERM or `POST /v1/shutdown`, then stops the node cleanly.
//! `hearth init` also lives here: it creates the profile through the node.

pub mod error;
pub mod guard;
pub mod idempotency;
pub mod limits;
pub mod node;
pub mod routes;
pub mod session;
pub mod vault;
pub mod views;
pub mod web;

#[cfg(test)]
mod test_nodes;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod web_tests;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hearth_node::libp2p::Multiaddr;
use hearth_node::{Client, NodeConfig, NodeEvent};
use hearth_proto::CircleId;
use hearth_store::{KdfParams, Passphrase, SledStore};
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use self::guard::Guard;
use self::node::node_error;
use self::routes::{AppState, router};
use self::session::Sessions;
use self::vault::{Locker, Vault};
use self::web::{Web, with_web};
use crate::api::ErrorCode;
use crate::client::ApiClient;
use crate::failure::Failure;
use crate::paths::{DaemonInfo, DataDir};

/// How `hearth up` runs the node.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The local API's port on 127.0.0.1 (0: any free port).
    pub api_port: u16,
    /// Addresses the node listens on (empty: the node's defaults).
    pub listen: Vec<Multiaddr>,
    /// LAN discovery.
    pub mdns: bool,
    /// Peers to dial at start.
    pub bootstrap: Vec<Multiaddr>,
    /// Relays to listen through.
    pub relays: Vec<Multiaddr>,
    /// Relay for peers that share a circle.
    pub relay_server: bool,
    /// Port mapping on the home router (UPnP).
    pub upnp: bool,
    /// Address ranges treated as public (simulated internets).
    pub public_ranges: Vec<hearth_node::ipnet::IpNet>,
    /// The passphrase KDF of a profile created in the web app (first run).
    pub kdf: KdfParams,
}

/// A failure of the node, as a failure of the command.
pub(crate) fn node_failure(e: hearth_node::NodeError) -> Failure {
    let api = node_error(e);
    let mut f = Failure::new(api.code, api.message);
    if api.code == ErrorCode::WrongPassphrase {
        f.message =
            "wrong passphrase: the profile was not opened and nothing was changed".to_owned();
    }
    f
}

/// `hearth init`: creates the profile (the encrypted store and the device's network key) and
/// the API token. Returns the device's peer id.
pub async fn init(
    dir: &DataDir,
    passphrase: Passphrase,
    kdf: KdfParams,
) -> Result<String, Failure> {
    dir.ensure()?;
    if SledStore::exists(dir.store_dir()) || dir.has_profile() {
        return Err(Failure::new(
            ErrorCode::ProfileExists,
            format!("{} already holds a Hearth profile", dir.root().display()),
        )
        .hint("start it with `hearth up`, or choose another directory with --data-dir"));
    }
    let mut config = NodeConfig::new(dir.store_dir(), passphrase);
    config.kdf = kdf;
    config.listen = Vec::new();
    config.mdns = false;
    let (client, task) = hearth_node::spawn(config).await.map_err(node_failure)?;
    let peer_id = client.peer_id().to_string();
    client.shutdown().await.map_err(node_failure)?;
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    dir.ensure_token()?;
    Ok(peer_id)
}

/// `hearth up`: runs the daemon until it is told to stop. With a passphrase it opens the
/// profile at once; without one it starts locked and the web app asks for it (or creates the
/// profile on a first run).
pub async fn up(
    dir: &DataDir,
    passphrase: Option<Passphrase>,
    options: UpOptions,
) -> Result<(), Failure> {
    if passphrase.is_some() && !SledStore::exists(dir.store_dir()) {
        return Err(Failure::new(
            ErrorCode::NoProfile,
            format!("there is no Hearth profile in {}", dir.root().display()),
        )
        .hint("create one with `hearth init`"));
    }
    if let Some(info) = dir.read_daemon_info()?
        && let Ok(client) = ApiClient::connect(dir)
        && client.health_quick().await.is_ok()
    {
        return Err(Failure::new(
            ErrorCode::DaemonRunning,
            format!(
                "a daemon is already running for {} (pid {}, port {})",
                dir.root().display(),
                info.pid,
                info.port
            ),
        )
        .hint("stop it with `hearth down` or Ctrl-C in its terminal"));
    }
    dir.ensure()?;
    let token = dir.ensure_token()?;

    let template = {
        let options = options.clone();
        let store = dir.store_dir();
        move |passphrase: Passphrase| {
            let mut config = NodeConfig::new(store.clone(), passphrase);
            if !options.listen.is_empty() {
                config.listen = options.listen.clone();
            }
            config.mdns = options.mdns;
            config.bootstrap = options.bootstrap.clone();
            config.relays = options.relays.clone();
            config.relay_server = options.relay_server;
            config.upnp = options.upnp;
            config.public_ranges = options.public_ranges.clone();
            config
        }
    };
    let vault = Arc::new(Vault::new(dir.clone(), options.kdf, template));
    if let Some(passphrase) = passphrase {
        eprintln!("Opening the profile in {} …", dir.root().display());
        vault.unlock(passphrase).await.map_err(|e| {
            let mut f = Failure::new(e.code, e.message);
            if e.code == ErrorCode::WrongPassphrase {
                f.message = "wrong passphrase: the profile was not opened and nothing was changed"
                    .to_owned();
            }
            f
        })?;
    }

    let listener =
        match TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, options.api_port))).await {
            Ok(l) => l,
            Err(e) => {
                vault.lock().await;
                return Err(Failure::internal(format!(
                    "could not open the local API on 127.0.0.1:{}: {e}",
                    options.api_port
                )));
            }
        };
    let port = listener.local_addr()?.port();
    let pid = std::process::id();
    dir.write_daemon_info(&DaemonInfo {
        port,
        pid,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })?;
    let sessions = Arc::new(Sessions::new(port));
    let link = sessions.login_link(std::time::Instant::now());

    let (stop, _) = watch::channel(false);
    tokio::spawn(watch_signals(stop.clone()));

    let node = vault.try_node().await;
    // The banner is assembled first and written at once: holding stderr's lock across an
    // `.await` would block the node's event loop on its next log line (a deadlock, since the
    // status asked for below needs that loop).
    let mut err = String::new();
    let _ = writeln!(err, "Hearth is up.");
    if let Some(node) = &node {
        // Give the node a moment to report its listen addresses.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = writeln!(err, "  peer id:   {}", node.client().peer_id());
        if let Ok(s) = node.client().status().await {
            for a in &s.listen_addrs {
                let _ = writeln!(err, "  listening: {a}");
            }
        }
        tokio::spawn(report_catch_up(node.client().clone()));
    } else {
        let _ = writeln!(err, "  locked:    the web app asks for the passphrase");
    }
    drop(node);
    let _ = writeln!(
        err,
        "  local API: http://127.0.0.1:{port} (token in {})",
        dir.token_file().display()
    );
    let _ = writeln!(err, "  web app:   {link}");
    let _ = writeln!(
        err,
        "             (a one-time login link; `hearth open` makes a new one)"
    );
    let _ = writeln!(err, "Press Ctrl-C to stop.");
    let _ = std::io::stderr().lock().write_all(err.as_bytes());

    let web = Web {
        sessions,
        locker: vault.clone(),
    };
    let served = serve(vault.clone(), listener, token, stop, Some(web)).await;
    eprintln!("Stopping: saving every circle and closing the store …");
    vault.lock().await;
    dir.remove_daemon_info(pid);
    eprintln!("Hearth stopped.");
    served.map_err(|e| Failure::internal(format!("the local API failed: {e}")))
}

/// Serves the API (and, with `web`, the web app) on `listener` until `stop` turns true (or a signal arrives), within the
/// limits of [`limits`]: at most [`limits::MAX_CONNECTIONS`] connections at once (the rest wait
/// in the accept queue) and [`limits::MAX_REQUESTS`] requests handled at once, headers within [`limits::HEADER_TIMEOUT`], bodies within
/// [`limits::BODY_TIMEOUT`] and [`limits::MAX_BODY_BYTES`].
pub async fn serve(
    vault: Arc<Vault>,
    listener: TcpListener,
    token: String,
    stop: watch::Sender<bool>,
    web: Option<Web>,
) -> std::io::Result<()> {
    let port = listener.local_addr()?.port();
    let mut guard_state = Guard::new(port, token);
    if let Some(web) = &web {
        guard_state = guard_state.with_sessions(web.sessions.clone());
    }
    let app = router(
        AppState {
            vault,
            stop: stop.clone(),
        },
        guard_state.clone(),
    );
    let app = match web {
        Some(web) => with_web(app, guard_state, web),
        None => app,
    };
    // The limits and the idempotency scope cover the web app's routes too.
    let turns = Arc::new(tokio::sync::Semaphore::new(limits::MAX_REQUESTS));
    let app = app
        .layer(axum::middleware::from_fn(idempotency::scope_key))
        .layer(axum::middleware::from_fn(limits::limit_request))
        .layer(axum::middleware::from_fn(move |request, next| {
            limits::one_turn(turns.clone(), request, next)
        }));
    let permits = Arc::new(tokio::sync::Semaphore::new(limits::MAX_CONNECTIONS));
    let mut stopped = stop.subscribe();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = until_stopped(&mut stopped) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "the local API could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = until_stopped(&mut stopped) => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stop_conn = stop.subscribe();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits::HEADER_TIMEOUT)
                .max_buf_size(limits::MAX_CONNECTION_BUFFER)
                // Above our own limit, so our JSON 431 answers first.
                .max_headers(limits::MAX_HEADERS * 4);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "a local API connection ended with an error");
                    }
                }
                () = until_stopped(&mut stop_conn) => {
                    // Let the request in progress finish, then close.
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    // Open requests get a few seconds to finish; event streams end at once.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        permits.acquire_many(limits::MAX_CONNECTIONS as u32),
    )
    .await;
    Ok(())
}

/// Returns once `stop` is `true` (holding no borrow of the channel afterwards).
async fn until_stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|v| *v).await;
}

/// Turns Ctrl-C and SIGTERM into `stop`.
async fn watch_signals(stop: watch::Sender<bool>) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM");
            None
        }
    };
    let term_recv = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let mut stopped = stop.subscribe();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: stopping"),
        _ = term_recv => tracing::info!("SIGTERM: stopping"),
        _ = stopped.wait_for(|v| *v) => {}
    }
    let _ = stop.send(true);
}

/// Prints catch-up progress and membership news on the daemon's stderr.
async fn report_catch_up(client: Client) {
    let mut events = client.events();
    let mut names: HashMap<CircleId, String> = HashMap::new();
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        let circle = match &event {
            NodeEvent::SyncProgress { circle, .. }
            | NodeEvent::Joined { circle, .. }
            | NodeEvent::NoLongerMember { circle, .. }
            | NodeEvent::GuidelinesToAccept { circle, .. }
            | NodeEvent::RetentionEnforced { circle, .. } => *circle,
            _ => continue,
        };
        if !names.contains_key(&circle)
            && let Ok(list) = client.circles().await
        {
            names.extend(list.into_iter().map(|c| (c.circle, c.name)));
        }
        let name = names
            .get(&circle)
            .cloned()
            .unwrap_or_else(|| circle.short());
        match event {
            NodeEvent::SyncProgress {
                accepted,
                total,
                more,
                ..
            } if accepted > 0 => {
                if more {
                    eprintln!("Catching up in `{name}`: {total} entries so far …");
                } else {
                    eprintln!("Caught up in `{name}`: {total} new entries.");
                }
            }
            NodeEvent::Joined { .. } => eprintln!("Joined `{name}`."),
            NodeEvent::GuidelinesToAccept { version, .. } => eprintln!(
                "The guidelines of `{name}` changed to version {version}: read and accept them with `hearth guidelines accept \"{name}\"`."
            ),
            NodeEvent::RetentionEnforced { entries, keys, .. } => eprintln!(
                "Disappearing messages in `{name}`: deleted {entries} expired entries and {keys} old keys from this device."
            ),
            NodeEvent::NoLongerMember { removed, .. } => {
                if removed {
                    eprintln!("You were removed from `{name}`: nothing new will arrive there.");
                } else {
                    eprintln!("You left `{name}`.");
                }
            }
            _ => {}
        }
    }
}
