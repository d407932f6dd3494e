//! HTTP middleware in front of an app, composed as Spin 4.1 composes a trigger's
//! `dependencies.middleware` (`serve --middleware A --middleware B`).
//!
//! Each middleware imports and exports `wasi:http/handler@0.3.0`. The chain is listed outermost
//! first: the first middleware sees the client's request first and the response last; each
//! one's imported handler is the next one's export, and the last one's is the app's. The result
//! is one component exporting the outermost handler, composed with wac-graph (as `compose/`
//! composes the gate). Every other import (WASI, `spin:sqlite`, variables…) stays an import of
//! the whole, merged by name, so every component of the chain gets the same host: the same
//! variables, database and limits, as Spin gives middleware with `inherit_configuration`.
//!
//! An app that does not export `wasi:http/handler@0.3.0` (a WASIp2 app) is refused, as Spin
//! refuses it ("instance does not have an export named `wasi:http/handler@0.3.0`").

use anyhow::{Context as _, bail};
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions, NodeId, PackageId};

/// The interface a middleware imports and exports, and the app exports.
pub const HANDLER: &str = "wasi:http/handler@0.3.0";

/// A component of the chain: a name for messages (e.g. its file) and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// Composes `middleware` (outermost first) in front of `app` into one component that exports
/// the outermost middleware's `wasi:http/handler@0.3.0`. With no middleware, `app` is returned
/// as it is.
///
/// # Errors
///
/// When a component cannot be read, the app does not export the handler, a middleware does not
/// both import and export it, or the composition does not validate; each names the component.
pub fn compose(middleware: &[Link<'_>], app: Link<'_>) -> anyhow::Result<Vec<u8>> {
    if middleware.is_empty() {
        return Ok(app.bytes.to_vec());
    }
    let mut graph = CompositionGraph::new();
    let (app_id, mut next) = add(&mut graph, "zoe:app", app)?;
    if !exports(&graph, app_id) {
        bail!(
            "the app, {}, does not export {HANDLER}: only a WASIp3 app can run behind middleware \
             (a WASIp2 app cannot hand a changed request on)",
            app.name
        );
    }
    // Innermost first, so that each middleware's import can be given the next one's export.
    for (index, link) in middleware.iter().enumerate().rev() {
        let (id, instance) = add(&mut graph, &format!("zoe:middleware{index}"), *link)?;
        if !exports(&graph, id) || !graph.types()[graph[id].ty()].imports.contains_key(HANDLER) {
            bail!(
                "the middleware {} does not both import and export {HANDLER}",
                link.name
            );
        }
        let inner = graph.alias_instance_export(next, HANDLER)?;
        graph
            .set_instantiation_argument(instance, HANDLER, inner)
            .with_context(|| format!("the handler {} imports does not fit", link.name))?;
        next = instance;
    }
    let outermost = graph.alias_instance_export(next, HANDLER)?;
    graph.export(outermost, HANDLER)?;
    graph
        .encode(EncodeOptions::default())
        .context("encoding the middleware chain")
}

fn add(
    graph: &mut CompositionGraph,
    package: &str,
    link: Link<'_>,
) -> anyhow::Result<(PackageId, NodeId)> {
    let parsed = Package::from_bytes(package, None, link.bytes, graph.types_mut())
        .with_context(|| format!("cannot read the component {}", link.name))?;
    let id = graph.register_package(parsed)?;
    Ok((id, graph.instantiate(id)))
}

fn exports(graph: &CompositionGraph, id: PackageId) -> bool {
    graph.types()[graph[id].ty()].exports.contains_key(HANDLER)
}
