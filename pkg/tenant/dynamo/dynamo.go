// Package dynamo stores tenants and API keys in DynamoDB.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// Store implements tenant.Store.
type Store struct {
	client *dynamodb.Client
	tables ddb.Tables
}

var _ tenant.Store = (*Store)(nil)

// New returns a store over the given tables.
func New(client *dynamodb.Client, tables ddb.Tables) *Store {
	return &Store{client: client, tables: tables}
}

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func tenantToItem(t tenant.Tenant) ddb.Item {
	return ddb.Item{
		"tenant_id":      ddb.S(t.ID),
		"name":           ddb.S(t.Name),
		"status":         ddb.S(string(t.Status)),
		"partitions":     ddb.N(int64(t.Partitions)),
		"max_deliveries": ddb.N(int64(t.MaxDeliveries)),
		"retention_days": ddb.N(int64(t.RetentionDays)),
		"rate_limit":     ddb.N(int64(t.RateLimit)),
		"created_at":     ddb.N(millis(t.CreatedAt)),
		"updated_at":     ddb.N(millis(t.UpdatedAt)),
	}
}

func tenantFromItem(it ddb.Item) tenant.Tenant {
	return tenant.Tenant{
		ID:            ddb.GetS(it, "tenant_id"),
		Name:          ddb.GetS(it, "name"),
		Status:        tenant.Status(ddb.GetS(it, "status")),
		Partitions:    int(ddb.GetN(it, "partitions")),
		MaxDeliveries: int(ddb.GetN(it, "max_deliveries")),
		RetentionDays: int(ddb.GetN(it, "retention_days")),
		RateLimit:     int(ddb.GetN(it, "rate_limit")), // absent on older items: the default
		CreatedAt:     fromMillis(ddb.GetN(it, "created_at")),
		UpdatedAt:     fromMillis(ddb.GetN(it, "updated_at")),
	}
}

func keyToItem(k tenant.APIKey) ddb.Item {
	scopes := make([]string, len(k.Scopes))
	for i, s := range k.Scopes {
		scopes[i] = string(s)
	}
	it := ddb.Item{
		"key_hash":   ddb.S(k.Hash),
		"key_id":     ddb.S(k.ID),
		"tenant_id":  ddb.S(k.TenantID),
		"prefix":     ddb.S(k.Prefix),
		"scopes":     ddb.SS(scopes),
		"status":     ddb.S(string(k.Status)),
		"created_at": ddb.N(millis(k.CreatedAt)),
	}
	if k.Label != "" {
		it["label"] = ddb.S(k.Label)
	}
	if !k.ExpiresAt.IsZero() {
		it["expires_at"] = ddb.N(millis(k.ExpiresAt))
	}
	if !k.RevokedAt.IsZero() {
		it["revoked_at"] = ddb.N(millis(k.RevokedAt))
	}
	if !k.LastUsedAt.IsZero() {
		it["last_used_at"] = ddb.N(millis(k.LastUsedAt))
	}
	return it
}

func keyFromItem(it ddb.Item) tenant.APIKey {
	var scopes []tenant.Scope
	for _, s := range ddb.GetSS(it, "scopes") {
		scopes = append(scopes, tenant.Scope(s))
	}
	// Sets come back unordered; keep the canonical order so answers are stable.
	slices.SortFunc(scopes, func(a, b tenant.Scope) int {
		return slices.Index(tenant.AllScopes, a) - slices.Index(tenant.AllScopes, b)
	})
	return tenant.APIKey{
		ID:        ddb.GetS(it, "key_id"),
		TenantID:  ddb.GetS(it, "tenant_id"),
		Hash:      ddb.GetS(it, "key_hash"),
		Prefix:    ddb.GetS(it, "prefix"),
		Label:     ddb.GetS(it, "label"),
		Scopes:    scopes,
		Status:    tenant.KeyStatus(ddb.GetS(it, "status")),
		CreatedAt: fromMillis(ddb.GetN(it, "created_at")),
		ExpiresAt: fromMillis(ddb.GetN(it, "expires_at")),
		RevokedAt: fromMillis(ddb.GetN(it, "revoked_at")),
		// Absent until the first authentication after the field was introduced.
		LastUsedAt: fromMillis(ddb.GetN(it, "last_used_at")),
	}
}

