package app

import (
	"time"

	"github.com/trigger-api/trigger-api/pkg/logging"
)

// Config is the worker's whole configuration, read from TRIGGER_* variables.
type Config struct {
	logging.Options
	InboxURL       string        `envconfig:"INBOX_URL" required:"true" desc:"base URL of the inbox API, e.g. http://127.0.0.1:8080"`
	APIKeys        []string      `envconfig:"API_KEYS" required:"true" secret:"true" desc:"comma-separated tenant API keys; one polling loop per key"`
	PollInterval   time.Duration `envconfig:"POLL_INTERVAL" default:"2s" desc:"pause between inbox reads when the inbox is empty"`
	BatchSize      int           `envconfig:"BATCH_SIZE" default:"50" desc:"events read per inbox call (1-100)"`
	RequestTimeout time.Duration `envconfig:"REQUEST_TIMEOUT" default:"10s" desc:"timeout of each call to the inbox API"`
}
