//! Keeping secrets out of printed text: the config's token and client secret, and tokens
//! inside URLs (Graph's `paging.next` links embed `access_token=`).

use serde_json::Value;

/// Removes every occurrence of the secrets from printed text.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Secrets shorter than 4 characters are ignored: redacting them would mangle ordinary text.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        Redactor { secrets: secrets.into_iter().filter(|s| s.len() >= 4).collect() }
    }

    /// Whether `text` holds a secret.
    pub fn finds_in(&self, text: &str) -> bool {
        self.secrets.iter().any(|s| text.contains(s.as_str()))
    }

    pub fn redact(&self, mut text: String) -> String {
        for s in &self.secrets {
            if text.contains(s.as_str()) {
                text = text.replace(s.as_str(), "**********");
            }
        }
        text
    }
}

/// The access token and client secret of a config document, wherever Airbyte's forms put them.
pub fn config_secrets(config: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(config) else { return Vec::new() };
    [&["credentials", "access_token"][..], &["access_token"], &["credentials", "client_secret"], &["client_secret"]]
        .into_iter()
        .filter_map(|path| path.iter().try_fold(&v, |cur, key| cur.get(*key))?.as_str().map(str::to_string))
        .collect()
}

/// Replaces the value of any `access_token` parameter in `text` with `***`, so URLs that Graph
/// hands back can be logged.
pub fn redact_token_params(text: &str) -> String {
    const KEY: &str = "access_token=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(KEY) {
        out.push_str(&rest[..pos + KEY.len()]);
        out.push_str("***");
        rest = &rest[pos + KEY.len()..];
        let end = rest
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace() || c == '\\')
            .unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_access_token_wherever_the_config_puts_it() {
        let config = r#"{"credentials":{"access_token":"EAAB-secret"},"client_secret":"cs-1234","access_token":"abc"}"#;
        let r = Redactor::new(config_secrets(config));
        assert_eq!(r.redact("token EAAB-secret and cs-1234, abc".into()), "token ********** and **********, abc");
        assert!(config_secrets("not json").is_empty());
    }

    #[test]
    fn redacts_tokens_inside_urls() {
        let s = redact_token_params("GET https://g/x?access_token=EAAsecret&limit=5 and access_token=zz");
        assert_eq!(s, "GET https://g/x?access_token=***&limit=5 and access_token=***");
    }
}
