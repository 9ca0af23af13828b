//! Dapr's state query language (`filter`, `sort`, `page`) translated to one
//! SQL statement over the jsonb `value` column.
//!
//! Field names are dotted paths into the JSON value and travel as `text[]`
//! parameters (`value #> $n`), so nothing from the query is ever spliced into
//! SQL text. Equality compares JSON values (so `1` matches `1.0` and `"1"`
//! does not); ordering comparisons take numbers only, as in Dapr, and compare
//! them numerically. Sorting uses jsonb's order. The page token is the row
//! offset, as Dapr issues it.

use serde_json::{Map, Value};

/// Filters nested deeper than this are refused rather than recursed into.
const MAX_DEPTH: usize = 32;

/// A query ready to run: SQL text and its text parameters in `$n` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    /// Selects [`crate::sql::COLUMNS`] of matching live rows.
    pub sql: String,
    /// The bound values, all in text form (typed by casts in `sql`).
    pub params: Vec<String>,
    /// Where the page starts and how long it is, for the next token.
    pub offset: u64,
    /// `None` when the query asks for every match.
    pub limit: Option<u64>,
}

/// Translates `query` (Dapr's JSON) for rows of `table` whose key starts with
/// `key_prefix`. Errors describe what is wrong with the query.
pub fn translate(table: &str, query: &str, key_prefix: &str) -> Result<Translated, String> {
    let query: Value =
        serde_json::from_str(query).map_err(|err| format!("query is not JSON: {err}"))?;
    let query = query.as_object().ok_or("query must be a JSON object")?;
    let mut builder = Builder {
        params: vec![key_prefix.to_string()],
    };
    let columns = crate::sql::COLUMNS;
    let mut sql = format!(
        "SELECT {columns} FROM {table} \
         WHERE starts_with(key, $1) AND (expiredate IS NULL OR expiredate > CURRENT_TIMESTAMP)"
    );
    if let Some(filter) = query
        .get("filter")
        .filter(|f| f.as_object().is_some_and(|f| !f.is_empty()))
    {
        sql += " AND ";
        sql += &builder.filter(filter, 0)?;
    }
    let mut order = Vec::new();
    for item in query.get("sort").map_or(Ok(&Vec::new()), |s| {
        s.as_array().ok_or("`sort` must be an array")
    })? {
        let key = item
            .get("key")
            .and_then(Value::as_str)
            .ok_or("each `sort` item needs a string `key`")?;
        let direction = match item
            .get("order")
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("ASC") => "ASC",
            Some("DESC") => "DESC",
            Some(other) => return Err(format!("sort order `{other}` is neither ASC nor DESC")),
        };
        order.push(format!("{} {direction}", builder.field(key)?));
    }
    // The key breaks ties, so pages do not overlap or skip rows.
    order.push("key ASC".into());
    sql += &format!(" ORDER BY {}", order.join(", "));
    let no_page = Map::new();
    let page = match query.get("page") {
        None => &no_page,
        Some(page) => page.as_object().ok_or("`page` must be an object")?,
    };
    let limit = match page.get("limit") {
        None => None,
        Some(limit) => Some(
            limit
                .as_u64()
                .ok_or("`page.limit` must be a non-negative integer")?,
        )
        .filter(|&l| l > 0),
    };
    let offset = match page
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        None => 0,
        Some(token) => token
            .parse()
            .map_err(|_| format!("page token `{token}` was not issued by this store"))?,
    };
    if let Some(limit) = limit {
        sql += &format!(" LIMIT {}", builder.bind(limit.to_string(), "bigint"));
    }
    sql += &format!(" OFFSET {}", builder.bind(offset.to_string(), "bigint"));
    Ok(Translated {
        sql,
        params: builder.params,
        offset,
        limit,
    })
}

/// Collects parameters while the SQL text is written.
struct Builder {
    params: Vec<String>,
}

impl Builder {
    /// Binds `value` and returns its placeholder, cast to `sql_type`.
    fn bind(&mut self, value: String, sql_type: &str) -> String {
        self.params.push(value);
        format!("${}::{sql_type}", self.params.len())
    }

