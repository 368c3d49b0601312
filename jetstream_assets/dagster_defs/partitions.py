"""Experiment-slug dynamic partitions: one partition per analysable Experimenter experiment."""

from __future__ import annotations

import dagster as dg

# dynamic partition names are instance-global: a distinctive name avoids sharing keys with other code
experiments_partitions = dg.DynamicPartitionsDefinition(name="jetstream_experiments")
