//! The typed SCIM filter compiled to SQL (DESIGN 8), for PostgreSQL and SQLite. Column
//! names come from a fixed mapping and JSON paths are bound values, so no text of the
//! request reaches the statement; every literal is a bound value. Hot attributes use their
//! columns; the others read the `search` document (case-insensitive strings folded in
//! Rust), multi-valued attributes through `EXISTS` over their elements, `members` and
//! `groups` through the membership table. Every test is two-valued (a missing attribute
//! counts as false), so `not` means what the reference evaluator says. Tests are left
//! three-valued (and so index-friendly) and a NULL is turned into false only where it is
//! negated: for AND/OR, "true in Kleene logic" equals "true when unknown is false".

use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement, Value};

use super::StoreError;
use super::entities::group;
use crate::domain::{Membership, ResourceKind, StoredGroup, StoredUser, TenantId};
use crate::scim::fold::fold;
use crate::scim::query::{Attr, CmpOp, Filter, Literal, Op, Relation, Sort, SortOrder};
use crate::scim::schema::AttrType;

/// The column holding a singular attribute of `kind`'s table, and whether it holds the
/// folded value.
fn column(kind: ResourceKind, path: &[String]) -> Option<&'static str> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match (kind, p.as_slice()) {
        (_, ["id"]) => Some("id"),
        (_, ["externalId"]) => Some("external_id"),
        (_, ["meta", "created"]) => Some("created_at"),
        (_, ["meta", "lastModified"]) => Some("updated_at"),
        (ResourceKind::User, ["userName"]) => Some("user_name_ci"),
        (_, ["displayName"]) => Some("display_name_ci"),
        _ => None,
    }
}

/// Where attribute paths are resolved.
#[derive(Clone, Copy)]
enum Scope {
    Root(ResourceKind),
    /// An element of a JSON array, bound to alias `e`.
    Element,
    /// A row of the membership relation.
    Related(Relation),
}

/// SQL text with its bound values, placeholders in the backend's style.
struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
    /// The name the root table goes by, when not its own (a CTE of its rows).
    root_alias: Option<&'static str>,
}

impl Sql {
    fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            text: String::new(),
            values: Vec::new(),
            root_alias: None,
        }
    }

    /// How SQL names the root table's rows.
    fn root(&self, table: ResourceKind) -> &'static str {
        self.root_alias.unwrap_or(table.table())
    }

    fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Numbered on both backends (`$n`, SQLite `?n`), so that text written with `$1…`
    /// placeholders can join it (sqlx numbers bare `?` on its own and would not).
    fn bind(&mut self, v: impl Into<Value>) -> &mut Self {
        self.values.push(v.into());
        let n = self.values.len();
        match self.backend {
            DbBackend::Postgres => self.text.push_str(&format!("${n}")),
            _ => self.text.push_str(&format!("?{n}")),
        }
        self
    }

    fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }

    fn pg(&self) -> bool {
        self.backend == DbBackend::Postgres
    }

    /// A JSON path as SQLite wants it: `$."name"."givenName"` (keys quoted: URNs have dots).
    fn sqlite_path(path: &[String]) -> String {
        let mut out = String::from("$");
        for key in path {
            out.push_str(".\"");
            out.push_str(&key.replace('"', "\\\""));
            out.push('"');
        }
        out
    }

    /// The text (or JSON scalar) at `path` inside `base` (a JSON column or element).
    fn json_text(&mut self, base: &str, path: &[String]) {
        if self.pg() {
            self.push("jsonb_extract_path_text(").push(base);
            for key in path {
                self.push(", ").bind(key.clone());
            }
            self.push(")");
        } else {
            self.push("json_extract(").push(base).push(", ");
            self.bind(Self::sqlite_path(path));
            self.push(")");
        }
    }

    /// The JSON value (object, array or scalar) at `path`, NULL when absent.
    fn json_value(&mut self, base: &str, path: &[String]) {
        if self.pg() {
            self.push("jsonb_extract_path(").push(base);
            for key in path {
                self.push(", ").bind(key.clone());
            }
            self.push(")");
        } else {
            self.push("json_extract(").push(base).push(", ");
            self.bind(Self::sqlite_path(path));
            self.push(")");
        }
    }
}

