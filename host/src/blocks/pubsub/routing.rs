//! Routing rules compiled once per subscription and evaluated per event.
//!
//! A subscription's `routes` pick the app path of each event: the rules in
//! order, the first whose CEL `match` holds for the CloudEvent giving the
//! path, else the default. Expressions are Dapr's: standard CEL (no
//! extensions) over one variable, `event`, the CloudEvent as a JSON object,
//! so `event.type == "order"`, `has(event.data.x)`, `event.data.price > 100`
//! or `event.source.startsWith("billing/")` work as they do in Dapr.
//!
//! The parts of the delivery hot path are split by job: [`expression`]
//! compiles and checks a rule once (and finds which event fields it reads),
//! [`event`] turns the CloudEvent into a CEL value per event (those fields
//! only), and [`RouteTable`] runs the rules in order.

mod event;
mod expression;
#[cfg(test)]
mod tests;

pub use expression::compile_condition;

use super::subscription::Routes;
use cel::{Context, Program, Value};
use expression::Reads;
use std::fmt;

/// A subscription's routes, ready to pick the path of each event.
#[derive(Debug)]
pub struct RouteTable {
    rules: Vec<CompiledRule>,
    default: Option<String>,
    /// The event fields any rule reads: the only ones converted per event.
    reads: Reads,
}

#[derive(Debug)]
struct CompiledRule {
    /// The expression as written, for messages.
    condition: String,
    /// `None` for a rule without `match`, which Dapr treats as always true.
    program: Option<Program>,
    path: String,
}

/// Why a rule could not be evaluated for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The rule's position in `routes.rules`.
    pub index: usize,
    /// The rule's expression as written.
    pub condition: String,
    /// What went wrong (a missing field, a type mismatch, a non-boolean result).
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "routes.rules[{}] (`{}`): {}",
            self.index, self.condition, self.message
        )
    }
}

impl std::error::Error for RuleError {}

/// What a rule that cannot be evaluated means for the search.
#[derive(Clone, Copy)]
enum OnError {
    /// Outrig's [`RouteTable::route`]: the rule is false, the next one is tried.
    CountAsFalse,
    /// Dapr's, [`RouteTable::try_route`]: the search fails.
    Stop,
}

impl RouteTable {
    /// Compiles every rule of `routes`; a bad expression is an error naming
    /// the rule (``routes.rules[1] (`…`): …``). Compile once per
    /// subscription, not per event.
    pub fn compile(routes: &Routes) -> Result<RouteTable, String> {
        let mut rules = Vec::with_capacity(routes.rules.len());
        let mut reads = Reads::nothing();
        for (index, rule) in routes.rules.iter().enumerate() {
            let condition = rule.condition.trim();
            let program = expression::compile(condition, &mut reads)
                .map_err(|message| format!("routes.rules[{index}] (`{condition}`): {message}"))?;
            rules.push(CompiledRule {
                condition: condition.to_owned(),
                program,
                path: rule.path.clone(),
            });
        }
        Ok(RouteTable {
            rules,
            default: routes.default.clone(),
            reads,
        })
    }

    /// The path for `event`: the first rule whose expression is true, else
    /// the default, else `None` (the event is for no path of the app). A rule
    /// that cannot be evaluated for this event (a field it reads is missing,
    /// a type mismatch, a result that is not a boolean) counts as false and
    /// the next rule is tried.
    ///
    /// Dapr instead stops at such a rule and fails the delivery (the event
    /// is dead-lettered or retried): [`RouteTable::try_route`] does that.
    pub fn route(&self, event: &serde_json::Value) -> Option<&str> {
        self.pick(event, OnError::CountAsFalse).unwrap_or_default()
    }

    /// The path for `event` as Dapr picks it: rules in order, the first
    /// true one wins, then the default, else `Ok(None)`; but a rule that
    /// cannot be evaluated stops the search with an error, which Dapr turns
    /// into a failed delivery (dead letter if configured, else retry).
    pub fn try_route(&self, event: &serde_json::Value) -> Result<Option<&str>, RuleError> {
        self.pick(event, OnError::Stop)
    }

    fn pick(
        &self,
        event: &serde_json::Value,
        on_error: OnError,
    ) -> Result<Option<&str>, RuleError> {
        // Converted for the first rule that reads the event, at most once.
        let mut context: Option<Result<Context<'_, '_>, String>> = None;
        for (index, rule) in self.rules.iter().enumerate() {
            let outcome = match &rule.program {
                None => Ok(true),
                Some(program) => {
                    match context.get_or_insert_with(|| event::context(event, &self.reads)) {
                        Ok(context) => evaluate(program, context),
                        Err(message) => Err(message.clone()),
                    }
                }
            };
            match (outcome, on_error) {
                (Ok(true), _) => return Ok(Some(&rule.path)),
                (Ok(false), _) => {}
                (Err(message), OnError::CountAsFalse) => tracing::debug!(
                    rule = index,
                    condition = %rule.condition,
                    error = %message,
                    "routing rule not evaluable for this event: counted as false"
                ),
                (Err(message), OnError::Stop) => {
                    return Err(RuleError {
                        index,
                        condition: rule.condition.clone(),
                        message,
                    });
                }
            }
        }
        Ok(self.default.as_deref())
    }
}

/// Whether `program` holds in `context`; `Err` when it cannot be evaluated
/// or does not give a boolean.
fn evaluate(program: &Program, context: &Context<'_, '_>) -> Result<bool, String> {
    match program.execute(context) {
        Ok(Value::Bool(result)) => Ok(result),
        Ok(other) => Err(format!(
            "the expression gave a {}, not a boolean",
            other.type_of()
        )),
        Err(error) => Err(error.to_string()),
    }
}
