package ingestapi

import (
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/logging"
	"github.com/trigger-api/trigger-api/pkg/notify"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// Config is the ingest service's whole configuration, read from TRIGGER_* variables.
type Config struct {
	HTTPAddr string `envconfig:"HTTP_ADDR" default:":8081" desc:"listen address, host:port"`
	logging.Options
	httpx.ServerConfig
	ddb.Settings
	tenant.AuthConfig
	telemetry.MetricsOptions
	notify.PeersConfig
}
