//! The lookups Okta and Entra start with (`userName eq`, `externalId eq`, `displayName
//! eq`) use their indexes on both backends. PostgreSQL is told not to prefer a sequential
//! scan (the test tables are tiny) so the plan shows which index the query can use.

use scimbus::scim::query::parse_filter;
use scimbus::scim::schema::Registry;
use scimbus::store::query::{Table, count_statement};
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

both_backends!(hot_attribute_lookups_use_their_indexes);

async fn plan(
    app: &crate::helpers::TestApp,
    tenant_id: &str,
    table: Table,
    filter: &str,
) -> String {
    let r = Registry::core();
    let rt = match table {
        Table::Users => r.user(),
        Table::Groups => r.group(),
    };
    let typed = parse_filter(r, rt, filter).unwrap();
    let conn = app.ctx.store.conn();
    let backend = conn.get_database_backend();
    let stmt = count_statement(backend, table, tenant_id, Some(&typed));
    let prefix = match backend {
        sea_orm::DbBackend::Postgres => "EXPLAIN ",
        _ => "EXPLAIN QUERY PLAN ",
    };
    let explain = Statement::from_sql_and_values(
        backend,
        format!("{prefix}{}", stmt.sql),
        stmt.values.map(|v| v.0).unwrap_or_default(),
    );
    let txn = conn.begin().await.unwrap();
    if backend == sea_orm::DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL enable_seqscan = off")
            .await
            .unwrap();
    }
    let rows = txn.query_all_raw(explain).await.unwrap();
    let mut lines = Vec::new();
    for row in rows {
        let line: String = match backend {
            sea_orm::DbBackend::Postgres => row.try_get("", "QUERY PLAN").unwrap(),
            _ => row.try_get("", "detail").unwrap(),
        };
        lines.push(line);
    }
    txn.rollback().await.unwrap();
    lines.join("\n")
}

async fn hot_attribute_lookups_use_their_indexes(backend: Backend) {
    let app = spawn_app(backend).await;
    // Enough rows, and statistics, for the planners to tell the indexes apart.
    let tenant = scimbus::store::tenants::find(
        app.ctx.store.conn(),
        &scimbus::domain::TenantSlug::parse("acme").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let txn = app.ctx.store.begin_write().await.unwrap();
    for i in 0..300 {
        let doc =
            serde_json::json!({"schemas": [crate::helpers::USER_URN], "userName": format!("u{i}")});
        let new = scimbus::domain::NewUser {
            hot: scimbus::domain::UserHot {
                user_name: scimbus::domain::UserName::parse(&format!("u{i}")).unwrap(),
                external_id: Some(scimbus::domain::ExternalId::parse(&format!("e{i}")).unwrap()),
                active: true,
                display_name: Some(format!("User {i}")),
            },
            search: doc.clone(),
            document: doc.as_object().unwrap().clone(),
        };
        scimbus::store::users::insert(
            &txn,
            &tenant.id,
            &uuid::Uuid::new_v4().to_string(),
            new,
            "2026-01-01T00:00:00.000Z",
        )
        .await
        .unwrap();
    }
    for i in 0..300 {
        let doc = serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("G{i}")});
        let new = scimbus::domain::NewGroup {
            hot: scimbus::domain::GroupHot {
                display_name: format!("G{i}"),
                external_id: Some(scimbus::domain::ExternalId::parse(&format!("g{i}")).unwrap()),
            },
            search: doc.clone(),
            document: doc.as_object().unwrap().clone(),
        };
        scimbus::store::groups::insert(
            &txn,
            &tenant.id,
            &uuid::Uuid::new_v4().to_string(),
            new,
            "2026-01-01T00:00:00.000Z",
        )
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    app.ctx
        .store
        .conn()
        .execute_unprepared("ANALYZE")
        .await
        .unwrap();
    for (table, filter, index) in [
        (
            Table::Users,
            r#"userName eq "bjensen""#,
            "users_tenant_id_user_name_ci_key",
        ),
        (
            Table::Users,
            r#"externalId eq "e1""#,
            "users_tenant_id_external_id_idx",
        ),
        (
            Table::Users,
            r#"displayName eq "Babs""#,
            "users_tenant_id_display_name_ci_idx",
        ),
        (
            Table::Groups,
            r#"displayName eq "Admins""#,
            "groups_tenant_id_display_name_ci_key",
        ),
        (
            Table::Groups,
            r#"externalId eq "g1""#,
            "groups_tenant_id_external_id_idx",
        ),
    ] {
        let plan = plan(&app, &tenant.id, table, filter).await;
        assert!(plan.contains(index), "{filter}: {plan}");
    }
}