struct Compiler {
    sql: Sql,
}

impl Compiler {
    fn filter(&mut self, f: &Filter, scope: Scope) {
        match f {
            Filter::True => {
                self.sql.push("(1 = 1)");
            }
            Filter::And(items) | Filter::Or(items) => {
                let joiner = if matches!(f, Filter::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                self.sql.push("(");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.sql.push(joiner);
                    }
                    self.filter(item, scope);
                }
                self.sql.push(")");
            }
            Filter::Not(inner) => {
                // A NULL (a missing attribute) counts as false before it is negated.
                self.sql.push("(NOT COALESCE(");
                self.filter(inner, scope);
                self.sql.push(", FALSE))");
            }
            Filter::Test(attr, op) => self.test(attr, op, scope),
            Filter::Any { path, filter } => {
                let Scope::Root(table) = scope else {
                    self.sql.push("(1 = 0)");
                    return;
                };
                let column = format!("\"{}\".\"search\"", table.table());
                if self.sql.pg() {
                    // A single value where a list is expected (a row indexed before the
                    // rule that stores one value as a list of one) is walked as that list:
                    // `jsonb_array_elements` of a scalar would fail the whole query.
                    self.sql
                        .push("EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN ");
                    self.sql.json_value(&column, path);
                    self.sql
                        .push(" IS NULL THEN '[]'::jsonb WHEN jsonb_typeof(");
                    self.sql.json_value(&column, path);
                    self.sql.push(") = 'array' THEN ");
                    self.sql.json_value(&column, path);
                    self.sql.push(" ELSE jsonb_build_array(");
                    self.sql.json_value(&column, path);
                    self.sql.push(") END) AS e(v) WHERE ");
                } else {
                    self.sql
                        .push("EXISTS (SELECT 1 FROM json_each(")
                        .push(&column)
                        .push(", ");
                    self.sql.bind(Sql::sqlite_path(path));
                    self.sql.push(") AS e WHERE ");
                }
                self.filter(filter, Scope::Element);
                // LIMIT 1: SQLite 3.51 miscounts OFFSET over an EXISTS that matches several
                // json_each rows; it is free elsewhere.
                self.sql.push(" LIMIT 1)");
            }
            Filter::Related { relation, filter } => {
                match relation {
                    Relation::Members => self.sql.push(
                        "EXISTS (SELECT 1 FROM group_members m \
                         LEFT JOIN users mu ON m.member_type = 'User' AND mu.tenant_id = m.tenant_id AND mu.id = m.member_id \
                         LEFT JOIN groups mg ON m.member_type = 'Group' AND mg.tenant_id = m.tenant_id AND mg.id = m.member_id \
                         WHERE m.tenant_id = \"groups\".\"tenant_id\" AND m.group_id = \"groups\".\"id\" AND ",
                    ),
                    Relation::Groups => self.sql.push(
                        "EXISTS (WITH RECURSIVE up(group_id, depth) AS ( \
                           SELECT gm.group_id, CAST(0 AS BIGINT) FROM group_members gm \
                           WHERE gm.tenant_id = \"users\".\"tenant_id\" AND gm.member_id = \"users\".\"id\" \
                           UNION SELECT gm.group_id, up.depth + 1 FROM group_members gm \
                           JOIN up ON gm.member_id = up.group_id \
                           WHERE gm.tenant_id = \"users\".\"tenant_id\" AND up.depth < 64) \
                         SELECT 1 FROM (SELECT group_id, MIN(depth) AS depth FROM up GROUP BY group_id) up \
                         JOIN groups rg ON rg.tenant_id = \"users\".\"tenant_id\" AND rg.id = up.group_id WHERE ",
                    ),
                };
                self.filter(filter, Scope::Related(*relation));
                self.sql.push(" LIMIT 1)");
            }
        }
    }

    /// Writes the SQL expression of `attr` in `scope`; `false` when it has no SQL form.
    fn value(&mut self, attr: &Attr, scope: Scope) -> bool {
        match scope {
            Scope::Root(table) => {
                let name = self.sql.root(table);
                if let Some(column) = column(table, &attr.path) {
                    self.sql.push(&format!("\"{name}\".\"{column}\""));
                    return true;
                }
                let base = format!("\"{name}\".\"search\"");
                if attr.ty == AttrType::Complex {
                    self.sql.json_value(&base, &attr.path);
                } else {
                    self.sql.json_text(&base, &attr.path);
                }
                true
            }
            Scope::Element if attr.path.is_empty() => {
                // The element itself (a multi-valued simple attribute): its text, or the SQL
                // value of a JSON scalar as `json_extract` gives it.
                self.sql.push(if self.sql.pg() {
                    "(e.v #>> '{}')"
                } else {
                    "e.atom"
                });
                true
            }
            Scope::Element => {
                let base = if self.sql.pg() { "e.v" } else { "e.value" };
                self.sql.json_text(base, &attr.path);
                true
            }
            Scope::Related(relation) => {
                let name = attr.path.first().map(String::as_str).unwrap_or_default();
                let expr = match (relation, name) {
                    (Relation::Members, "value") => "m.member_id",
                    // `type` is case-insensitive: compared folded, like the literal.
                    (Relation::Members, "type") => "LOWER(m.member_type)",
                    (Relation::Members, "display") => {
                        "COALESCE(mu.display_name_ci, mu.user_name_ci, mg.display_name_ci)"
                    }
                    (Relation::Groups, "value") => "rg.id",
                    (Relation::Groups, "display") => "rg.display_name_ci",
                    (Relation::Groups, "type") => {
                        "(CASE WHEN up.depth = 0 THEN 'direct' ELSE 'indirect' END)"
                    }
                    _ => return false,
                };
                self.sql.push(expr);
                true
            }
        }
    }

    fn test(&mut self, attr: &Attr, op: &Op, scope: Scope) {
        if let Scope::Root(table) = scope
            && attr.path == ["meta", "resourceType"]
        {
            let holds = match op {
                Op::Present => true,
                Op::Cmp(op, Literal::Str(s)) => compare_str(*op, table.as_str(), s),
                Op::Cmp(..) => false,
            };
            self.sql.push(if holds { "(1 = 1)" } else { "(1 = 0)" });
            return;
        }
        match op {
            Op::Present => {
                self.sql.push("COALESCE((");
                if !self.value(attr, scope) {
                    self.sql.push("NULL");
                }
                self.sql.push(" IS NOT NULL");
                if matches!(
                    attr.ty,
                    AttrType::String | AttrType::Reference | AttrType::Binary | AttrType::DateTime
                ) {
                    self.sql.push(" AND ");
                    self.value(attr, scope);
                    self.sql.push(" <> ''");
                }
                self.sql.push("), FALSE)");
            }
            Op::Cmp(op, literal) => {
                let literal = match literal {
                    Literal::Str(s) if !attr.case_exact && attr.ty == AttrType::String => {
                        Literal::Str(fold(s))
                    }
                    other => other.clone(),
                };
                if let Literal::Str(s) = &literal
                    && s.is_empty()
                    && matches!(op, CmpOp::Co | CmpOp::Sw | CmpOp::Ew)
                {
                    // Every string contains, starts and ends with "".
                    self.sql.push("(");
                    if !self.value(attr, scope) {
                        self.sql.push("NULL");
                    }
                    self.sql.push(" IS NOT NULL)");
                    return;
                }
                self.sql.push("(");
                self.comparison(attr, *op, &literal, scope);
                self.sql.push(")");
            }
        }
    }

    fn literal(&mut self, literal: &Literal) {
        match literal {
            Literal::Str(s) => {
                self.sql.bind(s.clone());
            }
            Literal::Bool(b) => {
                if self.sql.pg() {
                    self.sql.bind(if *b { "true" } else { "false" });
                } else {
                    self.sql.bind(i64::from(*b));
                }
            }
            Literal::Num(n) => {
                if let Some(i) = n.as_i64() {
                    self.sql.bind(i);
                } else {
                    self.sql.bind(n.as_f64().unwrap_or_default());
                }
            }
        }
    }

    fn comparison(&mut self, attr: &Attr, op: CmpOp, literal: &Literal, scope: Scope) {
        let pg = self.sql.pg();
        let numeric = matches!(literal, Literal::Num(_));
        let lhs = |c: &mut Compiler| {
            if numeric && pg {
                c.sql.push("CAST(");
                c.value(attr, scope);
                c.sql.push(" AS NUMERIC)");
            } else if !c.value(attr, scope) {
                c.sql.push("NULL");
            }
        };
        match op {
            CmpOp::Eq => {
                lhs(self);
                self.sql.push(" = ");
                self.literal(literal);
            }
            // A missing attribute has no value to differ: `ne` is NULL for it, which counts as
            // false like every comparison on it (see scim::query::eval).
            CmpOp::Ne => {
                lhs(self);
                self.sql.push(" <> ");
                self.literal(literal);
            }
            CmpOp::Co => {
                self.sql.push(if pg { "strpos(" } else { "instr(" });
                lhs(self);
                self.sql.push(", ");
                self.literal(literal);
                self.sql.push(") > 0");
            }
            CmpOp::Sw => {
                if pg {
                    self.sql.push("starts_with(");
                    lhs(self);
                    self.sql.push(", ");
                    self.literal(literal);
                    self.sql.push(")");
                } else {
                    self.sql.push("substr(");
                    lhs(self);
                    self.sql.push(", 1, length(");
                    self.literal(literal);
                    self.sql.push(")) = ");
                    self.literal(literal);
                }
            }
            CmpOp::Ew => {
                if pg {
                    self.sql.push("right(");
                    lhs(self);
                    self.sql.push(", char_length(");
                    self.literal(literal);
                    self.sql.push(")) = ");
                    self.literal(literal);
                } else {
                    self.sql.push("substr(");
                    lhs(self);
                    self.sql.push(", -length(");
                    self.literal(literal);
                    self.sql.push(")) = ");
                    self.literal(literal);
                }
            }
            CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le => {
                lhs(self);
                if pg && !numeric {
                    // Byte order, as in the reference evaluator and on SQLite.
                    self.sql.push(" COLLATE \"C\"");
                }
                self.sql.push(match op {
                    CmpOp::Gt => " > ",
                    CmpOp::Ge => " >= ",
                    CmpOp::Lt => " < ",
                    _ => " <= ",
                });
                self.literal(literal);
            }
        }
    }
}

