//! Tests of the plugin host against real components: hand-written hostile
//! ones (`hostile`) and the reference plugins from `plugins/dist/`
//! (`reference_plugins`, which need `plugins/build.sh` to have run).

mod bench;
mod hostile;
mod reference_plugins;
mod support;
mod watcher;
