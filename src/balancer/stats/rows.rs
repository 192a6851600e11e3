//! The stats as HAProxy lays them out: one row per frontend, server and backend, each a set
//! of named fields using HAProxy's CSV column names, which every output (CSV, JSON, HTML,
//! Prometheus, `show stat`) reads.

use std::sync::atomic::Ordering;

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::counters::{unix_now, Counters};
use crate::balancer::backend::{BackendState, ServerState};
use crate::balancer::proxies::{FrontendTraffic, Proxies};
use crate::balancer::select::FULL_RAMP;
use crate::config::{Balance, Frontend, Mode};

/// HAProxy 2.6's `show stat` / `;csv` header, every column in order: rows leave the columns
/// halyard does not fill empty, so tools reading columns by position still line up.
pub(super) const CSV_COLUMNS: &str = "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,\
dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,\
qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,\
check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,\
req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,\
last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,\
check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,\
conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,\
cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,\
safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,\
agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,\
h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,\
h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,\
h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,\
h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,\
h1_spliced_bytes_in,h1_spliced_bytes_out";

/// What a row describes (HAProxy's `type` column: 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::balancer) enum Kind {
    Frontend,
    Backend,
    Server,
}

/// A field's value.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::balancer) enum Value {
    Number(u64),
    Text(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Text(t) => f.write_str(t),
        }
    }
}

/// One frontend, server or backend.
#[derive(Debug, Clone)]
pub(in crate::balancer) struct Row {
    pub kind: Kind,
    fields: Vec<(&'static str, Value)>,
}

impl Row {
    fn new(kind: Kind, pxname: &str, svname: &str) -> Row {
        let mut row = Row {
            kind,
            fields: Vec::with_capacity(48),
        };
        row.text("pxname", pxname);
        row.text("svname", svname);
        row.number("type", kind as u64);
        row.number("pid", 1);
        row
    }

    fn number(&mut self, name: &'static str, value: u64) {
        self.fields.push((name, Value::Number(value)));
    }

    fn text(&mut self, name: &'static str, value: &str) {
        self.fields.push((name, Value::Text(value.to_owned())));
    }

    fn counter(&mut self, name: &'static str, counter: &std::sync::atomic::AtomicU64) {
        self.number(name, Counters::get(counter));
    }

    /// A field by its HAProxy column name (or halyard's own `rtime_p50`, `rtime_p99`).
    pub(in crate::balancer) fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A numeric field, 0 when absent.
    pub(in crate::balancer) fn number_of(&self, name: &str) -> u64 {
        match self.get(name) {
            Some(Value::Number(n)) => *n,
            _ => 0,
        }
    }

    /// A text field, empty when absent.
    pub(in crate::balancer) fn text_of(&self, name: &str) -> String {
        self.get(name).map(Value::to_string).unwrap_or_default()
    }

    /// The traffic counters every kind of row has.
    fn traffic(&mut self, c: &Counters) {
        self.counter("stot", &c.sessions);
        self.counter("bin", &c.bytes_in);
        self.counter("bout", &c.bytes_out);
        self.number("smax", u64::from(c.max_sessions.load(Ordering::Relaxed)));
        self.number("rate", u64::from(c.rate.per_second()));
        self.number("rate_max", u64::from(c.rate.max()));
        const CLASSES: [&str; 6] = [
            "hrsp_1xx",
            "hrsp_2xx",
            "hrsp_3xx",
            "hrsp_4xx",
            "hrsp_5xx",
            "hrsp_other",
        ];
        for (name, counter) in CLASSES.into_iter().zip(&c.statuses) {
            self.counter(name, counter);
        }
    }

