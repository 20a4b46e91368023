// Command inbox serves GET /inbox and POST /ack.
package main

import (
	"github.com/trigger-api/trigger-api/pkg/startup"
	"github.com/trigger-api/trigger-api/services/inbox/inboxapi"
)

func main() { startup.Main("inbox", inboxapi.Run) }
