"""Experiment-slug dynamic partitions: one partition per analysable Experimenter experiment."""

from __future__ import annotations

import dagster as dg

# dynamic partition names are instance-global: a distinctive name avoids sharing keys with other code
experiments_partitions = dg.DynamicPartitionsDefinition(name="jetstream_experiments")

# the warehouse-heavy steps share one concurrency pool: its limit is the number of analysis steps that may
# query the warehouse at once (1 suits DuckDB's single writer; BigQuery deployments size it to their slots)
WAREHOUSE_POOL = "warehouse"
