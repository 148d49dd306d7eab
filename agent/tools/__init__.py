"""What a developer or a city's model team runs, not what runs on the box: `bench` (and `bench_streams`,
with `bench_common` they share), `scenario` and `scenario_eval`, `evaluate`, `training` (train, export,
int8). Not re-exported: the CLI imports each command's module only when that command runs."""