// CreateTenant writes a new tenant; tenant.ErrExists if the id is taken.
func (s *Store) CreateTenant(ctx context.Context, t tenant.Tenant) error {
	item := tenantToItem(t)
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.tables.Tenants),
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(tenant_id)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		// The same creation time and name: this put, applied by an attempt whose answer was
		// lost and retried by the SDK.
		if ccf.Item != nil && ddb.GetN(ccf.Item, "created_at") == ddb.GetN(item, "created_at") &&
			ddb.GetS(ccf.Item, "name") == ddb.GetS(item, "name") {
			return nil
		}
		return fmt.Errorf("create tenant %s: %w", t.ID, tenant.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create tenant: %w", ddb.Translate(err))
	}
	return nil
}

// GetTenant reads one tenant with a consistent read.
func (s *Store) GetTenant(ctx context.Context, id string) (tenant.Tenant, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.tables.Tenants),
		Key:            ddb.Item{"tenant_id": ddb.S(id)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("get tenant: %w", ddb.Translate(err))
	}
	if out.Item == nil {
		return tenant.Tenant{}, tenant.ErrNotFound
	}
	return tenantFromItem(out.Item), nil
}

// ListTenants pages through tenants in table order; after is the last id of the previous page.
func (s *Store) ListTenants(ctx context.Context, limit int, after string) ([]tenant.Tenant, string, error) {
	in := &dynamodb.ScanInput{
		TableName:      aws.String(s.tables.Tenants),
		Limit:          aws.Int32(int32(limit)),
		ConsistentRead: aws.Bool(true),
	}
	if after != "" {
		in.ExclusiveStartKey = ddb.Item{"tenant_id": ddb.S(after)}
	}
	out, err := s.client.Scan(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("list tenants: %w", ddb.Translate(err))
	}
	tenants := make([]tenant.Tenant, 0, len(out.Items))
	for _, it := range out.Items {
		tenants = append(tenants, tenantFromItem(it))
	}
	next := ""
	if out.LastEvaluatedKey != nil {
		next = ddb.GetS(out.LastEvaluatedKey, "tenant_id")
	}
	return tenants, next, nil
}

// UpdateTenant sets the patched fields in one conditional write; the condition also keeps
// partitions from shrinking under a concurrent update.
func (s *Store) UpdateTenant(ctx context.Context, id string, p tenant.Patch, at time.Time) (tenant.Tenant, error) {
	set := []string{"updated_at = :at"}
	names := map[string]string{}
	vals := ddb.Item{":at": ddb.N(millis(at))}
	cond := "attribute_exists(tenant_id)"
	if p.Status != nil {
		set = append(set, "#status = :status")
		names["#status"] = "status"
		vals[":status"] = ddb.S(string(*p.Status))
	}
	if p.Partitions != nil {
		// PARTITIONS is a reserved word in DynamoDB expressions.
		set = append(set, "#partitions = :partitions")
		names["#partitions"] = "partitions"
		vals[":partitions"] = ddb.N(int64(*p.Partitions))
		cond += " AND #partitions <= :partitions"
	}
	if p.MaxDeliveries != nil {
		set = append(set, "max_deliveries = :max_deliveries")
		vals[":max_deliveries"] = ddb.N(int64(*p.MaxDeliveries))
	}
	if p.RetentionDays != nil {
		set = append(set, "retention_days = :retention_days")
		vals[":retention_days"] = ddb.N(int64(*p.RetentionDays))
	}
	if p.RateLimit != nil {
		set = append(set, "rate_limit = :rate_limit")
		vals[":rate_limit"] = ddb.N(int64(*p.RateLimit))
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.tables.Tenants),
		Key:                                 ddb.Item{"tenant_id": ddb.S(id)},
		UpdateExpression:                    aws.String("SET " + strings.Join(set, ", ")),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeValues:           vals,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if len(names) > 0 {
		in.ExpressionAttributeNames = names
	}
	out, err := s.client.UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		if ccf.Item == nil {
			return tenant.Tenant{}, tenant.ErrNotFound
		}
		return tenant.Tenant{}, tenant.ErrPartitionsShrink
	}
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("update tenant: %w", ddb.Translate(err))
	}
	return tenantFromItem(out.Attributes), nil
}

