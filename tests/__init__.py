"""zapvisor's test-suite: a package, so `tests.conftest` never resolves to the stray
top-level `tests` package a dependency (linkpreview, via neonize) installs."""
