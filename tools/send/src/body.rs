//! `--set path=value`: one value of a JSON body changed in place. Every other byte stays as it was (numbers
//! keep their text: `1500.00` is never rewritten as `1500.0`), so the body is the provider's body with one
//! change, then signed as the provider would sign it.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

/// `body` with the value at `assignment`'s path (`a.b`, `items.0.c`, `items[0].c`) replaced. A string value
/// stays a string; another value is written as given if it is JSON (`-1`, `true`, `null`), else as a string.
pub fn set(body: &str, assignment: &str) -> Result<String, String> {
    let (path, value) = assignment
        .split_once('=')
        .ok_or_else(|| format!("--set {assignment}: expected PATH=VALUE, e.g. amount=250.00"))?;
    let steps: Vec<String> =
        path.replace('[', ".").replace(']', "").split('.').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if steps.is_empty() {
        return Err(format!("--set {assignment}: the path is empty"));
    }
    let root: &RawValue = serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let mut current = root;
    for (depth, step) in steps.iter().enumerate() {
        let here = || if depth == 0 { "the body".to_owned() } else { steps[..depth].join(".") };
        let text = current.get().trim_start();
        current = if text.starts_with('{') {
            let members: BTreeMap<String, &RawValue> =
                serde_json::from_str(current.get()).map_err(|e| format!("{}: {e}", here()))?;
            let names = members.keys().cloned().collect::<Vec<_>>().join(", ");
            members
                .get(step)
                .copied()
                .ok_or_else(|| format!("--set {path}: {} has no `{step}` (it has {names})", here()))?
        } else if text.starts_with('[') {
            let items: Vec<&RawValue> = serde_json::from_str(current.get()).map_err(|e| format!("{}: {e}", here()))?;
            let index: usize =
                step.parse().map_err(|_| format!("--set {path}: {} is an array: `{step}` is no index", here()))?;
            items.get(index).copied().ok_or_else(|| format!("--set {path}: {} has {} item(s)", here(), items.len()))?
        } else {
            return Err(format!("--set {path}: {} is a value, not an object or array", here()));
        };
    }
    let old = current.get();
    let start = old.as_ptr() as usize - body.as_ptr() as usize;
    let new = if old.starts_with('"') || serde_json::from_str::<serde_json::Value>(value).is_err() {
        serde_json::to_string(value).expect("a string serializes")
    } else {
        value.to_owned()
    };
    Ok(format!("{}{new}{}", &body[..start], &body[start + old.len()..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_changes_and_every_other_byte_stays() {
        let body = "{\"amount\": 1500.00, \"data\": {\"status\": \"SUCCESS\", \"items\": [{\"tx\": 1}, {\"tx\": 2}]},\n \"fee\": 1e1}";
        assert_eq!(
            set(body, "data.status=FAILED").unwrap(),
            "{\"amount\": 1500.00, \"data\": {\"status\": \"FAILED\", \"items\": [{\"tx\": 1}, {\"tx\": 2}]},\n \"fee\": 1e1}"
        );
        assert_eq!(set(body, "amount=2000.50").unwrap(), body.replace("1500.00", "2000.50"));
        assert_eq!(set(body, "data.items[1].tx=-1").unwrap(), body.replace("{\"tx\": 2}", "{\"tx\": -1}"));
        assert_eq!(set(body, "data.items.0.tx=x").unwrap(), body.replace("{\"tx\": 1}", "{\"tx\": \"x\"}"));
        // A string stays a string, even when the new text would be a number.
        assert_eq!(set(body, "data.status=42").unwrap(), body.replace("\"SUCCESS\"", "\"42\""));
        assert!(set(body, "data.missing=1").unwrap_err().contains("data has no `missing` (it has items, status)"));
        assert!(set(body, "data.items.5.tx=1").unwrap_err().contains("has 2 item(s)"));
        assert!(set(body, "amount.x=1").unwrap_err().contains("is a value"));
        assert!(set(body, "amount").unwrap_err().contains("expected PATH=VALUE"));
    }
}
