# Kubernetes delivery: container images and the chart checks. Included by the Makefile.
K8S_COMPONENTS := ingest inbox keys-admin worker
# Images are <repository>/<component>:<tag>; the tag defaults to the chart's appVersion, which is
# also the chart's default image tag.
IMAGE_REPOSITORY ?= trigger-api
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/trigger-api/Chart.yaml)
KIND_CLUSTER ?= trigger-api

.PHONY: images images-kind chart-lint $(addprefix image-,$(K8S_COMPONENTS))

## images: build one image per component with Docker (IMAGE_REPOSITORY, IMAGE_TAG to override)
images: $(addprefix image-,$(K8S_COMPONENTS))

$(addprefix image-,$(K8S_COMPONENTS)): image-%:
	docker build --build-arg COMPONENT=$* -t $(IMAGE_REPOSITORY)/$*:$(IMAGE_TAG) .

## images-kind: build the images and load them into the kind cluster (for helm install without Tilt)
images-kind: images
	kind load docker-image --name $(KIND_CLUSTER) $(foreach c,$(K8S_COMPONENTS),$(IMAGE_REPOSITORY)/$(c):$(IMAGE_TAG))

## chart-lint: helm lint --strict, strict rendering checks, the Tiltfile and the AWS template (no helm binary needed)
chart-lint:
	go test -count=1 ./deploy/tests/chart/...
