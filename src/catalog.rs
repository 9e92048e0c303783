//! The configured catalog a `read` is given: which streams, which fields, which sync mode.

use crate::config::Config;
use crate::error::ConnectorError;
use crate::streams::{self, Stream};
use serde_json::Value;

/// Full refresh or incremental.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    FullRefresh,
    Incremental,
}

/// One selected stream.
#[derive(Clone, Debug)]
pub struct Selected {
    pub stream: Stream,
    pub sync_mode: SyncMode,
    /// The schema properties the catalog selected; empty means all.
    pub selected_fields: Vec<String>,
}

/// Parses a configured catalog against the streams the config offers.
pub fn parse(text: &str, config: &Config) -> Result<Vec<Selected>, ConnectorError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ConnectorError::config(format!("catalog: not valid JSON ({e}); pass a configured catalog")))?;
    let Some(entries) = v.get("streams").and_then(Value::as_array) else {
        return Err(ConnectorError::config(
            "catalog: expected an object with a \"streams\" list; pass a configured catalog",
        ));
    };
    let offered = streams::all_streams(config);
    let mut out: Vec<Selected> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(name) = entry.get("stream").and_then(|s| s.get("name")).and_then(Value::as_str) else {
            return Err(ConnectorError::config(format!("catalog.streams[{i}].stream.name: missing")));
        };
        let Some(stream) = offered.iter().find(|s| s.name() == name).cloned() else {
            return Err(ConnectorError::config(format!(
                "catalog.streams[{i}]: stream '{name}' is not offered by this config; run discover and use its catalog"
            )));
        };
        if out.iter().any(|s| s.stream.name() == name) {
            return Err(ConnectorError::config(format!("catalog.streams[{i}]: stream '{name}' is listed twice")));
        }
        let sync_mode = match entry.get("sync_mode").and_then(Value::as_str) {
            None | Some("full_refresh") => SyncMode::FullRefresh,
            Some("incremental") if stream.cursor_field().is_some() => SyncMode::Incremental,
            // A stream without a cursor is read in full, as Airbyte's CDK does: PyAirbyte
            // configures every stream `incremental`, full-refresh-only ones included.
            Some("incremental") => SyncMode::FullRefresh,
            Some(other) => {
                return Err(ConnectorError::config(format!(
                    "catalog.streams[{i}].sync_mode: '{other}' is not a sync mode; use full_refresh or incremental"
                )));
            }
        };
        let props = stream.properties();
        let selected_fields = entry
            .get("stream")
            .and_then(|s| s.get("json_schema"))
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .map(|p| p.keys().filter(|k| props.contains_key(*k)).cloned().collect())
            .unwrap_or_default();
        out.push(Selected { stream, sync_mode, selected_fields });
    }
    Ok(out)
}

/// A catalog selecting every stream the config offers, each in its best sync mode.
pub fn full_catalog(config: &Config) -> Value {
    let streams: Vec<Value> = streams::all_streams(config)
        .iter()
        .map(|s| {
            let incremental = s.cursor_field().is_some();
            serde_json::json!({
                "stream": s.catalog_entry(),
                "sync_mode": if incremental { "incremental" } else { "full_refresh" },
                "destination_sync_mode": "append",
            })
        })
        .collect();
    serde_json::json!({ "streams": streams })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn config() -> Config {
        let text = r#"{"account_ids": ["1"], "credentials": {"access_token": "t"}}"#;
        Config::parse(text, Timestamp::from_millis(1_781_517_600_000)).unwrap()
    }

    fn entry(name: &str, sync_mode: &str) -> Value {
        serde_json::json!({"stream": {"name": name}, "sync_mode": sync_mode, "destination_sync_mode": "append"})
    }

    #[test]
    fn incremental_on_a_stream_without_a_cursor_reads_it_in_full() {
        let catalog = serde_json::json!({"streams": [entry("ad_account", "incremental"), entry("ads", "incremental")]});
        let selected = parse(&catalog.to_string(), &config()).unwrap();
        let modes: Vec<(&str, SyncMode)> = selected.iter().map(|s| (s.stream.name(), s.sync_mode)).collect();
        assert_eq!(modes, [("ad_account", SyncMode::FullRefresh), ("ads", SyncMode::Incremental)]);
    }

    #[test]
    fn an_unknown_sync_mode_is_a_config_error_naming_it() {
        let catalog = serde_json::json!({"streams": [entry("ads", "sometimes")]});
        let err = parse(&catalog.to_string(), &config()).unwrap_err();
        assert!(format!("{err:?}").contains("'sometimes' is not a sync mode"), "{err:?}");
    }
}
