package inboxapi

import (
	"time"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/logging"
	"github.com/trigger-api/trigger-api/pkg/notify"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// Config is the inbox service's whole configuration, read from TRIGGER_* variables.
type Config struct {
	HTTPAddr string `envconfig:"HTTP_ADDR" default:":8082" desc:"listen address, host:port"`
	logging.Options
	httpx.ServerConfig
	ddb.Settings
	tenant.AuthConfig
	telemetry.MetricsOptions
	notify.PeersConfig
	notify.PortConfig
	LongPollBackstop time.Duration `envconfig:"LONG_POLL_BACKSTOP" default:"90s" desc:"how long a waiting long poll trusts its tenant's quiet inbox before reading it again: the most a lost notification delays an event, and about one read per waiting tenant per interval while idle"`
}
