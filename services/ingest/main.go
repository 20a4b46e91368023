// Command ingest serves POST /events and GET /events/{id}.
package main

import (
	"github.com/trigger-api/trigger-api/pkg/startup"
	"github.com/trigger-api/trigger-api/services/ingest/ingestapi"
)

func main() { startup.Main("ingest", ingestapi.Run) }
