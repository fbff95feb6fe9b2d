//! The web console's files over real HTTP against the real binary (no
//! helper needed): the page and every file it loads are served with their
//! content types, security headers and validators; unknown files are the
//! JSON 404; API answers carry headers under which a browser runs nothing.
//! The console itself is driven in a browser by `tests/console/`.

mod support;

use std::path::Path;

use support::{raw, Gateway, Reply};

fn gateway() -> Gateway {
    Gateway::start(Path::new("/nonexistent/helper.sock"))
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} header in {:?}", r.headers))
}

/// The headers every console file carries.
fn assert_console_headers(r: &Reply, what: &str) {
    let csp = header(r, "content-security-policy");
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
    ] {
        assert!(csp.contains(part), "{what}: CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("unsafe"), "{what}: CSP {csp:?}");
    assert_eq!(header(r, "x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header(r, "referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header(r, "cache-control"), "no-cache", "{what}");
    let etag = header(r, "etag");
    assert!(
        etag.len() == 18 && etag.starts_with('"') && etag.ends_with('"'),
        "{what}: strong ETag {etag:?}"
    );
}

#[test]
fn the_page_and_every_file_it_loads_are_served_with_type_csp_and_etag() {
    let g = gateway();
    let r = g.get("/", None);
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    assert_console_headers(&r, "/");
    let page = text(&r);
    assert!(page.contains(r#"<script type="module" src="/console/app.js"></script>"#));

    // Every file the page names, and every module those import, and so on
    // (a module imported only by another module is loaded all the same).
    let mut names: Vec<String> = page
        .split("\"/console/")
        .skip(1)
        .filter_map(|p| p.split('"').next())
        .map(str::to_owned)
        .collect();
    let mut i = 0;
    while i < names.len() {
        let name = names[i].clone();
        i += 1;
        let r = g.get(&format!("/console/{name}"), None);
        assert_eq!(r.status, 200, "{name}: {}", text(&r));
        if name.ends_with(".js") {
            for import in text(&r)
                .split("from './")
                .skip(1)
                .filter_map(|p| p.split('\'').next())
            {
                if !names.iter().any(|n| n == import) {
                    names.push(import.to_owned());
                }
            }
        }
    }
    for module in ["table-model.js", "poll.js", "sse.js"] {
        assert!(names.iter().any(|n| n == module), "{module}: {names:?}");
    }
    for name in names {
        let r = g.get(&format!("/console/{name}"), None);
        assert_eq!(r.status, 200, "{name}: {}", text(&r));
        let want = match name.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected file type {other:?}"),
        };
        assert_eq!(header(&r, "content-type"), want, "{name}");
        assert_console_headers(&r, &name);
        assert!(!r.body.is_empty(), "{name} is empty");
    }
}

#[test]
fn a_matching_if_none_match_gets_304_and_head_gets_no_body() {
    let g = gateway();
    for path in ["/", "/console/style.css"] {
        let first = g.get(path, None);
        let etag = header(&first, "etag").to_owned();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nIf-None-Match: {etag}\r\n\r\n"
        );
        let r = raw(g.addr, req.as_bytes());
        assert_eq!(r.status, 304, "{path}");
        assert!(r.body.is_empty(), "{path}: {}", text(&r));
        assert_eq!(header(&r, "etag"), etag);
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nIf-None-Match: \"0000000000000000\"\r\n\r\n"
        );
        assert_eq!(raw(g.addr, req.as_bytes()).status, 200, "{path}");
    }
    let r = raw(
        g.addr,
        b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
}

#[test]
fn an_unknown_console_path_is_the_json_404_and_other_methods_405() {
    let g = gateway();
    for path in [
        "/console/nope.js",
        "/console/../Cargo.toml",
        "/console/app.js/x",
    ] {
        let r = g.get(path, None);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["code"], "route_not_found", "{path}");
    }
    let r = g.get("/console", None);
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (404, "route_not_found".into())
    );
    let r = g.send("POST", "/", None, "{}");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
}

#[test]
fn api_answers_carry_headers_under_which_a_browser_runs_nothing() {
    let g = gateway();
    let t = g.key("r", "read", &[]);
    for (path, token, status) in [
        ("/api/ps?limit=1", Some(t.as_str()), 200),
        ("/api/ps", None, 401),
        ("/healthz", None, 503),
    ] {
        let r = g.get(path, token);
        assert_eq!(r.status, status, "{path}: {}", text(&r));
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&r, "referrer-policy"), "no-referrer", "{path}");
        let csp = header(&r, "content-security-policy");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
    }
}
