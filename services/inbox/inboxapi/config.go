package inboxapi

import (
	"time"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/logging"
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
	LongPollMinInterval time.Duration `envconfig:"LONG_POLL_MIN_INTERVAL" default:"25ms" desc:"how often a tenant's inbox is checked for waiting long polls right after activity"`
	LongPollMaxInterval time.Duration `envconfig:"LONG_POLL_MAX_INTERVAL" default:"250ms" desc:"the slowest check while a tenant's inbox stays empty"`
}
