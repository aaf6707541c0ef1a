//! A configuration as the REST port and the CLI show it: every key replaced, whatever section
//! it is in.

use serde_json::Value;

/// Fields whose values are secrets.
const SECRET_FIELDS: [&str; 3] = ["key", "psk", "token"];
pub const REDACTED: &str = "<redacted>";

/// `text` (a configuration that parsed) with every secret replaced by `<redacted>`.
pub fn redact(text: &str) -> Result<Value, serde_json::Error> {
    let mut v: Value = serde_json::from_str(text)?;
    walk(&mut v);
    Ok(v)
}

fn walk(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if SECRET_FIELDS.contains(&k.as_str()) {
                    *x = Value::String(REDACTED.into());
                } else {
                    walk(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(walk),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_gone_wherever_they_are() {
        let text = r#"{"manual_sas": [{"spi": 1, "key": "00112233"}],
                       "ike": {"gateways": [{"psk": "s3cret"}]}, "x": ["key"]}"#;
        let v = super::redact(text).unwrap().to_string();
        assert!(!v.contains("00112233") && !v.contains("s3cret"), "{v}");
        assert_eq!(v.matches(super::REDACTED).count(), 2);
        assert!(v.contains("[\"key\"]"), "a value named key stays: {v}");
    }
}
