// Command ingest serves POST /events and GET /events/{id}.
package main

import (
	"github.com/trigger-api/trigger-api/pkg/service"
	"github.com/trigger-api/trigger-api/services/ingest/app"
)

func main() { service.Main("ingest", app.Run) }
