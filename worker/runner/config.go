package runner

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/logging"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// MaxConcurrency bounds the events one key may hold at once.
const MaxConcurrency = 1000

// Limits of the consumer calls, as the API states them: the worker refuses settings the API
// would refuse.
const (
	// maxBatchSize is the most events one pull leases and one settle call names.
	maxBatchSize  = min(api.MaxPullEvents, api.MaxSettleItems)
	maxVisibility = api.MaxVisibilitySeconds * time.Second
	maxNackDelay  = api.MaxNackDelaySeconds * time.Second
)

// Config is the worker's whole configuration, read from TRIGGER_* variables.
type Config struct {
	logging.Options
	InboxURL          string        `envconfig:"INBOX_URL" required:"true" desc:"base URL of the inbox API, e.g. http://127.0.0.1:8080"`
	APIKeys           []string      `envconfig:"API_KEYS" required:"true" secret:"true" desc:"comma-separated tenant API keys; one consumer per key"`
	Concurrency       int           `envconfig:"CONCURRENCY" default:"10" desc:"events each key processes at once: the leases it holds while processing (1-1000)"`
	BatchSize         int           `envconfig:"BATCH_SIZE" default:"10" desc:"most events leased per pull and acknowledged per ack call (1-100)"`
	WaitSeconds       int           `envconfig:"WAIT_SECONDS" default:"20" desc:"how long a pull waits for events when none is visible (long poll, 0-20 seconds; 0 polls)"`
	VisibilityTimeout time.Duration `envconfig:"VISIBILITY_TIMEOUT" default:"30s" desc:"lease of each pulled event, in whole seconds (1s-12h); extended while processing runs past half of it"`
	NackDelay         time.Duration `envconfig:"NACK_DELAY" default:"10s" desc:"when processing fails, how long until the event is offered again, in whole seconds (0-12h)"`
	AckInterval       time.Duration `envconfig:"ACK_INTERVAL" default:"50ms" desc:"longest an acknowledgement waits for its batch to fill before it is sent"`
	PollInterval      time.Duration `envconfig:"POLL_INTERVAL" default:"1s" desc:"least time between the starts of two pulls that found nothing: the polling pace with TRIGGER_WAIT_SECONDS=0, a guard against a hot loop otherwise"`
	ShutdownTimeout   time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"15s" desc:"after SIGTERM, how long events in hand may finish; those still running are then nacked. Keep it plus TRIGGER_REQUEST_TIMEOUT below the pod's grace period"`
	RequestTimeout    time.Duration `envconfig:"REQUEST_TIMEOUT" default:"10s" desc:"timeout of each call to the inbox API, on top of a pull's long-poll wait"`
	MetricsAddr       string        `envconfig:"METRICS_ADDR" desc:"listen address, host:port, of GET /metrics (Prometheus) and GET /livez; empty serves none"`
	telemetry.MetricsOptions
}

// Validate rejects settings the worker cannot work with. Its messages never contain a key.
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
	if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
		errs = append(errs, fmt.Errorf("TRIGGER_CONCURRENCY: %d is not in 1..%d", c.Concurrency, MaxConcurrency))
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		errs = append(errs, fmt.Errorf("TRIGGER_BATCH_SIZE: %d is not in 1..%d", c.BatchSize, maxBatchSize))
	}
	if c.WaitSeconds < 0 || c.WaitSeconds > api.MaxWaitSeconds {
		errs = append(errs, fmt.Errorf("TRIGGER_WAIT_SECONDS: %d is not in 0..%d", c.WaitSeconds, api.MaxWaitSeconds))
	}
	if err := wholeSeconds(c.VisibilityTimeout, time.Second, maxVisibility); err != nil {
		errs = append(errs, fmt.Errorf("TRIGGER_VISIBILITY_TIMEOUT: %w", err))
	}
	if err := wholeSeconds(c.NackDelay, 0, maxNackDelay); err != nil {
		errs = append(errs, fmt.Errorf("TRIGGER_NACK_DELAY: %w", err))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"TRIGGER_ACK_INTERVAL", c.AckInterval},
		{"TRIGGER_POLL_INTERVAL", c.PollInterval},
		{"TRIGGER_SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
		{"TRIGGER_REQUEST_TIMEOUT", c.RequestTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive", d.name))
		}
	}
	return errors.Join(errs...)
}

// wholeSeconds checks a duration the API takes in whole seconds, so what is sent is what was
// configured rather than a silently rounded value.
func wholeSeconds(d, lo, hi time.Duration) error {
	switch {
	case d < lo || d > hi:
		return fmt.Errorf("%v is not in %v..%v", d, lo, hi)
	case d%time.Second != 0:
		return fmt.Errorf("%v is not a whole number of seconds", d)
	}
	return nil
}

func (c Config) visibilitySeconds() int { return int(c.VisibilityTimeout / time.Second) }
func (c Config) nackDelaySeconds() int  { return int(c.NackDelay / time.Second) }

// pullTimeout bounds one pull: the long poll itself plus an ordinary call's time.
func (c Config) pullTimeout() time.Duration {
	return time.Duration(c.WaitSeconds)*time.Second + c.RequestTimeout
}
