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
    let v: Value = match serde_json::from_str::<lean::Catalog>(text) {
        Ok(lean) => lean.into_value(),
        // Not of the usual shape: the whole document, for errors that say where it goes wrong.
        Err(_) => serde_json::from_str(text)
            .map_err(|e| ConnectorError::config(format!("catalog: not valid JSON ({e}); pass a configured catalog")))?,
    };
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

/// The parts of a configured catalog `parse` reads, and nothing else. A catalog of every stream
/// is ~0.7 MB of JSON schemas; as a `Value` tree it took ~8 MiB of the guest's memory, more than
/// the rest of a sync. Property names are kept, their schemas skipped.
mod lean {
    use serde::Deserialize;
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    use serde_json::{Map, Value};
    use std::fmt;

    #[derive(Deserialize)]
    pub struct Catalog {
        streams: Vec<Entry>,
    }

    #[derive(Deserialize)]
    struct Entry {
        stream: Option<Stream>,
        sync_mode: Option<Value>,
    }

    #[derive(Deserialize)]
    struct Stream {
        name: Option<Value>,
        json_schema: Option<Schema>,
    }

    #[derive(Deserialize)]
    struct Schema {
        properties: Option<Keys>,
    }

    /// An object's keys, its values skipped.
    struct Keys(Vec<String>);

    impl<'de> Deserialize<'de> for Keys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct KeysVisitor;
            impl<'de> Visitor<'de> for KeysVisitor {
                type Value = Keys;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((k, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                        keys.push(k);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(KeysVisitor)
        }
    }

    impl Catalog {
        /// The same document as `parse` would see it, with every property's schema null.
        pub fn into_value(self) -> Value {
            let streams = self.streams.into_iter().map(|e| {
                let mut entry = Map::new();
                if let Some(s) = e.stream {
                    let mut stream = Map::new();
                    if let Some(name) = s.name {
                        stream.insert("name".into(), name);
                    }
                    if let Some(schema) = s.json_schema {
                        let mut js = Map::new();
                        if let Some(Keys(keys)) = schema.properties {
                            js.insert(
                                "properties".into(),
                                Value::Object(keys.into_iter().map(|k| (k, Value::Null)).collect()),
                            );
                        }
                        stream.insert("json_schema".into(), Value::Object(js));
                    }
                    entry.insert("stream".into(), Value::Object(stream));
                }
                if let Some(mode) = e.sync_mode {
                    entry.insert("sync_mode".into(), mode);
                }
                Value::Object(entry)
            });
            serde_json::json!({ "streams": streams.collect::<Vec<_>>() })
        }
    }
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
    fn the_lean_reading_keeps_exactly_what_parse_reads() {
        let full = full_catalog(&config());
        let mut expected = full.clone();
        for e in expected["streams"].as_array_mut().unwrap() {
            e.as_object_mut().unwrap().remove("destination_sync_mode");
            let stream = e["stream"].as_object_mut().unwrap();
            stream.retain(|k, _| k == "name" || k == "json_schema");
            let schema = stream["json_schema"].as_object_mut().unwrap();
            schema.retain(|k, _| k == "properties");
            for v in schema["properties"].as_object_mut().unwrap().values_mut() {
                *v = Value::Null;
            }
        }
        let lean: lean::Catalog = serde_json::from_value(full.clone()).unwrap();
        assert_eq!(lean.into_value(), expected);
        // A selection of two properties reads the same both ways.
        let mut narrow = full;
        narrow["streams"][0]["stream"]["json_schema"]["properties"] = serde_json::json!({"id": {}, "name": {}});
        let picked: Vec<Vec<String>> =
            parse(&narrow.to_string(), &config()).unwrap().into_iter().map(|s| s.selected_fields).take(2).collect();
        assert_eq!(picked[0], ["id", "name"]);
        assert!(picked[1].len() > 2);
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
