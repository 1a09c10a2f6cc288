"""The local function runtime: bundles, warm worker processes, function logs."""