fn compare_str(op: CmpOp, value: &str, literal: &str) -> bool {
    match op {
        CmpOp::Eq => value == literal,
        CmpOp::Ne => value != literal,
        CmpOp::Co => value.contains(literal),
        CmpOp::Sw => value.starts_with(literal),
        CmpOp::Ew => value.ends_with(literal),
        CmpOp::Gt => value > literal,
        CmpOp::Ge => value >= literal,
        CmpOp::Lt => value < literal,
        CmpOp::Le => value <= literal,
    }
}

/// `FROM <table> WHERE tenant AND filter`, shared by the count and the page.
fn from_where(sql: &mut Sql, table: ResourceKind, tenant_id: &TenantId, filter: Option<&Filter>) {
    sql.push(&format!(
        " FROM \"{0}\" WHERE \"{0}\".\"tenant_id\" = ",
        table.table()
    ));
    sql.bind(tenant_id.to_owned());
    if let Some(filter) = filter {
        sql.push(" AND ");
        let mut compiler = Compiler {
            sql: std::mem::replace(sql, Sql::new(sql.backend)),
        };
        compiler.filter(filter, Scope::Root(table));
        *sql = compiler.sql;
    }
}

fn order_by(sql: &mut Sql, table: ResourceKind, sort: Option<&Sort>) {
    let t = sql.root(table);
    match sort {
        None => {
            sql.push(&format!(" ORDER BY \"{t}\".\"created_at\", \"{t}\".\"id\""));
        }
        Some(sort) => {
            let direction = match sort.order {
                SortOrder::Ascending => "ASC",
                SortOrder::Descending => "DESC",
            };
            let collate = if sql.pg() { " COLLATE \"C\"" } else { "" };
            let mut compiler = Compiler {
                sql: std::mem::replace(sql, Sql::new(sql.backend)),
            };
            // Resources without the attribute come last ascending and first descending
            // (RFC 7644 §3.4.2.3), the same on both backends.
            compiler.sql.push(" ORDER BY (CASE WHEN ");
            compiler.value(&sort.attr, Scope::Root(table));
            compiler
                .sql
                .push(&format!(" IS NULL THEN 1 ELSE 0 END) {direction}, "));
            compiler.value(&sort.attr, Scope::Root(table));
            compiler
                .sql
                .push(&format!("{collate} {direction}, \"{t}\".\"id\" ASC"));
            *sql = compiler.sql;
        }
    }
}