// CreateKey stores a key's metadata under its hash.
//
// Beside it goes a pointer item from (tenant, key id) to the hash, so revoke and roll find the
// key with consistent reads; the tenant index alone would be eventually consistent and could
// miss a key issued a moment ago. The pointer has no tenant_id, so it stays out of that index.
func (s *Store) CreateKey(ctx context.Context, k tenant.APIKey) error {
	_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{
			TableName:           aws.String(s.tables.APIKeys),
			Item:                keyToItem(k),
			ConditionExpression: aws.String("attribute_not_exists(key_hash)"),
		}},
		{Put: &types.Put{
			TableName:           aws.String(s.tables.APIKeys),
			Item:                ddb.Item{"key_hash": ddb.S(pointerKey(k.TenantID, k.ID)), "target_hash": ddb.S(k.Hash)},
			ConditionExpression: aws.String("attribute_not_exists(key_hash)"),
		}},
	}})
	if err != nil {
		// A hash collision of two fresh 190-bit secrets does not happen; treat it as any failure.
		return fmt.Errorf("create key: %w", ddb.Translate(err))
	}
	return nil
}

// KeyByHash reads a key by the hash of its secret.
func (s *Store) KeyByHash(ctx context.Context, hash string) (tenant.APIKey, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.tables.APIKeys),
		Key:            ddb.Item{"key_hash": ddb.S(hash)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return tenant.APIKey{}, fmt.Errorf("get key: %w", ddb.Translate(err))
	}
	if out.Item == nil {
		return tenant.APIKey{}, tenant.ErrKeyNotFound
	}
	return keyFromItem(out.Item), nil
}

// KeyAndTenant reads a key and a tenant in one consistent BatchGetItem: an active key's
// re-reads are most of what an idle tenant costs, and one call is half the calls of two.
func (s *Store) KeyAndTenant(ctx context.Context, hash, tenantID string) (tenant.APIKey, tenant.Tenant, error) {
	request := map[string]types.KeysAndAttributes{
		s.tables.APIKeys: {Keys: []ddb.Item{{"key_hash": ddb.S(hash)}}, ConsistentRead: aws.Bool(true)},
		s.tables.Tenants: {Keys: []ddb.Item{{"tenant_id": ddb.S(tenantID)}}, ConsistentRead: aws.Bool(true)},
	}
	found, err := ddb.BatchGet(ctx, s.client, request)
	if err != nil {
		return tenant.APIKey{}, tenant.Tenant{}, fmt.Errorf("get key and tenant: %w", err)
	}
	if len(found[s.tables.APIKeys]) == 0 {
		return tenant.APIKey{}, tenant.Tenant{}, tenant.ErrKeyNotFound
	}
	k := keyFromItem(found[s.tables.APIKeys][0])
	if len(found[s.tables.Tenants]) == 0 {
		return k, tenant.Tenant{}, tenant.ErrNotFound
	}
	return k, tenantFromItem(found[s.tables.Tenants][0]), nil
}

// GetKey finds a tenant's key by id through the tenant index.
func (s *Store) GetKey(ctx context.Context, tenantID, keyID string) (tenant.APIKey, error) {
	ptr, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.tables.APIKeys),
		Key:            ddb.Item{"key_hash": ddb.S(pointerKey(tenantID, keyID))},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return tenant.APIKey{}, fmt.Errorf("get key pointer: %w", ddb.Translate(err))
	}
	if ptr.Item == nil {
		return tenant.APIKey{}, tenant.ErrKeyNotFound
	}
	k, err := s.KeyByHash(ctx, ddb.GetS(ptr.Item, "target_hash"))
	if err != nil {
		return tenant.APIKey{}, err
	}
	if k.TenantID != tenantID || k.ID != keyID {
		return tenant.APIKey{}, tenant.ErrKeyNotFound
	}
	return k, nil
}

// pointerKey cannot collide with a real key's hash, which is 64 hex characters.
func pointerKey(tenantID, keyID string) string { return "key#" + tenantID + "#" + keyID }

