"""The orchestrator: takes frames from streams, asks detectors, decides cases, builds evidence and
hands cases to the uploader. The CLI, the runner and the pipeline live here; the stages they drive in
config/, geo/, cases/ and evidence/; developer tools in tools/. The only package that imports the others."""
