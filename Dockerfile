# One image per component, usually through `make images`:
#   docker buildx build --build-arg COMPONENT=ingest -t trigger-api/ingest:<tag> .
# COMPONENT is one of ingest, inbox, keys-admin, worker. No syntax line: the frontend built into
# BuildKit reads this file, so a build needs no frontend image from a registry.
#
# Both bases are arguments, so a machine without a registry can build from images of its own
# (deploy/tests/images does): GO_IMAGE needs go on its PATH and a POSIX sh; RUNTIME_IMAGE only has
# to hold what distroless/static holds (CA certificates, a passwd with uid 65532), or be scratch.
ARG GO_IMAGE=golang:1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

# The build runs on the builder's own platform and cross-compiles, so an arm64 image needs no
# emulation.
FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG COMPONENT
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_DATE=unknown
WORKDIR /src
# Each module builds on its own (GOWORK=off) with a replace to ../pkg, so the image needs only pkg
# and the component's module; the bind mount keeps the context out of the image layers and the cache
# mounts keep modules and compiled packages between builds. pkg is a replaced module, so its full
# import path is the one -X stamps.
RUN --mount=type=bind,target=/src \
    --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    case "${COMPONENT:-}" in \
      ingest|inbox|keys-admin) dir="services/${COMPONENT}" ;; \
      worker) dir="worker" ;; \
      *) echo "COMPONENT must be one of ingest, inbox, keys-admin, worker (got '${COMPONENT:-}')" >&2; exit 1 ;; \
    esac; \
    bi=github.com/trigger-api/trigger-api/pkg/buildinfo; \
    mkdir -p /out; cd "$dir"; \
    GOWORK=off CGO_ENABLED=0 GOOS="$TARGETOS" GOARCH="$TARGETARCH" \
      go build -trimpath \
        -ldflags="-s -w -X ${bi}.version=${VERSION} -X ${bi}.commit=${COMMIT} -X ${bi}.date=${BUILD_DATE}" \
        -o /out/app .

# distroless/static: no shell, no package manager, CA certificates for AWS, uid 65532.
FROM ${RUNTIME_IMAGE}
ARG COMPONENT
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_DATE=unknown
LABEL org.opencontainers.image.source="https://github.com/trigger-api/trigger-api" \
      org.opencontainers.image.title="trigger-api-${COMPONENT}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${BUILD_DATE}"
COPY --from=build /out/app /app
USER 65532:65532
ENTRYPOINT ["/app"]
