// Package adminapi is the keys-admin service: the admin API for tenants and their API keys, and the
// step that creates the DynamoDB tables.
package adminapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
)

// adminAuth builds the admin token check from whichever of the two settings is set, and starts
// reading the file again in the background until ctx ends.
func adminAuth(ctx context.Context, log *zap.Logger, cfg Config) (AdminAuth, error) {
	switch {
	case cfg.AdminTokensFile != "" && len(cfg.AdminTokens) > 0:
		return nil, errors.New("set TRIGGER_ADMIN_TOKENS_FILE or TRIGGER_ADMIN_TOKENS, not both: tokens from two places could not be rotated from one")
	case cfg.AdminTokensFile != "":
		if cfg.AdminTokensReload <= 0 {
			return nil, errors.New("TRIGGER_ADMIN_TOKENS_RELOAD_INTERVAL must be positive")
		}
		f, err := LoadTokenFile(log, cfg.AdminTokensFile)
		if err != nil {
			return nil, err
		}
		go f.Watch(ctx, cfg.AdminTokensReload)
		return f, nil
	}
	set, err := ParseAdminTokens(cfg.AdminTokens)
	if err != nil {
		return nil, fmt.Errorf("TRIGGER_ADMIN_TOKENS: %w", err)
	}
	log.Info("admin tokens loaded", zap.Strings("admin_ids", set.IDs()))
	return set, nil
}

// Run serves the admin API until ctx ends.
func Run(ctx context.Context, log *zap.Logger, cfg Config) error {
	// Ends the token file's reader when Run fails before serving, too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tokens, err := adminAuth(ctx, log, cfg)
	if err != nil {
		return err
	}
	client, err := ddb.NewClient(ctx, cfg.Settings)
	if err != nil {
		return fmt.Errorf("dynamodb client: %w", err)
	}
	tables := ddb.TableNames(cfg.TablePrefix)
	if err := ddb.CheckAtStart(ctx, log, client, tables.Tenants, tables.APIKeys); err != nil {
		return err
	}
	go ddb.WatchHealth(ctx, log, telemetry.FromContext(ctx), client, ddb.ComponentKeysAdmin, tables)
	router := NewRouter(log, dynamo.New(client, tables), tokens, httpx.ServingUntil(ctx), time.Now)
	return httpx.Serve(ctx, log, cfg.HTTPAddr, cfg.ServerConfig, httpx.Instrument(router, telemetry.FromContext(ctx)))
}

// EnsureTables creates whichever tables are missing and waits until they are active. Running
// it again changes nothing, so the dev stack and a Kubernetes Job can both call it freely.
func EnsureTables(ctx context.Context, log *zap.Logger, cfg TablesConfig) error {
	client, err := ddb.NewClient(ctx, cfg.Settings)
	if err != nil {
		return fmt.Errorf("dynamodb client: %w", err)
	}
	tables := ddb.TableNames(cfg.TablePrefix)
	if err := ddb.EnsureTables(ctx, client, tables); err != nil {
		return fmt.Errorf("ensure tables: %w", err)
	}
	log.Info("tables ready", zap.Strings("tables", tables.All()))
	return nil
}
