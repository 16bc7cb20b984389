//! An export imports back exactly: awkward values, formula cells, every column.

use super::*;

on_both_databases!(an_export_imports_back_exactly,);

async fn an_export_imports_back_exactly(app: TestApp) {
    let awkward = [
        (
            "Comma, \"quoted\"",
            Some("line one\nline two\r\nthree"),
            "Tools",
            Some("AW-1"),
            Some(4),
        ),
        (
            "Ünïcødé ✓ 日本",
            Some("tab\there"),
            "Décor",
            Some("AW-2"),
            None,
        ),
        ("=SUM(A1)", Some("-minus"), "@home", Some("AW-3"), Some(0)),
        ("'quoted", Some("'=x"), "+plus", None, None),
        ("Plain", None, "\tTabbed", None, Some(100)),
    ];
    for (name, description, category, sku, threshold) in awkward {
        let body = product(
            json!({ "name": name, "description": description, "category": category, "sku": sku, "low_stock_threshold": threshold, "price": 12.34, "quantity": 7 }),
        );
        app.create_ok(SELLER_A, &body).await;
    }
    let exported = app
        .send(Method::GET, "/api/products/export", Some(SELLER_A))
        .await
        .text()
        .await
        .expect("csv");

    let done = import(&app, SELLER_B, "", &exported).await;

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(counters(&done), [5, 5, 0, 0, 0], "{done}");
    let fields = [
        "name",
        "description",
        "price",
        "quantity",
        "category",
        "sku",
        "low_stock_threshold",
    ];
    let pick = |p: &Value| fields.map(|f| p[f].clone());
    let original: Vec<_> = all_products(&app, SELLER_A)
        .await
        .iter()
        .map(pick)
        .collect();
    let copied: Vec<_> = all_products(&app, SELLER_B)
        .await
        .iter()
        .map(pick)
        .collect();
    assert_eq!(copied, original);
    // Imported again onto itself, every row is unchanged.
    let again = import(&app, SELLER_B, "", &exported).await;
    assert_eq!(
        counters(&again),
        [5, 2, 0, 3, 0],
        "rows with a sku are unchanged: {again}"
    );
}
