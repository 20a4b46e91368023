// Command inbox serves GET /inbox and POST /ack.
package main

import (
	"github.com/trigger-api/trigger-api/pkg/service"
	"github.com/trigger-api/trigger-api/services/inbox/app"
)

func main() { service.Main("inbox", app.Run) }
