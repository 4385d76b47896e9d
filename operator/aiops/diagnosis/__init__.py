"""From an Incident to ranked, evidence-backed suspects and a diagnosis: the pipeline, the evidence bundle,
collectors/ (what is read), analyzers/ (deterministic failure modes), rca/ (the service at the origin of a
microservice symptom), redaction and log templates."""