/// The statement counting the matches of a filter (for query plans in tests and docs).
pub fn count_statement(
    backend: DbBackend,
    table: ResourceKind,
    tenant_id: &TenantId,
    filter: Option<&Filter>,
) -> Statement {
    let mut count = Sql::new(backend);
    count.push("SELECT COUNT(*) AS n");
    from_where(&mut count, table, tenant_id, filter);
    count.statement()
}

/// The number of matching rows and one page of them, in order: `page` is the page's
/// statement, `decode` reads one of its rows.
///
/// The page is read first; the count runs only when the page cannot tell it. A page that
/// stops short of `limit` and is not empty (or is the first) ends the matches, so the total
/// is `offset` plus its length: the `filter=userName eq "…"` that Okta and Entra send before
/// every create costs one statement, not two.
#[allow(clippy::too_many_arguments)]
async fn search<T>(
    conn: &impl ConnectionTrait,
    table: ResourceKind,
    tenant_id: &TenantId,
    filter: Option<&Filter>,
    offset: u64,
    limit: u64,
    page: impl FnOnce() -> Statement,
    decode: impl Fn(&sea_orm::QueryResult) -> Result<T, StoreError>,
) -> Result<(u64, Vec<T>), StoreError> {
    let rows = if limit == 0 {
        Vec::new()
    } else {
        conn.query_all_raw(page())
            .await?
            .iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?
    };
    if let Some(total) = total_from_page(offset, limit, rows.len()) {
        return Ok((total, rows));
    }
    let backend = conn.get_database_backend();
    let total: i64 = conn
        .query_one_raw(count_statement(backend, table, tenant_id, filter))
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get("", "n")?;
    Ok((total.max(0) as u64, rows))
}

