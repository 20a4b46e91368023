// Command ingest is where producers send events. It serves, on TRIGGER_HTTP_ADDR:
//
//	POST /events           store one event (202; an Idempotency-Key replay answers 200)
//	POST /events/batch     store up to 100 events, each judged on its own
//	GET  /events/{id}      read one of the tenant's events
//	GET  /livez, /readyz   probes; GET /metrics (only on TRIGGER_METRICS_ADDR when set); GET /openapi.json
//
// Each stored event is announced to the inbox replicas of TRIGGER_NOTIFY_PEERS.
// `ingest --help` lists its settings.
package main

import (
	"github.com/trigger-api/trigger-api/pkg/startup"
	"github.com/trigger-api/trigger-api/services/ingest/ingestapi"
)

var program = startup.Program{
	Name:  "ingest",
	Serve: startup.Cmd[ingestapi.Config]("", "serve the ingest API", ingestapi.Run),
}

func main() { startup.Main(program) }
