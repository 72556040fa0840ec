# The Streamlit drawing app (frontend/). See docs/frontend.md.
# The app needs the transformer at BUKVA_INFERENCE_URL (default http://127.0.0.1:8080); it
# starts without it and says in the page that the service is unreachable.

APP_ADDRESS ?= 127.0.0.1
APP_PORT ?= 8501
APP_URL = http://$(APP_ADDRESS):$(APP_PORT)
# The app alone, through the launcher that `make up` uses (its Streamlit flags live there).
APP_CMD = $(PY) -m launch.serve --no_servers --app --mlflow_port 0 \
	--app_address $(APP_ADDRESS) --app_port $(APP_PORT)

.PHONY: app
app: $(ENV_STAMP) ## Run the drawing app in the foreground (http://127.0.0.1:8501)
	exec $(APP_CMD)

.PHONY: app-start
app-start: $(ENV_STAMP) ## Start the drawing app in the background (run/app.log) and print its URL
	@mkdir -p run
	if [ -f run/app.pid ] && kill -0 "$$(cat run/app.pid)" 2>/dev/null; then
		echo "bukva app already running: $(APP_URL)"; exit 0
	fi
	nohup $(APP_CMD) >run/app.log 2>&1 &
	echo $$! >run/app.pid
	for _ in $$(seq 60); do
		$(PY) -c 'import sys, httpx; sys.exit(httpx.get(sys.argv[1], timeout=1).status_code != 200)' \
			"$(APP_URL)/_stcore/health" 2>/dev/null && break
		kill -0 "$$(cat run/app.pid)" 2>/dev/null || break
		sleep 1
	done
	if ! kill -0 "$$(cat run/app.pid)" 2>/dev/null; then
		echo "bukva app did not start; see run/app.log:"; tail -n 20 run/app.log; exit 1
	fi
	echo "bukva app: $(APP_URL)  (stop with: make app-stop)"

.PHONY: app-stop
app-stop: ## Stop the app started by app-start
	@if [ -f run/app.pid ] && kill "$$(cat run/app.pid)" 2>/dev/null; then echo "bukva app stopped"; fi
	rm -f run/app.pid

.PHONY: test-frontend
test-frontend: $(ENV_STAMP) ## Test the app's parts and the feedback store (S3 via moto on loopback)
	$(BIN)/pytest tests/frontend -q

.PHONY: test-browser
test-browser: $(ENV_STAMP) ## Drive the app in Chromium with the real servers (screenshots, latency report)
	$(BIN)/pytest tests/browser -m browser -q -s

# The tests write their screenshots to reports/browser/ (ignored by git); this copies the
# README's into docs/ on purpose. Train and register a champion first (`make repro`):
# BUKVA_TEST_CHAMPION=1 makes the test stack serve models:/bukva-cnn@champion from
# MLFLOW_TRACKING_URI (default: the local mlruns/ store) as `make up` does, and show its registry
# version and reports/metrics.json (tests/browser/conftest.py); `make test-browser` does not.
README_SHOTS = frontend.png frontend-model.png

# Stroke-to-answer in Chromium, warm and fresh sessions, against the registry champion as `make
# up` serves it; the test writes reports/browser/latency.json (ignored), this keeps it in the
# tracked reports/latency.json with the machine and load it was measured on.
.PHONY: latency
latency: $(ENV_STAMP) ## Stroke-to-answer in Chromium, warm and fresh sessions -> reports/latency.json
	set -e
	BUKVA_TEST_CHAMPION=1 $(BIN)/pytest tests/browser/test_latency.py -m bench -q -s -p no:cacheprovider
	cp reports/browser/latency.json reports/latency.json
	echo "reports/latency.json: stroke-to-answer figures of this run"

.PHONY: screenshots
screenshots: $(ENV_STAMP) ## Refresh the README's screenshots of the app (docs/frontend*.png)
	set -e
	BUKVA_TEST_CHAMPION=1 $(BIN)/pytest tests/browser/test_drawing_app.py -m browser -q \
		-p no:cacheprovider -k give_feedback
	for shot in $(README_SHOTS); do cp reports/browser/$$shot docs/$$shot; done
	echo "docs/: $(README_SHOTS) refreshed from reports/browser/"
