//! One `match` expression, compiled and checked once: parsed by the CEL
//! environment Dapr uses, its identifiers checked, and the event fields it
//! reads collected so that evaluation converts only those.

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::{Env, Program};
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

/// The one variable a routing expression sees: the CloudEvent.
pub const EVENT_VARIABLE: &str = "event";

/// CEL's type identifiers, which an expression may name (`type(x) == int`).
const TYPE_IDENTIFIERS: [&str; 11] = [
    "bool",
    "bytes",
    "double",
    "dyn",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
];

/// Standard CEL with its macros (`has`, `exists`, …) and without the
/// optional-value syntax, which Dapr's environment does not accept either.
/// Built once: compiling and evaluating only borrow it.
pub static CEL_ENV: LazyLock<Arc<Env>> =
    LazyLock::new(|| Arc::new(Env::stdlib().with_optional_support(false)));

/// Which parts of the event expressions read. A field path that an
/// expression only selects through (`event.data.price` reads `data` only
/// for its `price`) needs just that field; anything used as a value needs
/// its whole subtree.
#[derive(Debug, Clone, PartialEq)]
pub enum Reads {
    /// The whole value.
    Whole,
    /// Only these fields of it (if it is an object; anything else whole).
    Fields(BTreeMap<String, Reads>),
}

impl Reads {
    /// Reads nothing yet.
    pub fn nothing() -> Reads {
        Reads::Fields(BTreeMap::new())
    }

    /// Adds the whole subtree at `path` (the root for an empty path).
    fn add(&mut self, path: &[&str]) {
        let Reads::Fields(fields) = self else {
            return;
        };
        match path.split_first() {
            None => *self = Reads::Whole,
            Some((first, rest)) => fields
                .entry((*first).to_owned())
                .or_insert_with(Reads::nothing)
                .add(rest),
        }
    }
}

/// Parses one `match` expression and checks its identifiers: `None` for an
/// empty one (always true, as in Dapr), an error for a syntax error or an
/// identifier other than `event`. For checking a resource before any event.
pub fn compile_condition(condition: &str) -> Result<Option<Program>, String> {
    compile(condition, &mut Reads::nothing())
}

/// [`compile_condition`], adding the event fields the expression reads to `reads`.
pub fn compile(condition: &str, reads: &mut Reads) -> Result<Option<Program>, String> {
    let condition = condition.trim();
    if condition.is_empty() {
        return Ok(None);
    }
    let program = CEL_ENV.compile(condition).map_err(|errors| {
        errors
            .errors
            .iter()
            .map(|error| format!("{}:{}: {}", error.pos.0, error.pos.1, error.msg))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let mut walk = Walk {
        bound: Vec::new(),
        unknown: None,
        reads,
    };
    walk.expr(program.expression());
    match walk.unknown {
        Some(name) => Err(format!(
            "unknown variable `{name}` (the event is `{EVENT_VARIABLE}`)"
        )),
        None => Ok(Some(program)),
    }
}

/// One pass over an expression's syntax tree.
struct Walk<'e, 'r> {
    /// Variables bound by the enclosing macros (`exists(x, …)` binds `x`).
    bound: Vec<&'e str>,
    /// The first identifier that is none of `event`, a type name or a bound variable.
    unknown: Option<&'e str>,
    reads: &'r mut Reads,
}

impl<'e> Walk<'e, '_> {
    fn expr(&mut self, expr: &'e IdedExpr) {
        match &expr.expr {
            Expr::Ident(name) => self.ident(name, &[]),
            Expr::Select(_) => match self.event_path(expr) {
                Some((root, path)) => self.ident(root, &path),
                None => {
                    if let Expr::Select(select) = &expr.expr {
                        self.expr(&select.operand);
                    }
                }
            },
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    self.expr(target);
                }
                call.args.iter().for_each(|arg| self.expr(arg));
            }
            Expr::List(list) => list.elements.iter().for_each(|item| self.expr(item)),
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(entry) = &entry.expr {
                        self.expr(&entry.key);
                        self.expr(&entry.value);
                    }
                }
            }
            Expr::Struct(object) => {
                for entry in &object.entries {
                    if let EntryExpr::StructField(field) = &entry.expr {
                        self.expr(&field.value);
                    }
                }
            }
            Expr::Comprehension(loop_) => {
                self.expr(&loop_.iter_range);
                self.expr(&loop_.accu_init);
                let depth = self.bound.len();
                self.bound.push(&loop_.iter_var);
                self.bound.extend(loop_.iter_var2.as_deref());
                self.bound.push(&loop_.accu_var);
                self.expr(&loop_.loop_cond);
                self.expr(&loop_.loop_step);
                self.expr(&loop_.result);
                self.bound.truncate(depth);
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    /// An identifier, used through the field selections `path`.
    fn ident(&mut self, name: &'e str, path: &[&'e str]) {
        if self.bound.contains(&name) || name.starts_with('@') {
            return;
        }
        if name == EVENT_VARIABLE {
            self.reads.add(path);
        } else if !TYPE_IDENTIFIERS.contains(&name) && self.unknown.is_none() {
            self.unknown = Some(name);
        }
    }

    /// For a chain of field selections on an identifier (`event.data.price`,
    /// `has(event.data.x)`): the identifier and the fields, outermost first.
    fn event_path(&self, mut expr: &'e IdedExpr) -> Option<(&'e str, Vec<&'e str>)> {
        let mut fields = Vec::new();
        loop {
            match &expr.expr {
                Expr::Select(select) => {
                    fields.push(select.field.as_str());
                    expr = &select.operand;
                }
                Expr::Ident(name) => {
                    fields.reverse();
                    return Some((name, fields));
                }
                _ => return None,
            }
        }
    }
}
