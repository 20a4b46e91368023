package adminapi

import (
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/logging"
)

// Config is the keys-admin service's whole configuration, read from TRIGGER_* variables.
type Config struct {
	HTTPAddr string `envconfig:"HTTP_ADDR" default:":8083" desc:"listen address, host:port"`
	logging.Options
	httpx.ServerConfig
	ddb.Settings
	AdminTokens []string `envconfig:"ADMIN_TOKENS" required:"true" secret:"true" desc:"comma-separated admin bearer tokens, each at least 32 characters; the service refuses to start without one"`
}

// TablesConfig is the configuration of `keys-admin ensure-tables`: only what reaching DynamoDB
// needs, so the job that creates the tables never holds an admin token.
type TablesConfig struct {
	logging.Options
	ddb.Settings
}
