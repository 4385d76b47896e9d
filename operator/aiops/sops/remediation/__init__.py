"""From diagnosis to resolution: SOP matching, step execution with approvals, the safe action catalogue, effect."""