// ListKeys returns every key of a tenant, oldest id first.
func (s *Store) ListKeys(ctx context.Context, tenantID string) ([]tenant.APIKey, error) {
	p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName:                 aws.String(s.tables.APIKeys),
		IndexName:                 aws.String(ddb.KeysByTenantIndex),
		KeyConditionExpression:    aws.String("tenant_id = :t"),
		ExpressionAttributeValues: ddb.Item{":t": ddb.S(tenantID)},
	})
	var keys []tenant.APIKey
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", ddb.Translate(err))
		}
		for _, it := range out.Items {
			keys = append(keys, keyFromItem(it))
		}
	}
	return keys, nil
}

// RevokeKey marks a key revoked; revoking twice keeps the first revocation time.
func (s *Store) RevokeKey(ctx context.Context, tenantID, keyID string, at time.Time) (tenant.APIKey, error) {
	k, err := s.updateKey(ctx, tenantID, keyID, &dynamodb.UpdateItemInput{
		UpdateExpression:          aws.String("SET #status = :revoked, revoked_at = if_not_exists(revoked_at, :at)"),
		ConditionExpression:       aws.String("tenant_id = :t"),
		ExpressionAttributeNames:  map[string]string{"#status": "status"},
		ExpressionAttributeValues: ddb.Item{":revoked": ddb.S(string(tenant.KeyRevoked)), ":at": ddb.N(millis(at)), ":t": ddb.S(tenantID)},
	})
	if errors.Is(err, errEarlier) {
		// The only condition is the key's tenant, which never changes: the item vanished
		// between the read and the update. The internal sentinel must not reach callers.
		return tenant.APIKey{}, fmt.Errorf("revoke key %s: %w", keyID, tenant.ErrKeyNotFound)
	}
	return k, err
}

// ExpireKeyBy moves a key's expiry to at unless it already expires earlier.
func (s *Store) ExpireKeyBy(ctx context.Context, tenantID, keyID string, at time.Time) (tenant.APIKey, error) {
	k, err := s.updateKey(ctx, tenantID, keyID, &dynamodb.UpdateItemInput{
		UpdateExpression:          aws.String("SET expires_at = :at"),
		ConditionExpression:       aws.String("tenant_id = :t AND (attribute_not_exists(expires_at) OR expires_at > :at)"),
		ExpressionAttributeValues: ddb.Item{":at": ddb.N(millis(at)), ":t": ddb.S(tenantID)},
	})
	if errors.Is(err, errEarlier) {
		return s.GetKey(ctx, tenantID, keyID)
	}
	return k, err
}

// RecordKeyUse sets last_used_at in one conditional write. The condition on tenant_id keeps the
// write from creating an item for a key deleted meanwhile and from touching pointer items.
func (s *Store) RecordKeyUse(ctx context.Context, hash string, at, since time.Time) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.tables.APIKeys),
		Key:                       ddb.Item{"key_hash": ddb.S(hash)},
		UpdateExpression:          aws.String("SET last_used_at = :at"),
		ConditionExpression:       aws.String("attribute_exists(tenant_id) AND (attribute_not_exists(last_used_at) OR last_used_at <= :since)"),
		ExpressionAttributeValues: ddb.Item{":at": ddb.N(millis(at)), ":since": ddb.N(millis(since))},
	})
	if ddb.IsConditionFailed(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("record key use: %w", ddb.Translate(err))
	}
	return nil
}

var errEarlier = errors.New("condition failed on an existing key")

func (s *Store) updateKey(ctx context.Context, tenantID, keyID string, in *dynamodb.UpdateItemInput) (tenant.APIKey, error) {
	k, err := s.GetKey(ctx, tenantID, keyID)
	if err != nil {
		return tenant.APIKey{}, err
	}
	in.TableName = aws.String(s.tables.APIKeys)
	in.Key = ddb.Item{"key_hash": ddb.S(k.Hash)}
	in.ReturnValues = types.ReturnValueAllNew
	out, err := s.client.UpdateItem(ctx, in)
	if ddb.IsConditionFailed(err) {
		// The key exists for this tenant (GetKey found it), so only the extra condition failed.
		return tenant.APIKey{}, errEarlier
	}
	if err != nil {
		return tenant.APIKey{}, fmt.Errorf("update key: %w", ddb.Translate(err))
	}
	return keyFromItem(out.Attributes), nil
}
