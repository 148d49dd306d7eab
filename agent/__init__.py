"""The orchestrator: takes frames from streams, asks detectors, decides cases, builds evidence and
hands cases to the uploader. The only package that imports the others."""
