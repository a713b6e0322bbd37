//! Reading fields out of a back end's JSON by configurable paths, so one
//! connector fits many back ends.
//!
//! A path is a JSON Pointer (`/data/0/name`) or the same in dots
//! (`data.0.name`); the empty string is the whole document.

use serde_json::Value;

/// The value at `path`, if present and not `null`.
pub fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let found = if path.is_empty() || path.starts_with('/') {
        value.pointer(path)
    } else {
        value.pointer(&format!("/{}", path.replace('.', "/")))
    };
    found.filter(|v| !v.is_null())
}

/// The value at `path` as text: strings as they are, numbers and booleans
/// written out; `None` for objects, arrays and absent values.
pub fn text(value: &Value, path: &str) -> Option<String> {
    match at(value, path)? {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The value at `path` as a flag: `true`, non-zero numbers and the strings
/// `true`, `yes`, `1`, `y` (any case) are true.
pub fn flag(value: &Value, path: &str) -> bool {
    match at(value, path) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => {
            matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "1" | "y")
        }
        _ => false,
    }
}

/// The value at `path` as an unsigned integer (numbers or numeric strings).
pub fn unsigned(value: &Value, path: &str) -> Option<u64> {
    match at(value, path)? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Fills `{name}` placeholders in `template` with URL-escaped values.
pub fn fill_template(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), &crate::http::url_escape(value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_work_as_pointers_and_dots() {
        let doc = json!({"data": [{"name": "Ana", "vip": "yes", "orders": 3, "none": null}]});
        assert_eq!(text(&doc, "/data/0/name").as_deref(), Some("Ana"));
        assert_eq!(text(&doc, "data.0.name").as_deref(), Some("Ana"));
        assert_eq!(text(&doc, "data.0.orders").as_deref(), Some("3"));
        assert!(flag(&doc, "data.0.vip"));
        assert_eq!(text(&doc, "data.0.none"), None);
        assert_eq!(unsigned(&doc, "data.0.orders"), Some(3));
    }

    #[test]
    fn templates_escape_values() {
        assert_eq!(
            fill_template("/c?phone={phone}", &[("phone", "+49 151")]),
            "/c?phone=%2B49%20151"
        );
    }
}
