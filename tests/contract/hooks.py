"""Schemathesis hooks for scripts/contract-fuzz.

A `cursor` query parameter carries a token the server issued (`pagination.next_cursor` of the
page before); no schema can say which strings those are, so a generated one is rejected (400
INVALID_CURSOR) although it fits the schema. A client only ever sends a cursor it was given,
so for a request meant to be valid this asks the server for the same request without the
cursor and sends the `next_cursor` it answers (or, when the results fit on one page and there
is none, no cursor). Requests meant to be invalid keep their generated cursor, so the 400 for
an unknown cursor is still tested.
"""

import os

import requests
import schemathesis

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
