# Kubernetes: images, a local kind/k3d cluster with the whole platform, training Jobs, and
# the offline proof of the manifests (`make k8s-check`, part of `make test`).

# The tag of every image, chart value and Job of a run: the commit, plus "-dirty-<hash>" when
# the tree differs from it (scripts/cluster-tag.sh), so rebuilt images always roll out.
IMAGE_TAG ?= $(shell scripts/cluster-tag.sh)
IMAGE_REPO ?= bukva
# image name:Dockerfile[:component]; `make images` builds exactly these (tests/k8s checks the
# manifests use no other bukva image). The three light images are targets of the shared root
# Dockerfile, each built with its component (folder and extra) as COMPONENT.
CLUSTER_IMAGES := predictor:Dockerfile:model transformer:Dockerfile:transformer \
	frontend:Dockerfile:frontend trainer:pipelines/Dockerfile
# Build only these names (e.g. ONLY=trainer); empty: all four.
ONLY ?=
DOCKER ?= docker

.PHONY: images
images: ## Build the four component images ($(IMAGE_REPO)/{predictor,transformer,frontend,trainer}:<IMAGE_TAG>)
	@set -e; for spec in $(CLUSTER_IMAGES); do \
		name=$${spec%%:*}; file=$${spec#*:}; component=$${file#*:}; file=$${file%%:*}; \
		[ "$$component" != "$$file" ] || component=; \
		case " $(or $(ONLY),$$name) " in *" $$name "*) ;; *) continue ;; esac; \
		echo "[images] $(IMAGE_REPO)/$$name:$(IMAGE_TAG) <- $$file $${component:+(target $$name)}"; \
		$(DOCKER) build -f $$file $${component:+--target $$name --build-arg COMPONENT=$$component} \
			-t $(IMAGE_REPO)/$$name:$(IMAGE_TAG) .; \
	done

.PHONY: print-images
print-images: ## List the image references `make images` builds
	@for spec in $(CLUSTER_IMAGES); do echo "$(IMAGE_REPO)/$${spec%%:*}:$(IMAGE_TAG)"; done

.PHONY: cluster-up
cluster-up: ## Create a kind/k3d cluster with KServe, the platform and the app; train there (~20-30 min first time)
	IMAGE_TAG=$(IMAGE_TAG) scripts/cluster-up.sh

.PHONY: cluster-down
cluster-down: ## Delete the local cluster made by cluster-up (volumes included) and its registry
	scripts/cluster-down.sh

.PHONY: train-job
train-job: ## Re-run training in the cluster as Jobs; a promoted version rolls out (helm upgrade)
	IMAGE_TAG=$(IMAGE_TAG) scripts/cluster-train.sh

# `make cluster up|down|train`, the two-word form, runs cluster-up, cluster-down or train-job.
# The second word is a goal too: it is made a no-op here (the Makefile keeps its own `up` out
# of the way when the first goal is `cluster`).
CLUSTER_VERBS := up down train
ifeq (cluster,$(firstword $(MAKECMDGOALS)))
CLUSTER_VERB := $(word 2,$(MAKECMDGOALS))
$(filter-out up,$(CLUSTER_VERBS)):
	@:
endif
.PHONY: cluster
cluster: ## `make cluster up|down|train`: the same as cluster-up, cluster-down, train-job
	@case "$(CLUSTER_VERB)" in \
		up|down) exec $(MAKE) --no-print-directory cluster-$(CLUSTER_VERB) ;; \
		train) exec $(MAKE) --no-print-directory train-job ;; \
		*) echo "usage: make cluster up|down|train" >&2; exit 2 ;; \
	esac

.PHONY: helm
helm: ## Put a pinned helm in .tools/bin when none is on PATH
	@scripts/get-helm.sh

.PHONY: k8s-check
k8s-check: $(ENV_STAMP) ## Offline proof: helm lint/template, schemas, wiring, policy, Dockerfiles, scripts, execution
	@scripts/get-helm.sh >/dev/null
	$(BIN)/pytest tests/k8s -m k8s -q
