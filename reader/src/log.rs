//! The reader's log: one JSON line per event on stderr (journald).

use serde_json::{Map, Value};

/// Writes `{"event": event, ...fields}`.
pub fn event(event: &str, fields: &[(&str, Value)]) {
    let mut m = Map::new();
    m.insert("event".into(), Value::from(event));
    for (k, v) in fields {
        m.insert((*k).into(), v.clone());
    }
    eprintln!("{}", Value::Object(m));
}
