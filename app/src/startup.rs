//! `Application::build`: the one place where Parley is wired together, used by `main`
//! and by the integration tests alike.

use crate::actors::Conversations;
use crate::api::{self, ApiContext};
use crate::clock::SharedClock;
use crate::cluster::inbox::spawn_on_leader;
use crate::cluster::{self, Cluster};
use crate::config::{ChannelSettings, PluginSettings, Settings};
use crate::conversation::{ActorDeps, ConversationRegistry, SlaActors};
use crate::events::EventBus;
use crate::ingest::{self, Intake, dispatcher::Dispatcher};
use crate::node::deliver::{ClusterDeliver, Forwarding};
use crate::outbound::OutboxWorker;
use crate::plugins::{Connectors, PluginRegistry, PluginRuntime, PluginWatcher, WorldKind};
use crate::policy::loader as reload;
use crate::routing::Routing;
use crate::routing::noise::NoiseState;
use crate::routing::presence::PresenceBoard;
use crate::routing::router::{AttachRegistry, RouterActor};
use crate::sla::deadlines::{AttachDispatcher, ScheduleMany, SlaClock, SlaDispatcher};
use crate::sla::escalation::{AttachEscalation, EscalationActor};
use crate::store::Store;
use actix::Actor;
use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use tokio::sync::Notify;

/// How often a cluster's leader reads the outbox: replies are queued by the owners of
/// their cases, on any node, without waking it.
const CLUSTER_OUTBOX_POLL: std::time::Duration = std::time::Duration::from_millis(200);

