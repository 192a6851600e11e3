//! The stats in Prometheus' text format, under the metric names of HAProxy's own exporter
//! (`haproxy_server_current_sessions{proxy="be",server="s1"}`), so existing dashboards work;
//! plus halyard's response-time percentiles as a summary.

use std::fmt::Write as _;

use super::rows::{Kind, Row, Value};

/// (metric name after `haproxy_<kind>_`, CSV field, type, help).
const METRICS: &[(&str, &str, &str, &str)] = &[
    ("current_queue", "qcur", "gauge", "Number of current queued connections."),
    ("max_queue", "qmax", "gauge", "Highest value of queued connections encountered since process started."),
    ("current_sessions", "scur", "gauge", "Number of current sessions on the frontend, backend or server."),
    ("max_sessions", "smax", "gauge", "Highest value of current sessions encountered since process started."),
    ("limit_sessions", "slim", "gauge", "Frontend/listener/server's maxconn, backend's fullconn."),
    ("sessions_total", "stot", "counter", "Total number of sessions since process started."),
    ("bytes_in_total", "bin", "counter", "Total number of request bytes since process started."),
    ("bytes_out_total", "bout", "counter", "Total number of response bytes since process started."),
    ("requests_denied_total", "dreq", "counter", "Total number of denied requests since process started."),
    ("request_errors_total", "ereq", "counter", "Total number of invalid requests since process started."),
    ("connection_errors_total", "econ", "counter", "Total number of failed connections to server since the worker process started."),
    ("response_errors_total", "eresp", "counter", "Total number of invalid responses since the worker process started."),
    ("retry_warnings_total", "wretr", "counter", "Total number of server connection retries since the worker process started."),
    ("redispatch_warnings_total", "wredis", "counter", "Total number of server redispatches due to connection failures since the worker process started."),
    ("weight", "weight", "gauge", "Server's effective weight, or sum of active servers' effective weights for a backend."),
    ("active_servers", "act", "gauge", "Total number of active UP servers with a non-zero weight."),
    ("backup_servers", "bck", "gauge", "Total number of backup UP servers with a non-zero weight."),
    ("check_failures_total", "chkfail", "counter", "Total number of failed individual health checks per server/backend, since the worker process started."),
    ("check_up_down_total", "chkdown", "counter", "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started."),
    ("check_last_change_seconds", "lastchg", "gauge", "How long ago the last server state change happened, in seconds."),
    ("downtime_seconds_total", "downtime", "counter", "Total time spent in DOWN state, for server or backend."),
    ("loadbalanced_total", "lbtot", "counter", "Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)."),
    ("current_session_rate", "rate", "gauge", "Number of new sessions per second over the last second."),
    ("max_session_rate", "rate_max", "gauge", "Highest value of sessions per second observed since the worker process started."),
    ("http_requests_rate_max", "req_rate_max", "gauge", "Highest value of http requests observed since the worker process started."),
    ("http_requests_total", "req_tot", "counter", "Total number of HTTP requests processed by this object since the worker process started."),
    ("client_aborts_total", "cli_abrt", "counter", "Total number of requests or connections aborted by the client since the worker process started."),
    ("server_aborts_total", "srv_abrt", "counter", "Total number of requests or connections aborted by the server since the worker process started."),
    ("connections_total", "conn_tot", "counter", "Total number of new connections accepted on this frontend since the worker process started."),
];

/// The response classes of `http_responses_total`'s `code` label.
const CLASSES: [(&str, &str); 6] = [
    ("1xx", "hrsp_1xx"),
    ("2xx", "hrsp_2xx"),
    ("3xx", "hrsp_3xx"),
    ("4xx", "hrsp_4xx"),
    ("5xx", "hrsp_5xx"),
    ("other", "hrsp_other"),
];

/// The states of `haproxy_server_status`'s `state` label.
const SERVER_STATES: [&str; 5] = ["DOWN", "UP", "MAINT", "DRAIN", "NOLB"];

