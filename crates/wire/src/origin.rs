//! The Graph API origin the connector calls, and how a host routes it elsewhere (a proxy, a
//! simulator) without touching any other destination.

use std::borrow::Cow;

/// The Graph API origin every connector request names.
pub const GRAPH_ORIGIN: &str = "https://graph.facebook.com";

/// `url` with its origin [`GRAPH_ORIGIN`] replaced by `base` (e.g. `http://127.0.0.1:8080`);
/// URLs of other origins, and every URL when `base` is `None`, are returned unchanged.
pub fn rewrite_origin<'a>(url: &'a str, base: Option<&str>) -> Cow<'a, str> {
    let Some(base) = base else { return Cow::Borrowed(url) };
    match url.strip_prefix(GRAPH_ORIGIN) {
        // Only the whole origin: `https://graph.facebook.com.example` is another host.
        Some(rest) if rest.is_empty() || rest.starts_with(['/', '?', '#']) => {
            Cow::Owned(format!("{}{rest}", base.trim_end_matches('/')))
        }
        _ => Cow::Borrowed(url),
    }
}

/// The host name of an absolute URL (`[::1]` without its brackets, no port, no user info).
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(stripped) = authority.strip_prefix('[') {
        return stripped.split(']').next();
    }
    Some(authority.split(':').next().unwrap_or(authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_graph_origin_is_rewritten() {
        let url = "https://graph.facebook.com/v25.0/act_1/campaigns?limit=2";
        assert_eq!(
            rewrite_origin(url, Some("http://127.0.0.1:8080/")),
            "http://127.0.0.1:8080/v25.0/act_1/campaigns?limit=2"
        );
        assert_eq!(rewrite_origin(url, None), url);
        assert_eq!(rewrite_origin("https://graph.facebook.com?x=1", Some("http://h")), "http://h?x=1");
        let look_alike = "https://graph.facebook.com.example/v25.0/me";
        assert_eq!(rewrite_origin(look_alike, Some("http://h")), look_alike);
        assert_eq!(
            rewrite_origin("https://scontent.xx.fbcdn.net/t.png", Some("http://h")),
            "https://scontent.xx.fbcdn.net/t.png"
        );
    }

    #[test]
    fn finds_the_host_of_a_url() {
        assert_eq!(url_host("https://graph.facebook.com/v25.0/x"), Some("graph.facebook.com"));
        assert_eq!(url_host("http://u:p@127.0.0.1:8080/x"), Some("127.0.0.1"));
        assert_eq!(url_host("http://[::1]:9/x"), Some("::1"));
        assert_eq!(url_host("not a url"), None);
    }
}
