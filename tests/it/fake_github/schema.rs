//! Request bodies checked the way GitHub's JSON schemas check them, with GitHub's 422 messages.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use super::message;

/// A handler's answer: `Err` is a refusal, so that checks can use `?`.
pub type Reply = Result<Response, Response>;

pub type Object = Map<String, Value>;

/// GitHub's answer to a body its schema refuses.
pub fn invalid(detail: &str) -> Response {
    message(StatusCode::UNPROCESSABLE_ENTITY, &format!("Invalid request.\n\n{detail}"))
}

/// The body as a JSON object; an empty body counts as `{}` where GitHub allows none.
pub fn object(body: &[u8], empty_ok: bool) -> Result<Object, Response> {
    if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Object::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(invalid("Invalid input: an object is expected.")),
        Err(_) => Err(message(StatusCode::BAD_REQUEST, "Problems parsing JSON")),
    }
}

/// Refuses a key the schema does not name.
pub fn permitted(object: &Object, keys: &[&str]) -> Result<(), Response> {
    match object.keys().find(|key| !keys.contains(&key.as_str())) {
        Some(key) => Err(invalid(&format!("\"{key}\" is not a permitted key."))),
        None => Ok(()),
    }
}

pub fn required<'a>(object: &'a Object, key: &str) -> Result<&'a str, Response> {
    string(object, key)?.ok_or_else(|| invalid(&format!("\"{key}\" wasn't supplied.")))
}

pub fn string<'a>(object: &'a Object, key: &str) -> Result<Option<&'a str>, Response> {
    match object.get(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(not_a(key, other, "string")),
    }
}

/// A string that must be one of `allowed`.
pub fn one_of<'a>(
    object: &'a Object,
    key: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, Response> {
    let Some(value) = string(object, key)? else { return Ok(None) };
    if allowed.contains(&value) {
        return Ok(Some(value));
    }
    let list = allowed.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
    Err(invalid(&format!("For 'properties/{key}', \"{value}\" is not one of [{list}].")))
}

pub fn boolean(object: &Object, key: &str) -> Result<(), Response> {
    match object.get(key) {
        None | Some(Value::Bool(_)) => Ok(()),
        Some(other) => Err(not_a(key, other, "boolean")),
    }
}

pub fn strings(object: &Object, key: &str) -> Result<Option<Vec<String>>, Response> {
    let Some(value) = object.get(key) else { return Ok(None) };
    let items = value.as_array().filter(|items| items.iter().all(Value::is_string));
    let items = items.ok_or_else(|| not_a(key, value, "array of strings"))?;
    Ok(Some(items.iter().filter_map(|item| item.as_str().map(String::from)).collect()))
}

/// A string of at most `max_chars` characters.
pub fn bounded(object: &Object, key: &str, max_chars: usize) -> Result<(), Response> {
    let Some(text) = string(object, key)? else { return Ok(()) };
    let chars = text.chars().count();
    if chars > max_chars {
        let detail = format!("Only {max_chars} characters are allowed; {chars} were supplied.");
        return Err(invalid(&detail));
    }
    Ok(())
}

/// An ISO 8601 UTC timestamp, as GitHub's `YYYY-MM-DDTHH:MM:SSZ`.
pub fn timestamp(object: &Object, key: &str) -> Result<(), Response> {
    let Some(text) = string(object, key)? else { return Ok(()) };
    humantime::parse_rfc3339(text)
        .map(drop)
        .map_err(|_| invalid(&format!("For 'properties/{key}', \"{text}\" is not a timestamp.")))
}

fn not_a(key: &str, value: &Value, kind: &str) -> Response {
    invalid(&format!("For 'properties/{key}', {value} is not a {kind}."))
}