/// Every row as Prometheus metrics.
pub(super) fn metrics(rows: &[Row]) -> String {
    let mut out = String::with_capacity(32 * 1024);
    for kind in [Kind::Frontend, Kind::Backend, Kind::Server] {
        let of_kind: Vec<&Row> = rows.iter().filter(|r| r.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let prefix = match kind {
            Kind::Frontend => "haproxy_frontend",
            Kind::Backend => "haproxy_backend",
            Kind::Server => "haproxy_server",
        };
        status(&mut out, prefix, kind, &of_kind);
        for (name, field, kind_of_metric, help) in METRICS {
            let with: Vec<(&Row, u64)> = of_kind
                .iter()
                .filter_map(|r| match r.get(field) {
                    Some(Value::Number(n)) => Some((*r, *n)),
                    _ => None,
                })
                .collect();
            if with.is_empty() {
                continue;
            }
            family(&mut out, &format!("{prefix}_{name}"), kind_of_metric, help);
            for (row, value) in with {
                sample(&mut out, &format!("{prefix}_{name}"), row, &[], value);
            }
        }
        let name = format!("{prefix}_http_responses_total");
        family(
            &mut out,
            &name,
            "counter",
            "Total number of HTTP responses.",
        );
        for row in &of_kind {
            for (code, field) in CLASSES {
                sample(
                    &mut out,
                    &name,
                    row,
                    &[("code", code)],
                    row.number_of(field),
                );
            }
        }
        if kind != Kind::Frontend {
            percentiles(&mut out, kind, &of_kind);
        }
    }
    out
}

/// `haproxy_<kind>_status`: 1 for the state the object is in.
fn status(out: &mut String, prefix: &str, kind: Kind, rows: &[&Row]) {
    let name = format!("{prefix}_status");
    family(
        out,
        &name,
        "gauge",
        "Current status of the service, per state label value.",
    );
    for row in rows {
        let now = row.text_of("status");
        match kind {
            Kind::Server => {
                let now = if now == "no check" {
                    "UP"
                } else {
                    now.as_str()
                };
                for state in SERVER_STATES {
                    let on = u64::from(state == now);
                    sample(out, &name, row, &[("state", state)], on);
                }
            }
            // HAProxy's frontend and backend status: 1 when OPEN/UP.
            _ => sample(
                out,
                &name,
                row,
                &[],
                u64::from(now == "OPEN" || now == "UP"),
            ),
        }
    }
}

/// `halyard_<kind>_response_time_seconds{quantile=...}`: Tr percentiles since start.
fn percentiles(out: &mut String, kind: Kind, rows: &[&Row]) {
    let name = match kind {
        Kind::Server => "halyard_server_response_time_seconds",
        _ => "halyard_backend_response_time_seconds",
    };
    family(
        out,
        name,
        "summary",
        "Server response time (Tr) percentiles since start.",
    );
    for row in rows {
        for (quantile, field) in [("0.5", "rtime_p50"), ("0.99", "rtime_p99")] {
            if let Some(Value::Number(ms)) = row.get(field) {
                let _ = writeln!(
                    out,
                    "{name}{} {}",
                    labels(row, &[("quantile", quantile)]),
                    *ms as f64 / 1000.0
                );
            }
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, row: &Row, extra: &[(&str, &str)], value: u64) {
    let _ = writeln!(out, "{name}{} {value}", labels(row, extra));
}

/// `{proxy="be",server="s1",...}`, escaped as the text format asks.
fn labels(row: &Row, extra: &[(&str, &str)]) -> String {
    let proxy = row.text_of("pxname");
    let server = row.text_of("svname");
    let mut pairs = vec![("proxy", proxy.as_str())];
    if row.kind == Kind::Server {
        pairs.push(("server", server.as_str()));
    }
    pairs.extend_from_slice(extra);
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", label_value(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
