//! The CloudEvent as the CEL value `event`, built per event for the rules.
//!
//! Only the fields the table's rules read are converted (a rule on
//! `event.type` does not pay for a large `data`), and strings are borrowed,
//! not copied. What a rule sees is the same as with the whole event: a field
//! no rule reads is never looked at.
//!
//! JSON numbers become CEL doubles, as Dapr's Go JSON decoding makes them;
//! CEL compares doubles with int literals, so `event.data.qty == 3` holds.

use super::expression::{CEL_ENV, EVENT_VARIABLE, Reads};
use cel::Context;
use cel::common::types::{CelBool, CelDouble, CelList, CelMap, CelMapKey, CelNull, CelString};
use cel::common::value::Val;
use std::collections::HashMap;
use std::sync::Arc;

/// Nesting beyond this is not converted (serde_json refuses to parse deeper
/// documents anyway): rules reading such an event cannot be evaluated.
const MAX_DEPTH: usize = 128;

/// A context binding `event` to the parts of `event` that `reads` names.
pub fn context<'v>(event: &'v serde_json::Value, reads: &Reads) -> Result<Context<'v, 'v>, String> {
    let value = project(event, reads, 0)?;
    let mut context = Context::with_env(Arc::clone(&CEL_ENV));
    context.add_variable_as_val(EVENT_VARIABLE, value);
    Ok(context)
}

/// `value` with only the fields `reads` names, when it is an object.
fn project<'v>(
    value: &'v serde_json::Value,
    reads: &Reads,
    depth: usize,
) -> Result<Box<dyn Val + 'v>, String> {
    match (reads, value) {
        (Reads::Fields(wanted), serde_json::Value::Object(fields)) if depth <= MAX_DEPTH => {
            let mut map = HashMap::with_capacity(wanted.len());
            for (name, inner) in wanted {
                if let Some((name, field)) = fields.get_key_value(name) {
                    map.insert(
                        CelMapKey::from(name.as_str()),
                        project(field, inner, depth + 1)?,
                    );
                }
            }
            Ok(Box::new(CelMap::from(map)))
        }
        _ => whole(value, depth),
    }
}

/// All of `value` as a CEL value borrowing its strings.
fn whole(value: &serde_json::Value, depth: usize) -> Result<Box<dyn Val + '_>, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the event is nested deeper than {MAX_DEPTH} levels"
        ));
    }
    Ok(match value {
        serde_json::Value::Null => Box::new(CelNull),
        serde_json::Value::Bool(flag) => Box::new(CelBool::from(*flag)),
        serde_json::Value::Number(number) => {
            Box::new(CelDouble::from(number.as_f64().unwrap_or(f64::NAN)))
        }
        serde_json::Value::String(text) => Box::new(CelString::from(text.as_str())),
        serde_json::Value::Array(items) => Box::new(CelList::from(
            items
                .iter()
                .map(|item| whole(item, depth + 1))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        serde_json::Value::Object(fields) => {
            let mut map = HashMap::with_capacity(fields.len());
            for (name, field) in fields {
                map.insert(CelMapKey::from(name.as_str()), whole(field, depth + 1)?);
            }
            Box::new(CelMap::from(map))
        }
    })
}
