# Monitoring and the feedback loop. See docs/monitoring.md.
# `make prometheus` scrapes the local services: predictor :8090 and transformer :8080 (`make serve`),
# the app's /metrics on :9102 (`make app`); its UI and HTTP API are on 127.0.0.1:9090.

PROMETHEUS_ARGS ?=

.PHONY: prometheus
prometheus: $(ENV_STAMP) ## Run Prometheus on 127.0.0.1:9090 scraping serve + app, with monitoring/rules (foreground)
	exec $(PY) -m launch.prometheus $(PROMETHEUS_ARGS)

.PHONY: rules-check
rules-check: ## Check and unit-test the Prometheus rules with promtool
	promtool check rules monitoring/rules/bukva.rules.yml
	cd monitoring/rules && promtool test rules bukva.rules.test.yml

.PHONY: review
review: $(ENV_STAMP) ## List new feedback, most doubtful first (python -m pipelines.review: reject ID, approve-all)
	$(BIN)/python -m pipelines.review list

.PHONY: retrain
retrain: $(ENV_STAMP) ## Re-read the feedback store (params ingest.feedback; reviewed records only), re-run the pipeline, gate and register
	$(BIN)/dvc repro --force --single-item ingest
	$(BIN)/dvc repro
	cat reports/registration.json

.PHONY: test-monitoring
test-monitoring: $(ENV_STAMP) ## Monitoring tests: promtool, a real Prometheus scraping real servers; the feedback loop
	$(BIN)/pytest tests/monitoring tests/loop -q
