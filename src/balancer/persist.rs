//! Cookie persistence (`cookie NAME insert|rewrite|prefix`, `server ... cookie VALUE`): a client
//! that presents a server's cookie goes back to that server while it is up, as HAProxy does,
//! and the third and fourth characters of the termination state say what happened to the
//! cookie (`--NI`: none in the request, inserted in the response; `--VN`: valid, nothing to
//! send; `--DI`: its server is down, redispatched and given a new one; `--II`: invalid).

use hyper::header::{HeaderMap, HeaderValue, CACHE_CONTROL, COOKIE, SET_COOKIE};

use super::backend::BackendState;
use crate::config::{CookieMode, CookiePersistence};

/// What the request's cookie said.
#[derive(Debug, Clone, Copy)]
pub(super) struct RequestCookie {
    /// The server it names, when that server may take the request.
    pub server: Option<usize>,
    /// HAProxy's third termination-state character: `N` none, `V` valid, `D` its server is
    /// down, `I` it names no server.
    pub state: u8,
}

/// Reads the persistence cookie of a request (and, with `indirect` in insert mode, removes
/// it: the server never sees it).
pub(super) fn read_request(
    cookie: &CookiePersistence,
    backend: &BackendState,
    headers: &mut HeaderMap,
) -> RequestCookie {
    let value = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == cookie.name)
        .map(|(_, value)| value.to_owned());
    if cookie.indirect && cookie.mode == CookieMode::Insert && value.is_some() {
        replace_request_cookie(headers, &cookie.name, None);
    }
    let Some(mut value) = value else {
        return RequestCookie {
            server: None,
            state: b'N',
        };
    };
    if cookie.mode == CookieMode::Prefix {
        // `SERVER~SESSION`: the server gets its own `SESSION` back.
        let Some((server, session)) = value.split_once('~') else {
            return RequestCookie {
                server: None,
                state: b'I',
            };
        };
        replace_request_cookie(headers, &cookie.name, Some(session));
        value = server.to_owned();
    }
    let named = backend
        .servers
        .iter()
        .position(|s| s.config.cookie.as_deref() == Some(value.as_str()));
    match named {
        Some(i) if backend.servers[i].reachable() => RequestCookie {
            server: Some(i),
            state: b'V',
        },
        Some(_) => RequestCookie {
            server: None,
            state: b'D',
        },
        None => RequestCookie {
            server: None,
            state: b'I',
        },
    }
}

/// Sets the response's cookie for the server that answered (`server_cookie`), unless the
/// client already had a valid one for it; HAProxy's fourth termination-state character: `I`
/// inserted, `R` rewritten, `N` nothing done.
pub(super) fn write_response(
    cookie: &CookiePersistence,
    server_cookie: Option<&str>,
    client_had_it: bool,
    headers: &mut HeaderMap,
) -> u8 {
    let Some(value) = server_cookie else {
        return b'N';
    };
    match cookie.mode {
        CookieMode::Insert => {
            // The server's own cookie of that name would fight ours (HAProxy removes it
            // unless `preserve`).
            remove_set_cookie(headers, &cookie.name);
            if client_had_it {
                return b'N';
            }
            let mut text = format!("{}={value}; path=/", cookie.name);
            if cookie.httponly {
                text.push_str("; HttpOnly");
            }
            if cookie.secure {
                text.push_str("; Secure");
            }
            let Ok(header) = HeaderValue::from_str(&text) else {
                return b'N';
            };
            headers.append(SET_COOKIE, header);
            // Keep whatever the server said (`no-store` is stricter); add `private` so no
            // shared cache keeps this client's cookie.
            let private = headers
                .get_all(CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("private") || v.contains("no-store"));
            if cookie.nocache && !private {
                headers.append(CACHE_CONTROL, HeaderValue::from_static("private"));
            }
            b'I'
        }
        CookieMode::Rewrite => rewrite_set_cookie(headers, &cookie.name, |_| value.to_owned()),
        CookieMode::Prefix => rewrite_set_cookie(headers, &cookie.name, |session| {
            format!("{value}~{session}")
        }),
    }
}

/// Removes `name=...` from the request's `Cookie` headers, dropping headers left empty.
/// Removes the request's cookie `name`, or gives it the value `with`.
fn replace_request_cookie(headers: &mut HeaderMap, name: &str, with: Option<&str>) {
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .map(str::trim)
                .filter_map(|pair| match pair.split_once('=') {
                    Some((n, _)) if n == name => with.map(|value| format!("{name}={value}")),
                    _ => Some(pair.to_owned()),
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|v| !v.is_empty())
        .collect();
    headers.remove(COOKIE);
    for value in kept {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(COOKIE, value);
        }
    }
}

