package adminapi

import (
	"time"

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
	// Neither is required by envconfig: exactly one of the two must be set, which Run checks.
	AdminTokensFile   string        `envconfig:"ADMIN_TOKENS_FILE" desc:"file of admin bearer tokens id:secret (id: 1-32 of a-z, 0-9, -, named in audit lines; secret: at least 32 characters), one per line or comma-separated, # starts a comment line; read again while running, so tokens change without a restart. The service refuses to start without a good set"`
	AdminTokensReload time.Duration `envconfig:"ADMIN_TOKENS_RELOAD_INTERVAL" default:"2s" desc:"how often TRIGGER_ADMIN_TOKENS_FILE is read again; a change that does not parse keeps the last good tokens and logs an error"`
	AdminTokens       []string      `envconfig:"ADMIN_TOKENS" secret:"true" desc:"for local use instead of TRIGGER_ADMIN_TOKENS_FILE: comma-separated admin bearer tokens id:secret, read once at start"`
}

// TablesConfig is the configuration of `keys-admin ensure-tables`: only what reaching DynamoDB
// needs, so the job that creates the tables never holds an admin token.
type TablesConfig struct {
	logging.Options
	ddb.Settings
}
