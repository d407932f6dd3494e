//! The host's own log lines, in the component's JSON-lines shape.

/// The host's own log lines, in the component's JSON-lines shape (`zoe_session_wire`),
/// marked `"source":"host"`.
pub(crate) fn log_line(level: &str, message: &str, detail: &str) {
    host_line(
        level,
        message,
        serde_json::json!({"detail": detail, "source": "host"}),
    );
}

/// A host log line with `fields`, stamped with the wall clock (a log timestamp only).
pub(crate) fn host_line(level: &str, message: &str, fields: serde_json::Value) {
    let now = crate::clock::Clock::system().now_ms();
    zoe_session_wire::write_line(zoe_session_wire::log_line(now, level, message, fields));
}
