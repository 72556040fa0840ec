"""Local-run tooling: the processes `make serve`, `make up`, `make app`, `make services` and
`make prometheus` start, written once and used by the make targets and the tests alike."""
