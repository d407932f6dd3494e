//! Plugging components together with wac-graph: what `wac plug --plug A --plug B SOCKET` does,
//! with one difference that matters here: each plug supplies only the interfaces named for it.
//!
//! `wac plug` offers every export of every plug to the socket. zoe-session exports both
//! `zoe:session/sessions` and `wasi:http/incoming-handler`, so in front of the gate it would
//! compete with the app for the gate's `incoming-handler` import. Naming the interfaces each
//! plug provides makes the wiring explicit and an ambiguity impossible.
//!
//! This file is also compiled into the crate's build script (`#[path]`), so the same code
//! composes the test artefacts and serves library users.

use anyhow::{Context as _, bail};
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};

/// A component and the exports it provides to the socket.
#[derive(Debug, Clone, Copy)]
pub struct Plug<'a> {
    /// A package name for the component inside the composition, e.g. `zoe:session`.
    pub name: &'a str,
    /// The component's bytes.
    pub bytes: &'a [u8],
    /// Exports of this component to wire into the socket's imports of the same name.
    pub provides: &'a [&'a str],
}

/// Instantiates `socket` with each plug's named exports as its imports, and exports everything
/// the socket exports. Imports nobody provides stay imports of the result (WASI, SQLite,
/// variables), merged by name across all components.
///
/// # Errors
///
/// When a component cannot be parsed, a plug lacks an export it is said to provide, the socket
/// does not import it, the types do not match, or the result fails validation.
pub fn plug(socket_name: &str, socket: &[u8], plugs: &[Plug<'_>]) -> anyhow::Result<Vec<u8>> {
    let mut graph = CompositionGraph::new();
    let socket_package = Package::from_bytes(socket_name, None, socket, graph.types_mut())
        .with_context(|| format!("cannot read the socket component `{socket_name}`"))?;
    let socket_id = graph.register_package(socket_package)?;
    let socket_instance = graph.instantiate(socket_id);

    for plug in plugs {
        let package = Package::from_bytes(plug.name, None, plug.bytes, graph.types_mut())
            .with_context(|| format!("cannot read the plug component `{}`", plug.name))?;
        let id = graph.register_package(package)?;
        let instance = graph.instantiate(id);
        for name in plug.provides {
            if !graph.types()[graph[id].ty()].exports.contains_key(*name) {
                bail!("`{}` does not export `{name}`", plug.name);
            }
            if !graph.types()[graph[socket_id].ty()]
                .imports
                .contains_key(*name)
            {
                bail!("`{socket_name}` does not import `{name}`");
            }
            let export = graph
                .alias_instance_export(instance, name)
                .with_context(|| format!("cannot use `{name}` of `{}`", plug.name))?;
            graph
                .set_instantiation_argument(socket_instance, name, export)
                .with_context(|| {
                    format!("`{name}` of `{}` does not fit `{socket_name}`", plug.name)
                })?;
        }
    }

    let exports: Vec<String> = graph.types()[graph[socket_id].ty()]
        .exports
        .keys()
        .cloned()
        .collect();
    for name in exports {
        let export = graph.alias_instance_export(socket_instance, &name)?;
        graph.export(export, &name)?;
    }
    graph
        .encode(EncodeOptions::default())
        .context("encoding the composition")
}