    /// The jsonb at a dotted path of the value.
    fn field(&mut self, path: &str) -> Result<String, String> {
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(format!("field `{path}` is not a dotted path"));
        }
        let array = crate::sql::text_array(path.split('.'));
        Ok(format!("(value #> {})", self.bind(array, "text[]")))
    }

    fn filter(&mut self, filter: &Value, depth: usize) -> Result<String, String> {
        if depth > MAX_DEPTH {
            return Err("filter nested too deeply".into());
        }
        let (op, operand) = single_entry(filter, "a filter")?;
        match op.as_str() {
            "AND" | "OR" => {
                let items = operand.as_array().filter(|items| !items.is_empty());
                let items =
                    items.ok_or_else(|| format!("`{op}` needs a non-empty array of filters"))?;
                let parts = items
                    .iter()
                    .map(|item| self.filter(item, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(format!("({})", parts.join(&format!(" {op} "))))
            }
            "EQ" | "NEQ" => {
                let (path, value) = single_entry(operand, op)?;
                let sql_op = if op == "EQ" { "=" } else { "<>" };
                Ok(format!(
                    "{} {sql_op} {}",
                    self.field(path)?,
                    self.bind(value.to_string(), "jsonb")
                ))
            }
            "IN" => {
                let (path, values) = single_entry(operand, op)?;
                let values = values
                    .as_array()
                    .filter(|v| !v.is_empty())
                    .ok_or("`IN` needs a non-empty array")?;
                let field = self.field(path)?;
                let json = Value::Array(values.clone()).to_string();
                Ok(format!(
                    "{field} IN (SELECT jsonb_array_elements({}))",
                    self.bind(json, "jsonb")
                ))
            }
            "GT" | "GTE" | "LT" | "LTE" => {
                let (path, value) = single_entry(operand, op)?;
                let number = value
                    .as_number()
                    .ok_or_else(|| format!("`{op}` compares numbers only, not {value}"))?;
                let sql_op = match op.as_str() {
                    "GT" => ">",
                    "GTE" => ">=",
                    "LT" => "<",
                    _ => "<=",
                };
                let field = self.field(path)?;
                Ok(format!(
                    "(CASE WHEN jsonb_typeof({field}) = 'number' THEN ({field} #>> '{{}}')::numeric END) {sql_op} {}",
                    self.bind(number.to_string(), "numeric")
                ))
            }
            other => Err(format!("unknown filter `{other}`")),
        }
    }
}

/// The one `{"name": value}` entry an object must consist of.
fn single_entry<'a>(value: &'a Value, what: &str) -> Result<(&'a String, &'a Value), String> {
    match value
        .as_object()
        .map(|object| object.iter().collect::<Vec<_>>())
        .as_deref()
    {
        Some([(name, value)]) => Ok((name, value)),
        _ => Err(format!("{what} must be an object with exactly one entry")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_parameterised_sql() {
        let query = r#"{
            "filter": {"AND": [
                {"EQ": {"state": "CA"}},
                {"OR": [{"GT": {"person.age": 30}}, {"IN": {"person.org": ["a", "b'; --"]}}]}
            ]},
            "sort": [{"key": "person.age", "order": "desc"}],
            "page": {"limit": 2, "token": "4"}
        }"#;
        let translated = translate("state", query, "app||").expect("valid");
        let where_clause = translated
            .sql
            .split("CURRENT_TIMESTAMP) AND ")
            .nth(1)
            .unwrap_or_default();
        assert_eq!(
            where_clause,
            "((value #> $2::text[]) = $3::jsonb AND \
             ((CASE WHEN jsonb_typeof((value #> $4::text[])) = 'number' THEN ((value #> $4::text[]) #>> '{}')::numeric END) > $5::numeric \
             OR (value #> $6::text[]) IN (SELECT jsonb_array_elements($7::jsonb)))) \
             ORDER BY (value #> $8::text[]) DESC, key ASC LIMIT $9::bigint OFFSET $10::bigint"
        );
        let params = [
            "app||",
            r#"{"state"}"#,
            r#""CA""#,
            r#"{"person","age"}"#,
            "30",
            r#"{"person","org"}"#,
            r#"["a","b'; --"]"#,
            r#"{"person","age"}"#,
            "2",
            "4",
        ];
        assert_eq!(translated.params, params);
        assert_eq!((translated.offset, translated.limit), (4, Some(2)));
    }

    #[test]
    fn malformed_queries_are_refused() {
        let cases = [
            ("[]", "query must be a JSON object"),
            ("nope", "query is not JSON"),
            (
                r#"{"filter": {"EQ": {"a": 1}, "NEQ": {"b": 2}}}"#,
                "a filter must be an object with exactly one entry",
            ),
            (r#"{"filter": {"LIKE": {"a": 1}}}"#, "unknown filter `LIKE`"),
            (
                r#"{"filter": {"GT": {"a": "x"}}}"#,
                "`GT` compares numbers only",
            ),
            (
                r#"{"filter": {"IN": {"a": []}}}"#,
                "`IN` needs a non-empty array",
            ),
            (
                r#"{"filter": {"AND": []}}"#,
                "`AND` needs a non-empty array",
            ),
            (
                r#"{"filter": {"EQ": {"a..b": 1}}}"#,
                "field `a..b` is not a dotted path",
            ),
            (
                r#"{"sort": [{"key": "a", "order": "UP"}]}"#,
                "sort order `UP`",
            ),
            (r#"{"page": {"limit": -1}}"#, "`page.limit` must be"),
            (
                r#"{"page": {"token": "abc"}}"#,
                "page token `abc` was not issued",
            ),
        ];
        for (query, expected) in cases {
            match translate("state", query, "") {
                Err(message) => assert!(message.starts_with(expected), "{query}: {message}"),
                Ok(translated) => panic!("{query} was accepted: {}", translated.sql),
            }
        }
        let deep = format!(
            "{{\"filter\": {}{{\"EQ\": {{\"a\": 1}}}}{}}}",
            "{\"AND\": [".repeat(40),
            "]}".repeat(40)
        );
        assert_eq!(
            translate("state", &deep, "").err().as_deref(),
            Some("filter nested too deeply")
        );
    }
}
