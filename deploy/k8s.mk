# Kubernetes delivery: version stamping, container images, the chart's package and checks.
# Included by the Makefile.
K8S_COMPONENTS := ingest inbox keys-admin worker
BUILDX_VERSION := v0.38.2

# What every binary and image says it is. Evaluated once per make run, so four images built
# together carry one date; each can be given (the release passes the tag's).
ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
ifeq ($(origin COMMIT),undefined)
COMMIT := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
endif
ifeq ($(origin BUILD_DATE),undefined)
BUILD_DATE := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
endif
BUILDINFO_PKG := github.com/trigger-api/trigger-api/pkg/buildinfo
GO_LDFLAGS := -X $(BUILDINFO_PKG).version=$(VERSION) -X $(BUILDINFO_PKG).commit=$(COMMIT) -X $(BUILDINFO_PKG).date=$(BUILD_DATE)

# Images are <repository>/<component>:<tag>. A tag per commit (git describe) rather than the
# chart's appVersion, so a cluster with imagePullPolicy IfNotPresent pulls each new one.
IMAGE_REPOSITORY ?= trigger-api
IMAGE_TAG ?= $(VERSION)
# More than one platform needs a builder that can hold a manifest list: a docker-container
# builder (BUILDER=...) and PUSH=1, or an engine with the containerd image store.
PLATFORMS ?= linux/amd64,linux/arm64
# PUSH=1 pushes to IMAGE_REPOSITORY instead of loading into the local engine.
PUSH ?=
# Empty: the Dockerfile's defaults (golang, distroless/static).
GO_IMAGE ?=
RUNTIME_IMAGE ?=
# Where buildx writes each image's metadata (its pushed digest among it); empty for none.
METADATA_DIR ?=
# The buildx builder to use; empty for the current one (the engine's own, on a fresh machine).
BUILDER ?=
# The network of the build's RUN steps; none proves a build needs no download (the tests' does).
BUILD_NETWORK ?=
# buildx as a standalone binary, pinned here; BUILDX="docker buildx" uses the CLI's plugin.
BUILDX_BIN := $(CACHE)/bin/buildx-$(BUILDX_VERSION)
BUILDX ?= $(BUILDX_BIN)

# The chart's version is the release's without the v; its appVersion is the image tag.
CHART_DIR := charts/trigger-api
CHART_VERSION ?= $(patsubst v%,%,$(VERSION))
CHART_APP_VERSION ?= $(IMAGE_TAG)
CHART_OUT ?= $(CACHE)/chart
CHART_REGISTRY ?= oci://ghcr.io/trigger-api/charts
KIND_CLUSTER ?= trigger-api

.PHONY: images images-kind buildx buildx-builder chart-lint chart-package chart-push $(addprefix image-,$(K8S_COMPONENTS))

## images: build one image per component for PLATFORMS with buildx, tagged IMAGE_TAG (git describe);
##         PUSH=1 pushes them to IMAGE_REPOSITORY; GO_IMAGE, RUNTIME_IMAGE replace the bases
images: $(addprefix image-,$(K8S_COMPONENTS))

$(addprefix image-,$(K8S_COMPONENTS)): image-%: buildx
	$(if $(METADATA_DIR),@mkdir -p $(METADATA_DIR))
	$(BUILDX) build $(if $(BUILDER),--builder $(BUILDER)) $(if $(BUILD_NETWORK),--network $(BUILD_NETWORK)) --platform $(PLATFORMS) \
	  --build-arg COMPONENT=$* --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg BUILD_DATE=$(BUILD_DATE) \
	  $(if $(GO_IMAGE),--build-arg GO_IMAGE=$(GO_IMAGE)) $(if $(RUNTIME_IMAGE),--build-arg RUNTIME_IMAGE=$(RUNTIME_IMAGE)) \
	  $(if $(PUSH),--push --provenance=mode=max,--load) \
	  $(if $(METADATA_DIR),--metadata-file $(METADATA_DIR)/$*.json) \
	  -t $(IMAGE_REPOSITORY)/$*:$(IMAGE_TAG) .

## buildx: the pinned buildx, built from source into .cache/bin (skipped when BUILDX is overridden)
buildx: $(if $(filter $(BUILDX_BIN),$(BUILDX)),$(BUILDX_BIN))

$(BUILDX_BIN):
	GOWORK=off GOBIN=$(CACHE)/bin/buildx-build go install \
	  -ldflags "-X github.com/docker/buildx/version.Version=$(BUILDX_VERSION)" github.com/docker/buildx/cmd/buildx@$(BUILDX_VERSION)
	mv $(CACHE)/bin/buildx-build/buildx $@ && rmdir $(CACHE)/bin/buildx-build

## buildx-builder: a docker-container builder named BUILDER, which can build several platforms at once
buildx-builder: buildx
	@test -n "$(BUILDER)" || { echo "usage: make buildx-builder BUILDER=<name>"; exit 2; }
	$(BUILDX) inspect $(BUILDER) >/dev/null 2>&1 || $(BUILDX) create --name $(BUILDER) --driver docker-container --bootstrap

## images-kind: build the images for this machine and load them into the kind cluster
images-kind: PLATFORMS = linux/$(shell go env GOARCH)
images-kind: images
	kind load docker-image --name $(KIND_CLUSTER) $(foreach c,$(K8S_COMPONENTS),$(IMAGE_REPOSITORY)/$(c):$(IMAGE_TAG))

## chart-lint: helm lint --strict, strict rendering checks, the Tiltfile and the AWS template (no helm binary needed)
chart-lint:
	go test -count=1 ./deploy/tests/chart/...

## chart-package: the chart as CHART_OUT/trigger-api-CHART_VERSION.tgz, its appVersion IMAGE_TAG (needs helm)
chart-package:
	@mkdir -p $(CHART_OUT)
	helm package $(CHART_DIR) --version $(CHART_VERSION) --app-version $(CHART_APP_VERSION) --destination $(CHART_OUT)

## chart-push: push the packaged chart to CHART_REGISTRY as an OCI artifact (needs helm, logged in)
chart-push: chart-package
	helm push $(CHART_OUT)/trigger-api-$(CHART_VERSION).tgz $(CHART_REGISTRY)
