# Kubernetes: images, a local kind/k3d cluster with the whole platform, training Jobs, and
# the offline proof of the manifests (`make k8s-check`, part of `make test`).

IMAGE_TAG ?= 0.1.0
IMAGE_REPO ?= bukva
# image name -> Dockerfile; `make images` builds exactly these (tests/k8s checks the manifests
# use no other bukva image).
CLUSTER_IMAGES := predictor:model/Dockerfile transformer:transformer/Dockerfile \
	frontend:frontend/Dockerfile trainer:pipelines/Dockerfile
DOCKER ?= docker

.PHONY: images
images: ## Build the four component images (bukva/{predictor,transformer,frontend,trainer}:$(IMAGE_TAG))
	@set -e; for spec in $(CLUSTER_IMAGES); do \
		name=$${spec%%:*}; file=$${spec#*:}; \
		echo "[images] $(IMAGE_REPO)/$$name:$(IMAGE_TAG) <- $$file"; \
		$(DOCKER) build -f $$file -t $(IMAGE_REPO)/$$name:$(IMAGE_TAG) .; \
	done

.PHONY: print-images
print-images: ## List the image references `make images` builds
	@for spec in $(CLUSTER_IMAGES); do echo "$(IMAGE_REPO)/$${spec%%:*}:$(IMAGE_TAG)"; done

.PHONY: cluster-up
cluster-up: $(ENV_STAMP) ## Create a kind/k3d cluster with KServe, the platform and the app; train there (~20-30 min first time)
	IMAGE_TAG=$(IMAGE_TAG) scripts/cluster-up.sh

.PHONY: cluster-down
cluster-down: ## Delete the local cluster made by cluster-up (volumes included)
	scripts/cluster-down.sh

.PHONY: train-job
train-job: $(ENV_STAMP) ## Re-run training in the cluster as Kubernetes Jobs (DVC stages -> MLflow champion)
	scripts/cluster-train.sh

.PHONY: helm
helm: ## Put a pinned helm in .tools/bin when none is on PATH
	@scripts/get-helm.sh

.PHONY: k8s-check
k8s-check: $(ENV_STAMP) ## Offline proof: helm lint/template, schemas, wiring, policy, Dockerfiles, execution
	@scripts/get-helm.sh >/dev/null
	$(BIN)/pytest tests/k8s -m k8s -q