/// `SELECT <table>.* FROM <table> WHERE tenant AND filter ORDER BY … LIMIT … OFFSET …`.
fn page_select(
    sql: &mut Sql,
    table: ResourceKind,
    tenant_id: &TenantId,
    filter: Option<&Filter>,
    sort: Option<&Sort>,
    offset: u64,
    limit: u64,
) {
    sql.push(&format!("SELECT \"{}\".*", table.table()));
    from_where(sql, table, tenant_id, filter);
    order_by(sql, table, sort);
    sql.push(" LIMIT ");
    sql.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    sql.push(" OFFSET ");
    sql.bind(i64::try_from(offset).unwrap_or(i64::MAX));
}

/// A page of users with each user's groups (direct and nested) in one statement: the page
/// as a CTE (tenant bound first, so it is `$1` of the walk), the memberships walk seeded
/// with the page's ids (an index lookup per id: `= ANY(ARRAY(…))` on PostgreSQL, `IN` on
/// SQLite) and grouped by member once, and the page again in its order, each user with
/// its groups as a JSON column. The search document is not returned.
pub fn users_page_statement(
    backend: DbBackend,
    tenant_id: &TenantId,
    filter: Option<&Filter>,
    sort: Option<&Sort>,
    offset: u64,
    limit: u64,
) -> Statement {
    let mut sql = Sql::new(backend);
    sql.push("WITH RECURSIVE page AS (");
    page_select(
        &mut sql,
        ResourceKind::User,
        tenant_id,
        filter,
        sort,
        offset,
        limit,
    );
    let seed = match backend {
        DbBackend::Sqlite => "gm.member_id IN (SELECT id FROM page)",
        _ => "gm.member_id = ANY(ARRAY(SELECT id FROM page))",
    };
    let (walk, found) = super::members::memberships_walk(backend, seed);
    // The walk is read once: grouped by member, then joined to the page (a subquery per
    // row would read every row of the walk for each user of the page).
    let empty = match backend {
        DbBackend::Sqlite => "'[]'",
        _ => "'[]'::jsonb",
    };
    let rest = format!(
        "), {walk}, grouped AS (SELECT f.member_id AS member_id, {groups} AS memberships \
         FROM ({found}) f GROUP BY f.member_id) \
         SELECT {columns}, COALESCE(grouped.memberships, {empty}) AS memberships \
         FROM page LEFT JOIN grouped ON grouped.member_id = \"page\".\"id\"",
        columns = super::users::read_columns(backend, "\"page\""),
        groups = super::members::groups_aggregate(backend),
    );
    sql.push(&super::placeholders(backend, &rest));
    // The page's order again, on the CTE's rows, which come in no promised order.
    sql.root_alias = Some("page");
    order_by(&mut sql, ResourceKind::User, sort);
    sql.statement()
}