pub struct Application {
    port: u16,
    /// This node's shard leases, on a cluster node.
    pub cluster: Option<Arc<Cluster>>,
    server: Server,
    metrics_port: Option<u16>,
    /// `/metrics` on `[http] metrics_bind`, when set.
    metrics_server: Option<Server>,
    pub store: Store,
    pub registry: ConversationRegistry,
    pub events: EventBus,
    pub routing: Arc<Routing>,
    /// The loaded plugins; loaded, replaced and removed at run time too.
    pub plugins: Arc<PluginRegistry>,
    /// The CRM and order connectors the configuration names, for the conversation flow.
    pub connectors: Connectors,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

/// Starts the plugin host: the runtime, the configured plugins and the directory
/// watcher. A plugin that fails to load is logged and listed by the API; Parley starts
/// without it, because a missing connector stops automation, never intake.
pub async fn start_plugins(
    settings: &PluginSettings,
) -> anyhow::Result<(Arc<PluginRegistry>, Option<tokio::task::JoinHandle<()>>)> {
    let runtime = PluginRuntime::new(settings.runtime_config())
        .context("Failed to start the plugin runtime")?;
    let plugins = Arc::new(PluginRegistry::new(
        Arc::new(runtime),
        Arc::new(settings.secret_source()),
        settings.breaker_config(),
    ));
    for (_, outcome) in plugins.load_all(&settings.manifests).await {
        if let Ok(status) = outcome {
            // The contract promises a health check at load; it must not hold up the
            // start, and a failing one leaves the plugin loaded (its back end may only
            // be down for now).
            let plugins = plugins.clone();
            tokio::spawn(async move {
                let Ok(handle) = plugins.handle(&status.id) else {
                    return;
                };
                if let Err(error) = handle.health_check().await {
                    tracing::warn!(plugin = %status.id, error = %error, code = error.code(), "Plugin loaded, but its health check failed.");
                }
            });
        }
    }
    let watcher = match &settings.watch_dir {
        Some(dir) => {
            let mut watcher = PluginWatcher::new(dir.clone(), plugins.clone());
            // The first look loads what is there before webhooks arrive.
            watcher.scan().await;
            let interval = std::time::Duration::from_millis(settings.watch_interval_ms);
            Some(watcher.spawn(interval))
        }
        None => None,
    };
    Ok((plugins, watcher))
}

/// Warns about configuration that names plugins which are not there (yet): they may
/// still arrive through the watched directory or the API.
fn warn_about_missing_plugins(settings: &Settings, plugins: &PluginRegistry) {
    let mut wanted: Vec<(&str, WorldKind, String)> = settings
        .channels
        .iter()
        .filter_map(|c| match c {
            ChannelSettings::Transport(t) => Some((
                t.plugin.as_str(),
                WorldKind::Transport,
                format!("channel {}", t.id),
            )),
            ChannelSettings::WhatsappCloud(_) => None,
        })
        .collect();
    if let Some(id) = &settings.plugins.crm {
        wanted.push((id, WorldKind::CrmConnector, "plugins.crm".to_owned()));
    }
    if let Some(id) = &settings.plugins.orders {
        wanted.push((id, WorldKind::OrderConnector, "plugins.orders".to_owned()));
    }
    for (id, kind, by) in wanted {
        match plugins.status(id) {
            Ok(status) if status.world.kind == kind => {}
            Ok(status) => {
                tracing::warn!(plugin = id, wanted_by = %by, world = %status.world, expected = %kind, "A configured plugin serves another world.")
            }
            Err(_) => {
                tracing::warn!(plugin = id, wanted_by = %by, "A configured plugin is not loaded; its calls fail until it is.")
            }
        }
    }
}

/// Closing the loop and the survey, from the configuration.
fn case_timers(settings: &Settings) -> anyhow::Result<crate::conversation::timers::CaseTimers> {
    let secs =
        |s: u64| i64::try_from(s).unwrap_or(i64::MAX / 1_000_000) * crate::domain::SECOND_MICROS;
    let csat = &settings.csat;
    Ok(crate::conversation::timers::CaseTimers {
        survey: csat.enabled.then(|| crate::conversation::csat::Survey {
            after: secs(csat.delay_secs),
            template: (!csat.template.is_empty())
                .then(|| (csat.template.clone(), csat.template_language.clone())),
        }),
        pending_close_after: (settings.conversations.pending_close_after_secs > 0)
            .then(|| secs(settings.conversations.pending_close_after_secs)),
        texts: Arc::new(settings.customer_texts()?),
        close_resolved_after: secs(settings.conversations.reopen_window_secs),
    })
}

/// Joins the cluster: the shared token, the first heartbeat (this node's share of the
/// shards, before any webhook is applied) and the task that keeps the leases.
async fn join_cluster(
    settings: &Settings,
    store: &Store,
    port: u16,
) -> anyhow::Result<(Arc<Cluster>, String)> {
    let address = match settings.cluster.advertise_url.trim() {
        "" => format!("http://127.0.0.1:{port}"),
        url => url.trim_end_matches('/').to_owned(),
    };
    let token = cluster::leases::cluster_token(store.db())
        .await
        .context("Failed to read the cluster token (is the database migrated?)")?;
    let cluster = Cluster::new(&settings.cluster, store.db().clone(), address);
    let gained = cluster
        .heartbeat()
        .await
        .context("Failed to take this node's shard leases")?;
    tracing::info!(
        node = cluster.node_id(),
        shards = gained.len(),
        "Joined the cluster."
    );
    tokio::spawn(cluster.clone().keep_leases());
    Ok((cluster, token))
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

impl Application {
    /// Connects and migrates the store, starts the actors and workers, binds the listener.
    /// Must run inside an actix system.
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let store = Store::connect(&settings.database)
            .await
            .with_context(|| "Failed to open the database")?;
        if store.is_sqlite() || settings.database.migrate_on_start {
            store
                .migrate()
                .await
                .context("Failed to migrate the database")?;
        }
        // Bound before anything starts: a cluster node advertises its port to the others.
        let listener = TcpListener::bind(&settings.http.bind)
            .with_context(|| format!("Failed to listen on {}", settings.http.bind))?;
        let port = listener.local_addr()?.port();
        let cluster = match settings.cluster.enabled() {
            true => Some(join_cluster(&settings, &store, port).await?),
            false => None,
        };
        let sources = crate::policy::PolicySources::from_settings(&settings.routing);
        let (engine, loaded) = reload::load(&sources, &store, clock.now())
            .await
            .context("Failed to load the triage taxonomy and routing rules")?;
        tracing::info!(
            rules = loaded.rules,
            teams = loaded.teams,
            intents = loaded.intents,
            "Triage and routing loaded."
        );
        let router = RouterActor::new(engine.clone(), store.clone(), clock.clone());
        // Its own thread: routing work never delays the writer or the intake.
        let router_thread = actix::Arbiter::new().handle();
        let router = RouterActor::start_in_arbiter(&router_thread, |_| router);
        // The SLA clock, its dispatcher and the escalation actor share a thread of their own.
        let sla_thread = actix::Arbiter::new().handle();
        let sla = settings.sla.enabled.then(|| {
            let dispatcher = SlaDispatcher::new(store.clone(), clock.clone());
            let dispatcher = SlaDispatcher::start_in_arbiter(&sla_thread, |_| dispatcher);
            let sla_clock = SlaClock::new(clock.clone(), dispatcher.clone().recipient());
            let escalation = EscalationActor::new(store.clone(), clock.clone(), engine.clone());
            let actors = SlaActors {
                clock: SlaClock::start_in_arbiter(&sla_thread, |_| sla_clock),
                escalation: EscalationActor::start_in_arbiter(&sla_thread, |_| escalation),
            };
            (actors, dispatcher)
        });
        // In a cluster: the Redis side, reached lazily so that a node serves while Redis
        // is away.
        let (bus, relay) = if settings.cluster.enabled() {
            let bus = crate::node::bus::ClusterBus::new(&settings.cluster)?;
            let (relay, outgoing) = bus.start();
            tokio::spawn(crate::node::bus::run_publisher(bus.clone(), outgoing));
            tracing::info!(node = bus.node_id(), "This node joins the cluster.");
            (Some(bus), relay)
        } else {
            (None, crate::cluster::bus::Relay::none())
        };
        let noise = NoiseState::default();
        for wa_id in store
            .blocked_wa_ids()
            .await
            .context("Failed to read blocked contacts")?
        {
            noise.set_blocked(&wa_id, true);
        }
        let routing = Arc::new(Routing {
            engine,
            noise,
            presence: Arc::new(PresenceBoard::with_relay(relay.clone())),
            router: router.clone(),
            sources,
            enabled: settings.routing.enabled,
            router_thread,
            sla_thread,
        });
        let events = match &bus {
            Some(_) => EventBus::clustered(relay.clone()),
            None => EventBus::new(),
        };
        let (plugins, watcher) = start_plugins(&settings.plugins).await?;
        warn_about_missing_plugins(&settings, &plugins);
        let connectors = Connectors::new(
            plugins.clone(),
            settings.plugins.crm.clone(),
            settings.plugins.orders.clone(),
        );
        let outbox_wakeup = Arc::new(Notify::new());
        let threads = match settings.conversations.actor_threads {
            0 => cores(),
            n => n,
        };
        let registry = ConversationRegistry::start(
            ActorDeps {
                store: store.clone(),
                clock: clock.clone(),
                events: events.clone(),
                outbox_wakeup: outbox_wakeup.clone(),
                idle_timeout: settings.conversations.idle_timeout_secs as i64
                    * crate::domain::SECOND_MICROS,
                reopen_window: settings.conversations.reopen_window_secs as i64
                    * crate::domain::SECOND_MICROS,
                routing: routing.clone(),
                connectors: connectors.clone(),
                crm_refresh: settings.plugins.crm_refresh_secs as i64
                    * crate::domain::SECOND_MICROS,
                sla: sla.as_ref().map(|(actors, _)| actors.clone()),
                timers: Arc::new(case_timers(&settings)?),
                cluster: cluster.as_ref().map(|(cluster, _)| cluster.clone()),
            },
            threads,
        );
        // Everyone else reaches a conversation through this handle, not the registry.
        let local: Arc<dyn crate::actors::conversation::Deliver> = Arc::new(registry.clone());
        let (conversations, forwarding) = match &cluster {
            Some((cluster, token)) => {
                let deliver = ClusterDeliver::new(cluster.clone(), local.clone(), token.clone())
                    .context("Failed to build the client that forwards requests to other nodes")?;
                let forwarding = web::Data::new(Forwarding {
                    cluster: cluster.clone(),
                    local,
                    token: token.clone(),
                });
                (Conversations::new(Arc::new(deliver)), Some(forwarding))
            }
            None => (Conversations::new(local), None),
        };
        let cluster = cluster.map(|(cluster, _)| cluster);
        router.do_send(AttachRegistry(conversations.clone()));
        if let Some((actors, dispatcher)) = &sla {
            dispatcher.do_send(AttachDispatcher {
                registry: conversations.clone(),
                sla_clock: actors.clock.clone(),
            });
            actors
                .escalation
                .do_send(AttachEscalation(conversations.clone()));
            // Every pending deadline, including those that came due while Parley was down.
            let deadlines = store
                .sla_deadlines()
                .await
                .context("Failed to read pending SLA deadlines")?;
            tracing::info!(deadlines = deadlines.len(), "SLA deadlines loaded.");
            actors.clock.do_send(ScheduleMany(deadlines));
            if let Some(cluster) = &cluster {
                // Shards taken over bring their cases' timers, set by their former owner.
                let (mut gains, store, clock) = (
                    cluster.subscribe_gains(),
                    store.clone(),
                    actors.clock.clone(),
                );
                tokio::spawn(async move {
                    while gains.recv().await.is_ok() {
                        match store.sla_deadlines().await {
                            Ok(deadlines) => clock.do_send(ScheduleMany(deadlines)),
                            Err(error) => {
                                tracing::error!(error = %error, "Could not load the timers of shards taken over.")
                            }
                        }
                    }
                });
            }
        }
        let dispatcher = Dispatcher::start(
            conversations.clone(),
            store.clone(),
            clock.clone(),
            events.clone(),
            settings.conversations.max_apply_attempts,
            crate::ingest::dispatcher::ListedNumbers::from_settings(&settings.channels),
        );
        store
            .adopt_pending_from_main(clock.now())
            .await
            .context("Failed to move pending webhooks into the inbox's database")?;
        // Read before the listener opens: rows after it belong to this run.
        let replay_up_to = store
            .last_inbox_id()
            .await
            .context("Failed to read the inbox")?;
        let replay = dispatcher.clone();
        tokio::spawn(async move {
            if let Err(error) = replay.replay_pending(replay_up_to).await {
                tracing::error!(error = %error, "Replaying pending webhooks failed; they are retried at the next start.");
            }
        });
        let media = Arc::new(
            crate::media::Media::start(&settings.media, store.clone(), clock.clone()).await?,
        );
        let fetcher = crate::media::fetch::MediaWorker::new(
            store.clone(),
            clock.clone(),
            media.clone(),
            &settings,
            events.clone(),
        )
        .context("Failed to build the media client")?;
        tokio::spawn(fetcher.run());
        if let Some(cluster) = &cluster {
            dispatcher.join_cluster(cluster.clone());
            tokio::spawn(crate::node::inbox::apply_pending(
                cluster.clone(),
                dispatcher.clone(),
                settings.database.inbox_url(),
            ));
        }
        // Checked once here, so that a leader elected later cannot fail to build it.
        drop(
            OutboxWorker::new(
                store.clone(),
                clock.clone(),
                events.clone(),
                outbox_wakeup.clone(),
                &settings,
                plugins.clone(),
                conversations.clone(),
                media.clone(),
            )
            .context("Failed to build the provider client")?,
        );
        {
            let (clock, events, settings, plugins, conversations, clustered, bus, media) = (
                clock.clone(),
                events.clone(),
                Arc::new(settings.clone()),
                plugins.clone(),
                conversations.clone(),
                cluster.is_some(),
                bus.clone(),
                media.clone(),
            );
            spawn_on_leader(cluster.clone(), store.clone(), "outbox", move |store| {
                let outbox = OutboxWorker::new(
                    store,
                    clock.clone(),
                    events.clone(),
                    outbox_wakeup.clone(),
                    &settings,
                    plugins.clone(),
                    conversations.clone(),
                    media.clone(),
                );
                // Across the cluster, pacing is shared through Redis.
                let outbox = outbox.map(|outbox| match &bus {
                    Some(bus) => outbox.with_shared_pacing(Arc::new(
                        crate::node::bus::limiter::SharedPacing::new(
                            bus.clone(),
                            settings.outbound.messages_per_second,
                            settings.outbound.pair_burst,
                            settings.outbound.pair_interval_ms as i64 * 1000,
                        ),
                    )),
                    None => outbox,
                });
                async move {
                    match outbox {
                        Ok(outbox) if clustered => {
                            outbox.polling_every(CLUSTER_OUTBOX_POLL).run().await
                        }
                        Ok(outbox) => outbox.run().await,
                        Err(error) => {
                            tracing::error!(error = %error, "The outbox could not start.")
                        }
                    }
                }
            });
        }
        let audited = events.clone();
        spawn_on_leader(cluster.clone(), store.clone(), "auditor", move |store| {
            crate::store::audit::run_auditor(store, audited.subscribe())
        });
        let (retention_clock, retention) = (clock.clone(), settings.retention.clone());
        spawn_on_leader(cluster.clone(), store.clone(), "retention", move |store| {
            crate::store::retention::run_retention(
                store,
                retention_clock.clone(),
                retention.clone(),
            )
        });
        if let Some(bus) = &bus {
            use crate::node::bus::{self as cluster_bus, apply};
            let (invalidations, applied) = tokio::sync::broadcast::channel(1024);
            tokio::spawn(apply::run(
                apply::Caches {
                    routing: routing.clone(),
                    plugins: plugins.clone(),
                    registry: registry.clone(),
                    sla: sla.as_ref().map(|(actors, _)| actors.clone()),
                    store: store.clone(),
                    clock: clock.clone(),
                },
                applied,
            ));
            tokio::spawn(cluster_bus::run_reader(
                bus.clone(),
                cluster_bus::Sinks {
                    events: events.clone(),
                    presence: routing.presence.clone(),
                    invalidations,
                    store: store.clone(),
                    clock: clock.clone(),
                },
            ));
        }
        let projection =
            crate::reports::Projection::new(store.clone(), clock.clone(), &settings.reports)
                .context("Invalid [reports] settings")?;
        let figures = crate::reports::figures::Figures::new(
            store.clone(),
            projection.calendar().clone(),
            crate::reports::load_kpis(&settings.reports).context("Invalid KPI file")?,
        );
        if settings.reports.enabled {
            let (clock, reports, figures, events) = (
                clock.clone(),
                settings.reports.clone(),
                figures.clone(),
                events.clone(),
            );
            drop(projection);
            spawn_on_leader(cluster.clone(), store.clone(), "reports", move |store| {
                let projection = crate::reports::Projection::new(store, clock.clone(), &reports);
                let (figures, published) = (figures.clone(), events.subscribe());
                async move {
                    match projection {
                        Ok(projection) => crate::reports::run(projection, figures, published).await,
                        Err(error) => {
                            tracing::error!(error = %error, "The reports projection could not start.")
                        }
                    }
                }
            });
        }

        if settings.channels.is_empty() {
            tracing::warn!(
                "No channel is configured: webhooks answer 404 until one is added under [[channels]]."
            );
        }
        let settings = Arc::new(settings);
        let schema = api::build_schema(ApiContext {
            store: store.clone(),
            registry: registry.clone(),
            conversations: conversations.clone(),
            settings: settings.clone(),
            events: events.clone(),
            clock: clock.clone(),
            routing: routing.clone(),
            plugins: plugins.clone(),
            sla: sla.as_ref().map(|(actors, _)| actors.clone()),
            intake: dispatcher.clone(),
            figures,
            cluster: cluster.clone(),
            relay,
            media: media.clone(),
        });
        let intake = web::Data::new(Intake::new(
            settings.clone(),
            &store,
            clock.clone(),
            dispatcher,
            plugins.clone(),
        ));
        let workers = match settings.http.workers {
            0 => cores(),
            n => n,
        };
        let schema = web::Data::new(schema);
        let gate = web::Data::new(api::endpoint::Gate {
            store: store.clone(),
            clock: clock.clone(),
            settings: settings.clone(),
        });
        let store_data = web::Data::new(store.clone());
        let settings_data = web::Data::new(settings.clone());
        let metrics_apart = !settings.http.metrics_bind.trim().is_empty();
        let metrics = if metrics_apart {
            let listener = TcpListener::bind(settings.http.metrics_bind.trim())
                .with_context(|| format!("Failed to listen on {}", settings.http.metrics_bind))?;
            let metrics_port = listener.local_addr()?.port();
            let server = HttpServer::new(|| App::new().configure(api::metrics_routes))
                .workers(1)
                .listen(listener)?
                .run();
            tracing::info!(
                port = metrics_port,
                "Metrics are served on a listener of their own."
            );
            Some((metrics_port, server))
        } else {
            None
        };
        let media_data = web::Data::new(media);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(intake.clone())
                .app_data(schema.clone())
                .app_data(gate.clone())
                .app_data(store_data.clone())
                .app_data(settings_data.clone())
                .configure(|cfg| {
                    if let Some(forwarding) = &forwarding {
                        crate::node::deliver::routes(forwarding.clone())(cfg);
                    }
                })
                .app_data(media_data.clone())
                .configure(ingest::routes)
                .configure(api::routes)
                .configure(|cfg| {
                    if !metrics_apart {
                        api::metrics_routes(cfg);
                    }
                })
                .default_service(web::to(|| async {
                    HttpResponse::NotFound().json(serde_json::json!({
                        "error": { "code": "not_found", "message": "no such endpoint" }
                    }))
                }))
        })
        .workers(workers)
        .listen(listener)?
        .run();
        tracing::info!(port, "Parley is listening.");
        let (metrics_port, metrics_server) = match metrics {
            Some((port, server)) => (Some(port), Some(server)),
            None => (None, None),
        };
        Ok(Self {
            port,
            cluster,
            server,
            metrics_port,
            metrics_server,
            store,
            registry,
            events,
            routing,
            plugins,
            connectors,
            watcher,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics`' own listener, when `[http] metrics_bind` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// A handle that stops the HTTP server.
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped, then stops the actor threads.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics_server.as_ref().map(Server::handle);
        if let Some(server) = self.metrics_server {
            actix_rt::spawn(server);
        }
        let result = self.server.await;
        if let Some(metrics) = metrics {
            metrics.stop(true).await;
        }
        if let Some(watcher) = &self.watcher {
            watcher.abort();
        }
        if let Some(cluster) = &self.cluster {
            // At once, so that the other nodes take over now rather than at expiry.
            if let Err(error) = cluster.leave().await {
                tracing::warn!(error = %error, "Could not release the shard leases; they expire.");
            }
        }
        self.registry.stop();
        self.routing.stop();
        result
    }
}
