# Serving: the KServe predictor and transformer as local processes, registration and benchmarks.
# See docs/serving.md. Ports: transformer 8080 (HTTP) / 8081 (gRPC), predictor 8090 / 8091.
# `serve`, `up`, `bench` and `parity` start the servers alike (launch/serve.py): log level
# KSERVE_LOGLEVEL (default WARNING), per-request trace BUKVA_REQUEST_TRACE (default off).

SERVE_ARGS ?=
BENCH_ARGS ?=

.PHONY: serve
serve: $(ENV_STAMP) ## Serve bukva-cnn@champion: transformer :8080 -> predictor :8090 (Ctrl-C stops all)
	exec $(PY) -m launch.serve $(SERVE_ARGS)

.PHONY: register
register: $(ENV_STAMP) ## Register models/model in MLflow; move @champion only if it beats the current one
	$(BIN)/dvc repro register

.PHONY: bench
bench: $(ENV_STAMP) ## Latency, throughput, CPU per request: transformer -> predictor against a one-hop baseline -> reports/bench.json (needs wrk)
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	$(PY) -m bench.load $(BENCH_ARGS)

.PHONY: parity
parity: $(ENV_STAMP) ## Test split as PNGs through the transformer == evaluate's top-1 -> reports/parity.json
	$(PY) -m bench.parity

.PHONY: test-serving
test-serving: $(ENV_STAMP) ## Serving tests: unit + real servers on loopback (REST, gRPC, faults, registry)
	$(BIN)/pytest tests/serving -q