/// The number of matches when a page of `returned` rows read at `offset` with `limit`
/// tells it: the page is short of `limit` and either holds rows or starts at the first
/// match. A full page, an empty page past the first, or `limit` 0 need the count.
fn total_from_page(offset: u64, limit: u64, returned: usize) -> Option<u64> {
    let returned = returned as u64;
    (limit > 0 && returned < limit && (returned > 0 || offset == 0)).then_some(offset + returned)
}

/// A page of a tenant's users matching `filter`, in `sort` order (default: creation), each
/// with its groups.
pub async fn search_users(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    filter: Option<&Filter>,
    sort: Option<&Sort>,
    offset: u64,
    limit: u64,
) -> Result<(u64, Vec<(StoredUser, Vec<Membership>)>), StoreError> {
    let backend = conn.get_database_backend();
    search(
        conn,
        ResourceKind::User,
        tenant_id,
        filter,
        offset,
        limit,
        || users_page_statement(backend, tenant_id, filter, sort, offset, limit),
        super::users::with_groups_from_row,
    )
    .await
}

/// A page of a tenant's groups matching `filter`, in `sort` order (default: creation).
pub async fn search_groups(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    filter: Option<&Filter>,
    sort: Option<&Sort>,
    offset: u64,
    limit: u64,
) -> Result<(u64, Vec<StoredGroup>), StoreError> {
    let backend = conn.get_database_backend();
    let page = || {
        let mut sql = Sql::new(backend);
        page_select(
            &mut sql,
            ResourceKind::Group,
            tenant_id,
            filter,
            sort,
            offset,
            limit,
        );
        sql.statement()
    };
    search(
        conn,
        ResourceKind::Group,
        tenant_id,
        filter,
        offset,
        limit,
        page,
        |row| super::groups::to_domain(group::Model::from_query_result(row, "")?),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::total_from_page;

    #[test]
    fn a_short_page_tells_the_total_and_a_full_or_empty_later_one_does_not() {
        // The IdPs' existence probe: no match, or one, on the first page.
        assert_eq!(total_from_page(0, 100, 0), Some(0));
        assert_eq!(total_from_page(0, 100, 1), Some(1));
        // The last page of an index walk.
        assert_eq!(total_from_page(200, 100, 37), Some(237));
        // A full page: more may follow.
        assert_eq!(total_from_page(0, 100, 100), None);
        // Past the end: how far past is unknown.
        assert_eq!(total_from_page(500, 100, 0), None);
        // `count=0` asks for the total alone.
        assert_eq!(total_from_page(0, 0, 0), None);
    }
}
