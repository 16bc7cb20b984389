"""Schemathesis hooks for scripts/contract-fuzz.

CSV documents. A `text/csv` body (or multipart part) is only `type: string, format: binary` in
the schema, so schemathesis would send arbitrary bytes, and the importer rightly refuses
anything without a CSV header row; no request would reach the row validation. The strategy
registered below makes CSV documents the way a spreadsheet would: the required columns in any
order and letter case, some optional or unknown ones, an optional byte-order mark, and rows of
cells drawn from valid values, wrong numbers, empty cells, quotes, commas, line breaks,
formula prefixes and any other text. Invalid rows are reported by the import, not rejected.

Cursors. A `cursor` query parameter carries a token the server issued (`pagination.next_cursor` of the
page before); no schema can say which strings those are, so a generated one is rejected (400
INVALID_CURSOR) although it fits the schema. A client only ever sends a cursor it was given,
so for a request meant to be valid this asks the server for the same request without the
cursor and sends the `next_cursor` it answers (or, when the results fit on one page and there
is none, no cursor). Requests meant to be invalid keep their generated cursor, so the 400 for
an unknown cursor is still tested.
"""

import csv
import io
import os

import requests
import schemathesis
from hypothesis import strategies as st

BASE_URL = os.environ["CONTRACT_FUZZ_URL"]


@schemathesis.hook
def before_call(context, case, kwargs):
    query = case.query
    if not query or "cursor" not in query:
        return
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    first_page = {name: value for name, value in query.items() if name != "cursor"}
    response = requests.get(
        BASE_URL + case.formatted_path, params=first_page, headers=case.headers or {}, timeout=30
    )
    next_cursor = None
    if response.status_code == 200:
        next_cursor = (response.json().get("pagination") or {}).get("next_cursor")
    if next_cursor is None:
        del query["cursor"]
    else:
        query["cursor"] = next_cursor


REQUIRED_COLUMNS = ["name", "price", "quantity", "category"]
OPTIONAL_COLUMNS = ["description", "sku", "low_stock_threshold", "id", "created_at", "updated_at", "colour"]
CELLS = st.one_of(
    st.just(""),
    # Any text but NUL, which no CSV text holds (the importer takes it for a binary file: 415).
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30),
    st.integers(-10, 2_000_000_000).map(str),
    st.decimals(min_value=-1, max_value=10**9, places=2, allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(["12abc", "1e3", "=SUM(A1)", "'=1+1", "-1", "0.001", "a,b", 'say "hi"', "two\nlines", "WM-01"]),
)


@st.composite
def csv_documents(draw):
    columns = REQUIRED_COLUMNS + draw(st.lists(st.sampled_from(OPTIONAL_COLUMNS), unique=True, max_size=4))
    columns = draw(st.permutations(columns))
    header = [draw(st.sampled_from([c, c.upper(), c.title()])) for c in columns]
    rows = draw(st.lists(st.lists(CELLS, min_size=len(columns), max_size=len(columns)), max_size=8))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    writer.writerows(rows)
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return (bom + out.getvalue()).encode()


schemathesis.openapi.media_type("text/csv", csv_documents())
