"""The benchmark job in plain Python (json module, Decimal prices): one record per line under 100, as NDJSON."""
import json
import sys
from decimal import Decimal

with open(sys.argv[1], "rb") as source, open(sys.argv[2], "w") as target:
    for raw in source:
        receipt = json.loads(raw, parse_float=Decimal)
        parent = {k: receipt[k] for k in ("receipt_id", "store_id", "emitted_at")}
        for line in receipt["lines"]:
            if line["unit_price"] < 100:
                target.write(json.dumps({**parent, **line}, default=str, ensure_ascii=False))
                target.write("\n")
