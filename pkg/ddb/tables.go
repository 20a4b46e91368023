package ddb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// Table and index names and the key attributes. These are the single definition of the schema:
// the adapters, the ensure-tables step and the production templates are checked against them.
const (
	TenantsTable = "Tenants"
	APIKeysTable = "TenantApiKeys"
	EventsTable  = "Events"

	// KeysByTenantIndex lists one tenant's keys: partition tenant_id, sort key_id.
	KeysByTenantIndex = "tenant_id-key_id-index"
	// InboxIndex is the sparse index of undelivered events: partition inbox_pk, sort inbox_sk.
	InboxIndex = "inbox-index"
	// DeadIndex is the sparse index of dead events: partition dead_pk (the tenant), sort dead_sk.
	DeadIndex = "dead-index"

	// EventsTTLAttribute holds the epoch-seconds expiry DynamoDB TTL deletes on.
	EventsTTLAttribute = "expires_at"
)

// Tables names the three tables, with the configured prefix applied.
type Tables struct {
	Tenants string
	APIKeys string
	Events  string
}

// TableNames applies prefix to the table names.
func TableNames(prefix string) Tables {
	return Tables{Tenants: prefix + TenantsTable, APIKeys: prefix + APIKeysTable, Events: prefix + EventsTable}
}

// Name is the name of base table TenantsTable, APIKeysTable or EventsTable; empty for another.
func (t Tables) Name(base string) string {
	switch base {
	case TenantsTable:
		return t.Tenants
	case APIKeysTable:
		return t.APIKeys
	case EventsTable:
		return t.Events
	}
	return ""
}

// All returns the names in a fixed order.
func (t Tables) All() []string { return []string{t.Tenants, t.APIKeys, t.Events} }

// TableSpec is one table: how to create it and, when it has one, its TTL attribute.
type TableSpec struct {
	Create       *dynamodb.CreateTableInput
	TTLAttribute string
}

func attr(name string) types.AttributeDefinition {
	return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
}

func key(name string, t types.KeyType) types.KeySchemaElement {
	return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: t}
}

// Specs returns the definitions of the three tables.
func (t Tables) Specs() []TableSpec {
	onDemand := types.BillingModePayPerRequest
	return []TableSpec{
		{Create: &dynamodb.CreateTableInput{
			TableName:            aws.String(t.Tenants),
			BillingMode:          onDemand,
			AttributeDefinitions: []types.AttributeDefinition{attr("tenant_id")},
			KeySchema:            []types.KeySchemaElement{key("tenant_id", types.KeyTypeHash)},
		}},
		{Create: &dynamodb.CreateTableInput{
			TableName:            aws.String(t.APIKeys),
			BillingMode:          onDemand,
			AttributeDefinitions: []types.AttributeDefinition{attr("key_hash"), attr("tenant_id"), attr("key_id")},
			KeySchema:            []types.KeySchemaElement{key("key_hash", types.KeyTypeHash)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
				IndexName:  aws.String(KeysByTenantIndex),
				KeySchema:  []types.KeySchemaElement{key("tenant_id", types.KeyTypeHash), key("key_id", types.KeyTypeRange)},
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
			}},
		}},
		{Create: &dynamodb.CreateTableInput{
			TableName:            aws.String(t.Events),
			BillingMode:          onDemand,
			AttributeDefinitions: []types.AttributeDefinition{attr("tenant_id"), attr("event_id"), attr("inbox_pk"), attr("inbox_sk"), attr("dead_pk"), attr("dead_sk")},
			KeySchema:            []types.KeySchemaElement{key("tenant_id", types.KeyTypeHash), key("event_id", types.KeyTypeRange)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
				IndexName: aws.String(InboxIndex),
				KeySchema: []types.KeySchemaElement{key("inbox_pk", types.KeyTypeHash), key("inbox_sk", types.KeyTypeRange)},
				// The listing filters on event_type and shows received_at; the payload stays out.
				Projection: &types.Projection{
					ProjectionType:   types.ProjectionTypeInclude,
					NonKeyAttributes: []string{"event_type", "received_at"},
				},
			}, {
				IndexName:  aws.String(DeadIndex),
				KeySchema:  []types.KeySchemaElement{key("dead_pk", types.KeyTypeHash), key("dead_sk", types.KeyTypeRange)},
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
			}},
		}, TTLAttribute: EventsTTLAttribute},
	}
}

// EnsureTables creates every missing table, waits until each is active and turns TTL on where
// a table has one. Running it again changes nothing.
func EnsureTables(ctx context.Context, client *dynamodb.Client, t Tables) error {
	for _, spec := range t.Specs() {
		name := aws.ToString(spec.Create.TableName)
		_, err := client.CreateTable(ctx, spec.Create)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create table %s: %w", name, err)
		}
		waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay = 100 * time.Millisecond
			o.MaxDelay = 2 * time.Second
		})
		if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 5*time.Minute); err != nil {
			return fmt.Errorf("wait for table %s: %w", name, err)
		}
		if spec.TTLAttribute == "" {
			continue
		}
		ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("describe ttl %s: %w", name, err)
		}
		if d := ttl.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == spec.TTLAttribute &&
			(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
			continue
		}
		_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName:               aws.String(name),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(spec.TTLAttribute), Enabled: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("enable ttl %s: %w", name, err)
		}
	}
	return nil
}

// ErrMisconfigured marks a failure no retry fixes: a missing table, or credentials DynamoDB
// refuses. A service that meets it at start-up stops with the reason instead of serving 503s.
var ErrMisconfigured = errors.New("dynamodb is misconfigured")

// misconfigured are the error codes of a deployment mistake rather than a passing failure.
var misconfigured = map[string]string{
	"ResourceNotFoundException":   "the table does not exist: create it (keys-admin ensure-tables, or the CloudFormation stack in deploy/aws) or fix TRIGGER_TABLE_PREFIX",
	"AccessDeniedException":       "access denied: the role these credentials come from (IRSA on EKS) lacks a DynamoDB permission on this table",
	"UnrecognizedClientException": "the credentials are not valid for this account or region",
	"InvalidSignatureException":   "the request signature was refused: check the credentials and region",
	"MissingAuthenticationToken":  "no credentials were sent: check the AWS credential chain (IRSA service account annotation on EKS)",
}

// Check describes every table. A misconfiguration comes back wrapping ErrMisconfigured with
// what to fix; anything else is translated as usual.
func Check(ctx context.Context, client *dynamodb.Client, names ...string) error {
	for _, name := range names {
		_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err := classify("describe table", name, err); err != nil {
			return err
		}
	}
	return nil
}

// classify wraps a failed call on table name: in ErrMisconfigured with what to fix when no
// retry can help, translated as usual otherwise.
func classify(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var api smithy.APIError
	if errors.As(err, &api) && misconfigured[api.ErrorCode()] != "" {
		return fmt.Errorf("%w: table %s: %s (%s)", ErrMisconfigured, name, misconfigured[api.ErrorCode()], api.ErrorCode())
	}
	return fmt.Errorf("%s %s: %w", op, name, Translate(err))
}