    /// What backends and servers share: queues, errors, aborts, latency.
    fn backend_side(&mut self, c: &Counters, queued: u32, mode: Mode) {
        self.number("qcur", u64::from(queued));
        self.number("qmax", u64::from(c.max_queue.load(Ordering::Relaxed)));
        self.counter("econ", &c.connect_errors);
        self.counter("eresp", &c.response_errors);
        self.counter("wretr", &c.retries);
        self.counter("wredis", &c.redispatches);
        self.counter("lbtot", &c.sessions);
        self.counter("cli_abrt", &c.client_aborts);
        self.counter("srv_abrt", &c.server_aborts);
        let last = Counters::get(&c.last_session);
        let since = if last == 0 {
            -1
        } else {
            unix_now().saturating_sub(last) as i64
        };
        self.text("lastsess", &since.to_string());
        if mode == Mode::Http {
            self.counter("req_tot", &c.sessions);
        }
        self.text("mode", mode_name(mode));
        if let Some(p50) = c.response_ms.quantile(0.5) {
            self.number("rtime_p50", p50);
        }
        if let Some(p99) = c.response_ms.quantile(0.99) {
            self.number("rtime_p99", p99);
        }
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (name, value) in &self.fields {
            match value {
                Value::Number(n) => map.serialize_entry(name, n)?,
                Value::Text(t) => map.serialize_entry(name, t)?,
            }
        }
        map.end()
    }
}

/// Every row, in HAProxy's order: proxies as declared, each with its FRONTEND row, its
/// servers, then its BACKEND row.
pub(in crate::balancer) fn rows(proxies: &Proxies) -> Vec<Row> {
    let mut rows = Vec::new();
    for (iid, name) in proxy_ids(proxies) {
        if let Some((config, traffic)) = proxies.frontends.iter().find(|(f, _)| f.name == name) {
            rows.push(frontend_row(config, traffic, iid));
        }
        if let Some(backend) = proxies.backend(name) {
            for (i, server) in backend.servers.iter().enumerate() {
                rows.push(server_row(backend, i, server, iid));
            }
            rows.push(backend_row(backend, iid));
        }
    }
    rows
}

/// Every proxy's name with its id (HAProxy's `iid`, from 1), in declaration order.
pub(in crate::balancer) fn proxy_ids(proxies: &Proxies) -> Vec<(u64, &str)> {
    let mut names: Vec<(usize, &str)> = proxies
        .frontends
        .iter()
        .map(|(f, _)| (f.line, f.name.as_str()))
        .chain(
            proxies
                .backends
                .iter()
                .map(|b| (b.config.line, b.config.name.as_str())),
        )
        .collect();
    names.sort();
    // A frontend and a backend may share a name (a `listen`, or two sections): one proxy.
    let mut seen = std::collections::HashSet::new();
    names.retain(|(_, name)| seen.insert(*name));
    (1..).zip(names.into_iter().map(|(_, name)| name)).collect()
}

fn frontend_row(config: &Frontend, traffic: &FrontendTraffic, iid: u64) -> Row {
    let c = &traffic.counters;
    let mut row = Row::new(Kind::Frontend, &config.name, "FRONTEND");
    row.number("iid", iid);
    row.number("sid", 0);
    row.number("scur", u64::from(traffic.connections.open()));
    row.number("slim", config.maxconn as u64);
    row.traffic(c);
    row.counter("dreq", &c.denied);
    row.counter("ereq", &c.request_errors);
    row.text("status", "OPEN");
    row.text("mode", mode_name(config.mode));
    if config.mode == Mode::Http {
        row.number("req_rate", u64::from(c.request_rate.per_second()));
        row.number("req_rate_max", u64::from(c.request_rate.max()));
        row.counter("req_tot", &c.requests);
    }
    row.number("conn_rate", u64::from(c.rate.per_second()));
    row.number("conn_rate_max", u64::from(c.rate.max()));
    row.counter("conn_tot", &c.sessions);
    row
}

fn server_row(backend: &BackendState, i: usize, server: &ServerState, iid: u64) -> Row {
    let config = &server.config;
    let c = &server.counters;
    let mut row = Row::new(Kind::Server, &backend.config.name, &config.name);
    row.number("iid", iid);
    row.number("sid", i as u64 + 1);
    row.number("scur", u64::from(server.active.load(Ordering::Relaxed)));
    if config.maxconn > 0 {
        row.number("slim", config.maxconn as u64);
    }
    if config.maxqueue > 0 {
        row.number("qlimit", config.maxqueue as u64);
    }
    let ramp = server.ramp();
    if ramp < FULL_RAMP {
        // HAProxy's `throttle`: the percentage of the weight a slow start lets through.
        row.number("throttle", u64::from(ramp / 10));
    }
    row.traffic(c);
    row.backend_side(c, backend.queued(Some(i)), backend.config.mode);
    row.text("status", server_status(server));
    let weight = u64::from(server.weight.load(Ordering::Relaxed));
    row.number("weight", weight);
    row.number("uweight", weight);
    row.number("act", u64::from(!config.backup));
    row.number("bck", u64::from(config.backup));
    let health = server
        .health
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let down = !server.up.load(Ordering::Relaxed);
    if config.check {
        row.number("chkfail", health.failed);
        row.number("chkdown", health.downs);
        row.number("lastchg", health.changed.elapsed().as_secs());
        row.number("downtime", health.total_downtime(down).as_secs());
        row.text("check_status", health.status);
        if let Some(code) = health.code {
            row.number("check_code", u64::from(code));
        }
        if let Some(took) = health.duration {
            row.number("check_duration", took.as_millis() as u64);
        }
        row.text("check_desc", health.description);
        row.number("check_rise", u64::from(config.rise));
        row.number("check_fall", u64::from(config.fall));
    }
    row.text("addr", &config.addr.to_string());
    if let Some(cookie) = &config.cookie {
        row.text("cookie", cookie);
    }
    row
}

fn backend_row(backend: &BackendState, iid: u64) -> Row {
    let config = &backend.config;
    let c = &backend.counters;
    let mut row = Row::new(Kind::Backend, &config.name, "BACKEND");
    row.number("iid", iid);
    row.number("sid", 0);
    row.number("scur", u64::from(backend.active.load(Ordering::Relaxed)));
    row.traffic(c);
    row.backend_side(c, backend.queued(None), config.mode);
    let (active, backup) = backend.usable_counts();
    row.text("status", if active + backup > 0 { "UP" } else { "DOWN" });
    let weight: u32 = backend
        .servers
        .iter()
        .filter(|s| s.usable() && !s.config.backup)
        .map(|s| s.weight.load(Ordering::Relaxed))
        .sum();
    row.number("weight", u64::from(weight));
    row.number("act", active as u64);
    row.number("bck", backup as u64);
    row.text("algo", &algo_name(&config.balance));
    row
}

/// A server's `status` column, as HAProxy writes it.
fn server_status(server: &ServerState) -> &'static str {
    if server.maintenance.load(Ordering::Relaxed) {
        "MAINT"
    } else if !server.up.load(Ordering::Relaxed) {
        "DOWN"
    } else if server.drain.load(Ordering::Relaxed) {
        "DRAIN"
    } else if !server.config.check {
        "no check"
    } else {
        "UP"
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Http => "http",
        Mode::Tcp => "tcp",
    }
}

