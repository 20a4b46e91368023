// Package backend is the wiring root of the tenant-facing services: it builds the DynamoDB
// client and the adapters over it, and hands them up as the domain's interfaces.
package backend

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
)

// Backend is what ingest and inbox stand on: one DynamoDB client, the event store and the key
// authenticator.
type Backend struct {
	Client *dynamodb.Client
	Tables ddb.Tables
	Events *eventsdb.Store
	Auth   *tenant.Authenticator
}

// Open builds component's backend (ddb.ComponentIngest or ddb.ComponentInbox) from the shared
// settings, checks the tables once (a missing table or refused credentials stop the start) and
// watches DynamoDB's health until ctx ends.
func Open(ctx context.Context, log *zap.Logger, component string, s ddb.Settings, auth tenant.AuthConfig) (*Backend, error) {
	client, err := ddb.NewClient(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("dynamodb client: %w", err)
	}
	tables := ddb.TableNames(s.TablePrefix)
	if err := ddb.CheckAtStart(ctx, log, client, tables.All()...); err != nil {
		return nil, err
	}
	go ddb.WatchHealth(ctx, log, telemetry.FromContext(ctx), client, component, tables)
	a := tenant.NewAuthenticator(tenantdb.New(client, tables), auth, nil)
	go a.FollowReplicas(ctx, log, nil)
	return &Backend{
		Client: client,
		Tables: tables,
		Events: eventsdb.New(client, tables),
		Auth:   a,
	}, nil
}
