package app

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/trigger-api/trigger-api/pkg/logging"
)

// MaxBatchSize is the largest page GET /inbox serves.
const MaxBatchSize = 100

// Config is the worker's whole configuration, read from TRIGGER_* variables.
type Config struct {
	logging.Options
	InboxURL       string        `envconfig:"INBOX_URL" required:"true" desc:"base URL of the inbox API, e.g. http://127.0.0.1:8080"`
	APIKeys        []string      `envconfig:"API_KEYS" required:"true" secret:"true" desc:"comma-separated tenant API keys; one polling loop per key"`
	PollInterval   time.Duration `envconfig:"POLL_INTERVAL" default:"2s" desc:"pause between inbox reads when the inbox is empty"`
	BatchSize      int           `envconfig:"BATCH_SIZE" default:"50" desc:"events read per inbox call (1-100)"`
	RequestTimeout time.Duration `envconfig:"REQUEST_TIMEOUT" default:"10s" desc:"timeout of each call to the inbox API"`
}

// Validate rejects settings the loop cannot work with. Its messages never contain a key.
func (c Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.InboxURL)
	switch {
	case err != nil:
		// Not wrapped: url.Parse's error repeats the URL, credentials and all.
		errs = append(errs, errors.New("TRIGGER_INBOX_URL: not a valid URL"))
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, errors.New("TRIGGER_INBOX_URL: want an absolute http or https URL"))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, errors.New("TRIGGER_INBOX_URL: want a base URL without credentials, query or fragment"))
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		errs = append(errs, fmt.Errorf("TRIGGER_BATCH_SIZE: %d is not in 1..%d", c.BatchSize, MaxBatchSize))
	}
	if c.PollInterval <= 0 {
		errs = append(errs, errors.New("TRIGGER_POLL_INTERVAL: must be positive"))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, errors.New("TRIGGER_REQUEST_TIMEOUT: must be positive"))
	}
	return errors.Join(errs...)
}
