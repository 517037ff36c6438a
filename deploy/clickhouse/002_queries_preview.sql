-- Result previews (issue 3 item 6): the first rows of each statement's first result, stored with
-- its `queries` row. Taken from the s2c frames (what the client received: masked inline by the
-- gateway), then masked again at rest by ingest (detectors, echoes of masked literals). Empty
-- arrays when previews are off (ingest.masking.preview_rows: 0) or the statement returned no rows.
-- Same table, same ReplacingMergeTree key and version: a redelivered batch still collapses.
ALTER TABLE queries ADD COLUMN IF NOT EXISTS preview_columns Array(String) AFTER statement_known;
ALTER TABLE queries ADD COLUMN IF NOT EXISTS preview_rows Array(Array(Nullable(String))) AFTER preview_columns;
