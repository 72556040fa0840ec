# Local platform services (MLflow on PostgreSQL + S3) and hyperparameter tuning.
# See docs/services.md. After `make services`, `source run/services/env` points every
# command (dvc repro, make tune, the predictor) at the services; without it, the embedded
# file-based defaults apply.

SERVICES_ARGS ?=
TUNE_ARGS ?=

.PHONY: services
services: $(ENV_STAMP) ## Start MLflow (PostgreSQL + S3 artifacts) and an S3 endpoint; then `source run/services/env`
	$(PY) -m launch.services up $(SERVICES_ARGS)

.PHONY: services-down
services-down: ## Stop the services started by `make services` (PURGE=1 also drops the MLflow database)
	$(PY) -m launch.services down $(if $(PURGE),--purge,)

.PHONY: services-status
services-status: ## Show which local services are running
	@$(PY) -m launch.services status

.PHONY: dvc-remote-s3
dvc-remote-s3: $(ENV_STAMP) ## Make the S3 bucket of `make services` this checkout's default DVC remote (.dvc/config.local)
	$(PY) -m launch.services dvc-remote

.PHONY: tune
tune: $(ENV_STAMP) ## Optuna study over the train knobs (BUKVA_TUNE_TRIALS/MINUTES/EPOCHS); writes the best into params.yaml
	$(PY) -m pipelines.tune $(TUNE_ARGS)
