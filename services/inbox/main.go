// Command inbox is where workers take their tenant's events from. It serves, on
// TRIGGER_HTTP_ADDR:
//
//	GET  /inbox            list undelivered events, oldest first; leases nothing
//	POST /inbox/pull       lease up to 100 visible events, long-polling up to 20 s
//	POST /inbox/extend     extend held leases
//	POST /ack, POST /nack  settle events (by lease or by id)
//	GET  /inbox/dead       list dead events; POST /inbox/redrive puts them back
//	GET  /livez, /readyz   probes; GET /metrics (only on TRIGGER_METRICS_ADDR when set); GET /openapi.json
//
// and, on TRIGGER_NOTIFY_ADDR, an internal POST /notify where ingest and inbox replicas announce
// new events to wake the long polls waiting here.
// `inbox --help` lists its settings.
package main

import (
	"github.com/trigger-api/trigger-api/pkg/startup"
	"github.com/trigger-api/trigger-api/services/inbox/inboxapi"
)

var program = startup.Program{
	Name:  "inbox",
	Serve: startup.Cmd[inboxapi.Config]("", "serve the inbox API", inboxapi.Run),
}

func main() { startup.Main(program) }
