// Package app is the keys-admin service: the admin API for tenants and their API keys, and the
// step that creates the DynamoDB tables.
package adminapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
)

// MinTokenLen is the shortest admin token accepted: long enough that guessing is hopeless.
const MinTokenLen = 32

// ParseAdminTokens checks the configured admin tokens and returns their checker. It refuses an
// empty list and any token shorter than MinTokenLen, so a missing or mistyped secret stops the
// service instead of leaving the admin API open or guessable.
func ParseAdminTokens(tokens []string) (httpx.AdminTokens, error) {
	if len(tokens) == 0 {
		return httpx.AdminTokens{}, errors.New("no admin token configured: set TRIGGER_ADMIN_TOKENS to one or more comma-separated tokens of at least 32 characters")
	}
	for i, t := range tokens {
		// The message names the position only: a token, even a bad one, never reaches a log.
		if utf8.RuneCountInString(strings.TrimSpace(t)) < MinTokenLen {
			return httpx.AdminTokens{}, fmt.Errorf("admin token %d of %d in TRIGGER_ADMIN_TOKENS is shorter than %d characters", i+1, len(tokens), MinTokenLen)
		}
	}
	return httpx.NewAdminTokens(tokens), nil
}

// Run serves the admin API until ctx ends.
func Run(ctx context.Context, log *zap.Logger, cfg Config) error {
	tokens, err := ParseAdminTokens(cfg.AdminTokens)
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
	go ddb.WatchHealth(ctx, log, telemetry.FromContext(ctx), client, tables.Tenants, tables.APIKeys)
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
