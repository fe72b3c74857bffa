//! The live page's files, embedded in the binary: `gateway/ui/index.html`,
//! `app.js` and `app.css` (hand-written, no JavaScript toolchain, no
//! library, nothing fetched from another origin), served with a strict
//! Content-Security-Policy.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::HttpResponse;

/// The page: markup only; its script and style are the files below.
const INDEX_HTML: &str = include_str!("../../ui/index.html");
/// The page's script.
const APP_JS: &str = include_str!("../../ui/app.js");
/// The page's style.
const APP_CSS: &str = include_str!("../../ui/app.css");

/// Only same-origin files and requests; no inline script or style, no
/// plugins, no framing, forms post nowhere else.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// One of the page's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asset {
    /// `GET /ui`.
    Page,
    /// `GET /ui/app.js`.
    Script,
    /// `GET /ui/app.css`.
    Style,
}

impl Asset {
    /// The file's path under the server's root.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Asset::Page => "/ui",
            Asset::Script => "/ui/app.js",
            Asset::Style => "/ui/app.css",
        }
    }

    /// Every asset.
    pub(crate) const ALL: [Asset; 3] = [Asset::Page, Asset::Script, Asset::Style];

    fn body_and_type(self) -> (&'static str, &'static str) {
        match self {
            Asset::Page => (INDEX_HTML, "text/html; charset=utf-8"),
            Asset::Script => (APP_JS, "text/javascript; charset=utf-8"),
            Asset::Style => (APP_CSS, "text/css; charset=utf-8"),
        }
    }

    /// The file, with its security and cache headers. The files change
    /// only with the binary: the page is revalidated on every load (so a
    /// new version shows at once), its script and style kept for a minute.
    pub(crate) fn response(self) -> HttpResponse {
        let (body, content_type) = self.body_and_type();
        let cache = match self {
            Asset::Page => "no-cache",
            Asset::Script | Asset::Style => "public, max-age=60",
        };
        HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, content_type))
            .insert_header(("content-security-policy", CSP))
            .insert_header(("x-content-type-options", "nosniff"))
            .insert_header(("x-frame-options", "DENY"))
            .insert_header(("referrer-policy", "no-referrer"))
            .insert_header((CACHE_CONTROL, cache))
            .body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SVG namespace: a name in the script, never fetched.
    const SVG_NS: &str = "http://www.w3.org/2000/svg";

    fn files() -> [(&'static str, &'static str); 3] {
        [
            ("index.html", INDEX_HTML),
            ("app.js", APP_JS),
            ("app.css", APP_CSS),
        ]
    }

    #[test]
    fn no_file_assigns_inner_html_or_writes_markup_from_strings() {
        for (name, text) in files() {
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!text.contains(banned), "{name} uses `{banned}`");
            }
        }
    }

    #[test]
    fn no_file_names_another_origin() {
        for (name, text) in files() {
            let lower = text.to_ascii_lowercase();
            for scheme in ["http://", "https://", "ws://", "wss://", "//cdn", "@import"] {
                let mut rest = lower.as_str();
                while let Some(i) = rest.find(scheme) {
                    let tail = &rest[i..];
                    assert!(
                        tail.starts_with(SVG_NS),
                        "{name} names another origin: {}",
                        &tail[..tail.len().min(60)]
                    );
                    rest = &tail[scheme.len()..];
                }
            }
        }
    }

    /// Whether `html` has an attribute such as ` onclick=`.
    fn has_inline_handler(html: &str) -> bool {
        let lower = html.to_ascii_lowercase();
        lower.match_indices(" on").any(|(i, _)| {
            let rest = &lower[i + 3..];
            let name_len = rest.chars().take_while(char::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        })
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_loads_its_own_files() {
        assert!(INDEX_HTML.contains(r#"<script src="/ui/app.js" defer></script>"#));
        assert!(INDEX_HTML.contains(r#"<link rel="stylesheet" href="/ui/app.css">"#));
        assert_eq!(INDEX_HTML.matches("<script").count(), 1);
        assert!(!INDEX_HTML.contains("<style"));
        assert!(!INDEX_HTML.contains(" style="));
        assert!(!has_inline_handler(INDEX_HTML), "no inline event handlers");
        // The DOM contract the browser test relies on (docs/live-view.md).
        for id in [
            r#"<input id="token" type="password""#,
            r#"<button id="token-submit""#,
            r#"<section id="nodes""#,
            r#"<section id="services""#,
            r#"<section id="traces""#,
            r#"<section id="trace-detail""#,
        ] {
            assert!(INDEX_HTML.contains(id), "{id}");
        }
    }

    #[test]
    fn the_token_never_goes_into_a_url_or_a_log() {
        assert!(!APP_JS.contains("console.log"));
        assert!(!APP_JS.contains("?token") && !APP_JS.contains("&token"));
        assert!(APP_JS.contains("sessionStorage"));
        assert!(!APP_JS.contains("localStorage"));
        assert!(!APP_JS.contains("EventSource"));
    }
}