/// The cookie name a `Set-Cookie` value sets.
fn set_cookie_name(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    Some(text.split_once('=')?.0.trim())
}

fn remove_set_cookie(headers: &mut HeaderMap, name: &str) {
    let kept: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| set_cookie_name(v) != Some(name))
        .cloned()
        .collect();
    headers.remove(SET_COOKIE);
    for value in kept {
        headers.append(SET_COOKIE, value);
    }
}

/// Gives the server's `Set-Cookie: NAME=...` the server's persistence value; `R` when one
/// was rewritten, `N` when the server set none.
/// Gives the server's `Set-Cookie: NAME=...` the value `new(old value)`, its attributes kept.
fn rewrite_set_cookie(headers: &mut HeaderMap, name: &str, new: impl Fn(&str) -> String) -> u8 {
    let mut rewritten = false;
    let values: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let pair_and_attributes = v
                .to_str()
                .ok()
                .filter(|_| set_cookie_name(v) == Some(name))
                .map(|text| text.split_once(';').unwrap_or((text, "")));
            match pair_and_attributes.map(|(pair, rest)| {
                let old = pair.split_once('=').map_or("", |(_, old)| old.trim());
                let sep = if rest.is_empty() { "" } else { ";" };
                HeaderValue::from_str(&format!("{name}={}{sep}{rest}", new(old)))
            }) {
                Some(Ok(new)) => {
                    rewritten = true;
                    new
                }
                _ => v.clone(),
            }
        })
        .collect();
    headers.remove(SET_COOKIE);
    for v in values {
        headers.append(SET_COOKIE, v);
    }
    if rewritten {
        b'R'
    } else {
        b'N'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persistence(mode: CookieMode) -> CookiePersistence {
        CookiePersistence {
            name: "SRV".into(),
            mode,
            indirect: true,
            nocache: true,
            httponly: true,
            secure: false,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn insert_replaces_the_servers_own_cookie_and_marks_the_response_private() {
        let mut h = headers(&[("set-cookie", "SRV=app; path=/"), ("set-cookie", "sid=1")]);
        let state = write_response(&persistence(CookieMode::Insert), Some("s1"), false, &mut h);
        assert_eq!(state, b'I');
        let set: Vec<_> = h
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(set, ["sid=1", "SRV=s1; path=/; HttpOnly"]);
        assert_eq!(h[CACHE_CONTROL], "private");
        // A client that already has it gets nothing new.
        let mut h = HeaderMap::new();
        let state = write_response(&persistence(CookieMode::Insert), Some("s1"), true, &mut h);
        assert_eq!((state, h.len()), (b'N', 0));
    }

    #[test]
    fn rewrite_keeps_the_servers_attributes() {
        let mut h = headers(&[("set-cookie", "SRV=abc; Path=/app; Secure")]);
        let state = write_response(&persistence(CookieMode::Rewrite), Some("s2"), false, &mut h);
        assert_eq!(state, b'R');
        assert_eq!(h[SET_COOKIE], "SRV=s2; Path=/app; Secure");
        let mut none = HeaderMap::new();
        let state = write_response(
            &persistence(CookieMode::Rewrite),
            Some("s2"),
            false,
            &mut none,
        );
        assert_eq!(state, b'N');
    }

    #[test]
    fn indirect_takes_the_cookie_out_of_the_request() {
        let mut h = headers(&[("cookie", "a=1; SRV=s1; b=2"), ("cookie", "SRV=s1")]);
        replace_request_cookie(&mut h, "SRV", None);
        let left: Vec<_> = h
            .get_all(COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(left, ["a=1; b=2"]);
    }

    #[test]
    fn prefix_mode_prefixes_the_servers_session_and_strips_it_again() {
        let prefix = persistence(CookieMode::Prefix);
        let mut h = headers(&[("set-cookie", "SRV=ab12; Path=/"), ("set-cookie", "x=1")]);
        assert_eq!(write_response(&prefix, Some("s2"), true, &mut h), b'R');
        let set: Vec<_> = h
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(set, ["SRV=s2~ab12; Path=/", "x=1"]);
        let mut h = headers(&[("cookie", "a=1; SRV=s2~ab12")]);
        replace_request_cookie(&mut h, "SRV", Some("ab12"));
        assert_eq!(h[COOKIE], "a=1; SRV=ab12");
    }
}
