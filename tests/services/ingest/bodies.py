"""Bodies ``POST /v1/sales`` cannot use, each with the status and a piece of the detail it must get: the parser's
cases (``test_ingest_parsing.py``), which the route answers the same way through HTTP (``test_ingest_api.py``)."""

from __future__ import annotations

import pytest

UNUSABLE_BODY_FIELDS = ("body", "content_type", "status", "needle")
UNUSABLE_BODIES = [
    pytest.param(b'[{"shop_id": "S1",', "application/json", 400, "line 1 column", id="truncated"),
    pytest.param(b"", "application/json", 400, "malformed JSON", id="empty"),
    pytest.param(b'[{"sales_qty": NaN}]', "application/json", 400, "line 1 column 16", id="nan"),
    pytest.param(b'[{"sales_qty": 1e999}]', "application/json", 400, "infinity", id="infinity"),
    pytest.param(b"\xff\xfe", "application/json", 400, "UTF-8", id="not-utf8"),
    pytest.param(b'{"shop_id": "S1"}', "application/json", 422, "a JSON array of sales records, got a JSON object",
                 id="object"),
    pytest.param(b'"text"', "application/json", 422, "got a JSON string", id="string"),
    pytest.param(b'{"a": 1}\n{"a": 2}\n{"a": 3', "application/x-ndjson", 400, "line 3", id="ndjson-line"),
    pytest.param(b'{"shop_id": "S1"}\n{oops}', "application/x-ndjson", 400, "malformed NDJSON at line 2",
                 id="ndjson-bad-line"),
    pytest.param(b"shop_id,product_id\nS1,P1\n", "text/csv", 415, "unsupported Content-Type 'text/csv'", id="csv"),
]