/// The `balance` keyword as HAProxy's `algo` column names it.
fn algo_name(balance: &Balance) -> String {
    match balance {
        Balance::RoundRobin => "roundrobin".to_owned(),
        Balance::StaticRr => "static-rr".to_owned(),
        Balance::LeastConn => "leastconn".to_owned(),
        Balance::First => "first".to_owned(),
        Balance::Source => "source".to_owned(),
        Balance::Uri => "uri".to_owned(),
        Balance::UrlParam(name) => format!("url_param({name})"),
        Balance::Hdr(name) => format!("hdr({name})"),
        Balance::Random(_) => "random".to_owned(),
    }
}

/// The rows as HAProxy's CSV: `# ` and the header, then one line per row, each ending in a
/// comma as HAProxy's do.
pub(in crate::balancer) fn csv(rows: &[Row]) -> String {
    let mut out = format!("# {CSV_COLUMNS},\n");
    for row in rows {
        for column in CSV_COLUMNS.split(',') {
            if let Some(value) = row.get(column) {
                let text = value.to_string();
                // HAProxy replaces the separator inside a field; names cannot hold one.
                out.push_str(&text.replace(',', " "));
            }
            out.push(',');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::log::LogSender;
    use crate::config::CheckedConfig;

    fn rows_of(text: &str) -> Vec<(String, String)> {
        let config = CheckedConfig::from_text("t.cfg", text).config.unwrap();
        let proxies = Proxies::new(&config, &LogSender::new().unwrap(), 1, None);
        rows(&proxies)
            .iter()
            .map(|r| (r.text_of("pxname"), r.text_of("svname")))
            .collect()
    }

    #[test]
    fn proxies_come_in_declaration_order_once_each() {
        let text =
            "defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n\
                    frontend web\n bind :80\n default_backend api\n\
                    backend api\n server a1 10.0.0.1:80\n\
                    backend web\n server w1 10.0.0.2:80\n";
        let got = rows_of(text);
        let expected = [
            ("web", "FRONTEND"),
            ("web", "w1"),
            ("web", "BACKEND"),
            ("api", "a1"),
            ("api", "BACKEND"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn every_csv_row_has_every_column() {
        let text =
            "defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n\
                    listen web\n bind :80\n server w1 10.0.0.2:80 maxconn 5 maxqueue 2\n";
        let config = CheckedConfig::from_text("t.cfg", text).config.unwrap();
        let proxies = Proxies::new(&config, &LogSender::new().unwrap(), 1, None);
        let csv = csv(&rows(&proxies));
        let columns = CSV_COLUMNS.split(',').count();
        for line in csv.lines() {
            assert_eq!(line.matches(',').count(), columns, "{line}");
        }
        let server = csv.lines().find(|l| l.starts_with("web,w1,")).unwrap();
        let fields: Vec<&str> = server.split(',').collect();
        assert_eq!((fields[6], fields[25]), ("5", "2"), "slim and qlimit");
    }
}
