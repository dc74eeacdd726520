"""The benchmark job in DuckDB with one thread: one row per receipt line under 100, as NDJSON."""
import sys

import duckdb

source, target = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET threads=1")
con.execute(f"""
COPY (
  SELECT r.receipt_id, r.store_id, r.emitted_at, l.*
  FROM read_json('{source}', format='newline_delimited', columns={{
    'receipt_id': 'VARCHAR', 'store_id': 'VARCHAR', 'emitted_at': 'VARCHAR',
    'lines': 'STRUCT(sku VARCHAR, ean VARCHAR, name VARCHAR, category VARCHAR, quantity DECIMAL(18,3), unit VARCHAR,
                     unit_price DECIMAL(18,2), discount DECIMAL(18,2), vat_rate DECIMAL(6,2), promotion_id VARCHAR)[]'}}) r,
  UNNEST(r.lines) AS t(l)
  WHERE l.unit_price < 100
) TO '{target}' (FORMAT json)
""")
