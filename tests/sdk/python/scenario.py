"""The Python client scenario of scripts/sdk-scenarios.

Every call goes through `product_api_client`, the client openapi-python-client generates from
api/openapi.yaml (the script generates it before this runs): create, list with filters and a
cursor, get with an ETag and a 304, update with If-Match (and a 412 with a stale one), adjust
the quantity, delete, export the CSV, import a CSV and poll the import until it completes.
With API_TOKEN (and API_SELLER, the token's seller) it authenticates as the generated
`AuthenticatedClient` does, with a bearer token; else with X-Seller-Id. Any failed assertion
exits non-zero.
"""

import os
import sys
import time

from product_api_client import AuthenticatedClient, Client
from product_api_client.api.imports import get_import, import_products
from product_api_client.api.products import (
    adjust_quantity,
    create_product,
    delete_product,
    export_products,
    get_product,
    list_products,
    update_product,
)
from product_api_client.models import (
    ImportAccepted,
    ImportProductsFilesBody,
    ImportStatus,
    ImportStatusStatus,
    ListProductsSortBy,
    ListProductsSortOrder,
    Problem,
    Product,
    ProductCreateRequest,
    ProductList,
    ProductUpdateRequest,
    QuantityAdjustmentRequest,
)
from product_api_client.types import UNSET, File

stamp = str(time.time_ns())
seller = os.environ.get("API_SELLER") or f"seller-py{stamp}"
category = f"Cat{stamp}"
if os.environ.get("API_TOKEN"):
    client = AuthenticatedClient(base_url=os.environ["API_URL"], token=os.environ["API_TOKEN"], timeout=30)
else:
    client = Client(base_url=os.environ["API_URL"], headers={"X-Seller-Id": seller}, timeout=30)


def log(message):
    print(f"python: {message}", flush=True)


def create(name, price, quantity, sku):
    response = create_product.sync_detailed(
        client=client,
        body=ProductCreateRequest(name=name, price=price, quantity=quantity, category=category, sku=sku),
        idempotency_key=f"{sku}-{stamp}",
    )
    assert response.status_code == 201, (name, response.status_code, response.content)
    product = response.parsed
    assert isinstance(product, Product)
    assert response.headers["Location"] == f"/api/products/{product.id}"
    assert response.headers["ETag"] == f'"v{product.version}"'
    assert (product.name, product.price, product.quantity, product.seller_id) == (name, price, quantity, seller)
    return product


# Create
alpha = create("Alpha lamp", 19.99, 150, "PY-ALPHA")
beta = create("Beta chair", 89.5, 40, "PY-BETA")
gamma = create("Gamma desk", 240.0, 12, "PY-GAMMA")
log(f"created {alpha.id}, {beta.id}, {gamma.id}")

# List with filters, following the cursor
names, cursor, pages = [], UNSET, 0
while True:
    response = list_products.sync_detailed(
        client=client,
        category=category,
        min_quantity=10,
        sort_by=ListProductsSortBy.NAME,
        sort_order=ListProductsSortOrder.ASC,
        limit=1,
        cursor=cursor,
    )
    assert response.status_code == 200, response.content
    page = response.parsed
    assert isinstance(page, ProductList)
    assert page.pagination.total == 3
    names += [p.name for p in page.data]
    pages += 1
    if not isinstance(page.pagination.next_cursor, str) or pages >= 10:
        break
    cursor = page.pagination.next_cursor
assert names == ["Alpha lamp", "Beta chair", "Gamma desk"], names
cheap = list_products.sync_detailed(client=client, category=category, max_quantity=50).parsed
assert isinstance(cheap, ProductList)
assert sorted(p.id for p in cheap.data) == sorted([beta.id, gamma.id])
log("listed with a cursor")

# Get with ETag, then 304
response = get_product.sync_detailed(alpha.id, client=client)
assert response.status_code == 200
assert response.parsed == alpha
etag = response.headers["ETag"]
assert etag == f'"v{alpha.version}"'
response = get_product.sync_detailed(alpha.id, client=client, if_none_match=etag)
assert response.status_code == 304, response.status_code
assert response.content == b""
log("conditional get: 304")

