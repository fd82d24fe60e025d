"""The debugger engine: directions of interest, node metrics, interventions, patching, tracing, lens."""
