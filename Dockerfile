# syntax=docker/dockerfile:1
# One image per component: docker build --build-arg COMPONENT=ingest -t trigger-api/ingest:<tag> .
# COMPONENT is one of ingest, inbox, keys-admin, worker.

ARG GO_VERSION=1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG COMPONENT
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Each module builds on its own (GOWORK=off) with a replace to ../pkg, so the image needs only pkg
# and the component's module; the bind mount keeps the context out of the image layers and the cache
# mounts keep modules and compiled packages between builds.
RUN --mount=type=bind,target=/src \
    --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    case "${COMPONENT:-}" in \
      ingest|inbox|keys-admin) dir="services/${COMPONENT}" ;; \
      worker) dir="worker" ;; \
      *) echo "COMPONENT must be one of ingest, inbox, keys-admin, worker (got '${COMPONENT:-}')" >&2; exit 1 ;; \
    esac; \
    mkdir -p /out; cd "$dir"; \
    GOWORK=off CGO_ENABLED=0 GOOS="$TARGETOS" GOARCH="$TARGETARCH" \
      go build -trimpath -ldflags="-s -w" -o /out/app .

# distroless/static: no shell, no package manager, CA certificates for AWS, uid 65532.
FROM ${RUNTIME_IMAGE}
ARG COMPONENT
LABEL org.opencontainers.image.source="https://github.com/trigger-api/trigger-api" \
      org.opencontainers.image.title="trigger-api-${COMPONENT}"
COPY --from=build /out/app /app
USER 65532:65532
ENTRYPOINT ["/app"]
