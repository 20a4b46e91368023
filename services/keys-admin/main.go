// Command keys-admin is the operators' API for tenants and their API keys; it is never exposed
// publicly. It serves, on TRIGGER_HTTP_ADDR, with an admin token on every route:
//
//	POST/GET   /admin/tenants, GET/PATCH /admin/tenants/{tenant_id}
//	POST/GET   /admin/tenants/{tenant_id}/keys
//	DELETE     /admin/tenants/{tenant_id}/keys/{key_id}, POST .../roll
//	GET /livez, /readyz   probes; GET /metrics (only on TRIGGER_METRICS_ADDR when set); GET /openapi.json
//
// `keys-admin ensure-tables` creates the DynamoDB tables and exits; `--help` lists settings.
package main

import (
	"github.com/trigger-api/trigger-api/pkg/startup"
	"github.com/trigger-api/trigger-api/services/keys-admin/adminapi"
)

var program = startup.Program{
	Name:  "keys-admin",
	Serve: startup.Cmd[adminapi.Config]("", "serve the admin API", adminapi.Run),
	Commands: []startup.Command{
		startup.Cmd[adminapi.TablesConfig]("ensure-tables", "create the DynamoDB tables and exit", adminapi.EnsureTables),
	},
}

func main() { startup.Main(program) }