# Update with If-Match
response = update_product.sync_detailed(
    alpha.id, client=client, body=ProductUpdateRequest(price=17.49), if_match=etag
)
assert response.status_code == 200, response.content
assert isinstance(response.parsed, Product)
assert (response.parsed.price, response.parsed.version) == (17.49, alpha.version + 1)
response = update_product.sync_detailed(alpha.id, client=client, body=ProductUpdateRequest(price=1), if_match=etag)
assert response.status_code == 412, response.status_code
assert isinstance(response.parsed, Problem) and response.parsed.error_code == "PRECONDITION_FAILED"
log("update with If-Match; stale If-Match: 412")

# Adjust quantity
response = adjust_quantity.sync_detailed(
    alpha.id, client=client, body=QuantityAdjustmentRequest(delta=-145, reason="sale")
)
assert response.status_code == 200, response.content
assert isinstance(response.parsed, Product) and response.parsed.quantity == 5
response = adjust_quantity.sync_detailed(alpha.id, client=client, body=QuantityAdjustmentRequest(delta=-6))
assert response.status_code == 409
assert isinstance(response.parsed, Problem) and response.parsed.error_code == "INSUFFICIENT_STOCK"
log("adjusted 150 -> 5")

# Delete
response = delete_product.sync_detailed(gamma.id, client=client)
assert response.status_code == 200, response.content
response = get_product.sync_detailed(gamma.id, client=client)
assert response.status_code == 404
assert isinstance(response.parsed, Problem) and response.parsed.error_code == "PRODUCT_NOT_FOUND"
log("deleted")

# Export
response = export_products.sync_detailed(client=client, category=category)
assert response.status_code == 200, response.content
assert response.headers["Content-Type"].startswith("text/csv")
assert response.headers["Content-Disposition"].startswith("attachment")
assert isinstance(response.parsed, File)
rows = response.content.decode().strip().splitlines()
assert rows[0] == "id,sku,name,description,price,quantity,category,low_stock_threshold,created_at,updated_at", rows[0]
assert [row.split(",")[1] for row in rows[1:]] == ["PY-ALPHA", "PY-BETA"], rows
log("exported")

# Import a CSV and poll it
csv = "\n".join(
    [
        "name,description,price,quantity,category,sku",
        f"Delta shelf,From the import,35.00,30,{category},PY-DELTA",
        f"Epsilon stool,From the import,22.50,25,{category},PY-EPSILON",
        f"Broken row,,12abc,1,{category},PY-BROKEN",
    ]
).encode()
response = import_products.sync_detailed(
    client=client,
    body=ImportProductsFilesBody(file=File(payload=csv, file_name="products.csv", mime_type="text/csv")),
)
assert response.status_code == 202, response.content
accepted = response.parsed
assert isinstance(accepted, ImportAccepted)
assert accepted.status.value == "processing"
assert response.headers["Location"] == f"/api/products/import/{accepted.import_id}"
deadline = time.monotonic() + 60
while True:
    response = get_import.sync_detailed(accepted.import_id, client=client)
    assert response.status_code == 200, response.content
    status = response.parsed
    assert isinstance(status, ImportStatus)
    assert status.status != ImportStatusStatus.FAILED, status.failure
    if status.status == ImportStatusStatus.COMPLETED:
        break
    assert time.monotonic() < deadline, f"import still {status.status} after 60s"
    time.sleep(0.25)
counts = (status.total_rows, status.processed, status.created, status.updated, status.failed)
assert counts == (3, 3, 2, 0, 1), counts
assert (status.errors[0].row, status.errors[0].column) == (4, "price"), status.errors
listed = list_products.sync_detailed(
    client=client, category=category, sort_by=ListProductsSortBy.NAME, sort_order=ListProductsSortOrder.ASC
).parsed
assert isinstance(listed, ProductList)
assert [p.name for p in listed.data] == ["Alpha lamp", "Beta chair", "Delta shelf", "Epsilon stool"]
log("imported 2 rows, 1 row error")

log("scenario passed")
sys.exit(0)
