package main

import (
	"encoding/json"
	"testing"
	"time"
)

func TestEventBodyPadsToSize(t *testing.T) {
	small := eventBody(0)
	for _, size := range []int{0, len(small) + 10, 1024, 64 << 10} {
		b := eventBody(size)
		if !json.Valid(b) {
			t.Fatalf("size %d: invalid JSON %q", size, b)
		}
		if want := max(size, len(small)); len(b) != want {
			t.Fatalf("size %d: got %d bytes, want %d", size, len(b), want)
		}
	}
}

func TestValidateOptions(t *testing.T) {
	base := func() options {
		return options{
			suite: suiteAll, duration: time.Second, concurrency: 1, order: "ABBA",
			delivery:  deliveryOptions{rate: 25, latency: time.Second, drainEvents: 10, replicas: "1,4", drainTimeout: time.Second},
			cost:      costOptions{events: 40, sizes: "1,16,64"},
			isolation: isolationOptions{phase: time.Second},
		}
	}
	for name, change := range map[string]func(*options){
		"suite-unknown":          func(o *options) { o.suite = "latency" },
		"suite-list-unknown":     func(o *options) { o.suite = "ingest,latency" },
		"suite-list-with-scale":  func(o *options) { o.suite = "ingest,scale" },
		"order-one-kind":         func(o *options) { o.order = "AA" },
		"order-bad-letter":       func(o *options) { o.order = "ABC" },
		"remote-endpoint":        func(o *options) { o.endpoint = "http://10.0.0.5:8000" },
		"zero-concurrency":       func(o *options) { o.concurrency = 0 },
		"negative-service-procs": func(o *options) { o.serviceProcs = -1 },
		"negative-duration":      func(o *options) { o.duration = -time.Second },
		"zero-rate":              func(o *options) { o.delivery.rate = 0 },
		"negative-lead":          func(o *options) { o.delivery.lead = -time.Second },
		"zero-drain-events":      func(o *options) { o.delivery.drainEvents = 0 },
		"replicas-zero":          func(o *options) { o.delivery.replicas = "0,4" },
		"replicas-not-a-number":  func(o *options) { o.delivery.replicas = "1,four" },
		"replicas-too-many":      func(o *options) { o.delivery.replicas = "17" },
		"delivery-bad-with-only": func(o *options) { o.suite, o.delivery.rate = suiteDelivery, -1 },
		"isolation-zero-phase":   func(o *options) { o.suite, o.isolation.phase = suiteIsolation, 0 },
		"cost-zero-events":       func(o *options) { o.suite, o.cost.events = suiteCost, 0 },
		"cost-bad-size":          func(o *options) { o.cost.sizes = "1,big" },
		"external-not-only-ingest": func(o *options) {
			o.endpoint, o.external = "http://127.0.0.1:8000", externalIngest{"http://127.0.0.1:9000", "k", "p_"}
		},
		"external-no-key": func(o *options) {
			o.suite, o.endpoint, o.external = suiteIngest, "http://127.0.0.1:8000", externalIngest{"http://127.0.0.1:9000", "", "p_"}
		},
		"external-no-endpoint": func(o *options) {
			o.suite, o.external = suiteIngest, externalIngest{"http://127.0.0.1:9000", "k", "p_"}
		},
		"external-remote": func(o *options) {
			o.suite, o.endpoint, o.external = suiteIngest, "http://127.0.0.1:8000", externalIngest{"http://10.0.0.5:9000", "k", "p_"}
		},
	} {
		o := base()
		change(&o)
		if validateOptions(o) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, change := range map[string]func(*options){
		"defaults":                    func(*options) {},
		"loopback-endpoint":           func(o *options) { o.endpoint = "http://127.0.0.1:8000" },
		"ingest-only-ignores-rate":    func(o *options) { o.suite, o.delivery.rate = suiteIngest, 0 },
		"delivery-only-ignores-order": func(o *options) { o.suite, o.order = suiteDelivery, "" },
		"isolation-only-ignores-rate": func(o *options) { o.suite, o.delivery.rate = suiteIsolation, 0 },
		"cost-only-ignores-rate":      func(o *options) { o.suite, o.delivery.rate = suiteCost, 0 },
		"ingest-and-delivery":         func(o *options) { o.suite = "ingest,delivery" },
		"services-on-every-core":      func(o *options) { o.serviceProcs = 0 },
		"external-ingest": func(o *options) {
			o.suite, o.endpoint, o.external = suiteIngest, "http://127.0.0.1:8000", externalIngest{"http://127.0.0.1:9000", "k", "p_"}
		},
	} {
		o := base()
		change(&o)
		if err := validateOptions(o); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseReplicas(t *testing.T) {
	got, err := parseReplicas(" 1, 4 ")
	if err != nil || len(got) != 2 || got[0] != 1 || got[1] != 4 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestSuitesRunAsNamed(t *testing.T) {
	o := options{suite: "ingest,delivery"}
	if !o.runs(suiteIngest) || !o.runs(suiteDelivery) || o.runs(suiteCost) || o.runs(suiteIsolation) {
		t.Errorf("ingest,delivery: ingest %v delivery %v cost %v isolation %v", o.runs(suiteIngest), o.runs(suiteDelivery), o.runs(suiteCost), o.runs(suiteIsolation))
	}
	if all := (options{suite: suiteAll}); !all.runs(suiteCost) {
		t.Error("all does not run cost")
	}
}
