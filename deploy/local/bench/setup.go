package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/client"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/proc"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
)

// benchTenant owns every event the bench writes, through the service and directly alike, so
// both phases write to the same partition key of the same table.
const benchTenant = "bench"

// randomPrefix names a fresh set of tables, so runs against a shared DynamoDB Local never see
// each other's items.
func randomPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "bench" + hex.EncodeToString(b[:]) + "_"
}

// seed creates a tenant and a key for it straight in the tables, as the admin API would,
// and returns the key.
func seed(ctx context.Context, client *dynamodb.Client, tables ddb.Tables, tenantID string) (string, error) {
	store := tenantdb.New(client, tables)
	now := time.Now().UTC()
	err := store.CreateTenant(ctx, tenant.Tenant{
		ID: tenantID, Name: tenantID, Status: tenant.StatusActive, Partitions: 1,
		MaxDeliveries: tenant.DefaultMaxDeliveries, RetentionDays: tenant.DefaultRetentionDays,
		CreatedAt: now, UpdatedAt: now,
	})
	// A put the SDK retried after a lost answer finds its own tenant: the tenant is there.
	if err != nil && !errors.Is(err, tenant.ErrExists) {
		return "", fmt.Errorf("create tenant: %w", err)
	}
	k, err := apikey.New(tenantID)
	if err != nil {
		return "", err
	}
	err = store.CreateKey(ctx, tenant.APIKey{
		ID: "key_" + k.Hash()[:24], TenantID: tenantID, Hash: k.Hash(), Prefix: k.Prefix(),
		Scopes: tenant.AllScopes, Status: tenant.KeyActive, CreatedAt: now,
	})
	if err != nil {
		return "", fmt.Errorf("create key: %w", err)
	}
	return k.String(), nil
}

func deleteTables(ctx context.Context, client *dynamodb.Client, tables ddb.Tables) {
	for _, name := range tables.All() {
		_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	}
}

// buildBinaries compiles the real binaries into binDir in one go invocation, so shared
// packages compile once. Building first, rather than `go run`, keeps the compiler out of the
// CPU accounting and gives each process a pid that is the binary itself.
func buildBinaries(ctx context.Context, root, binDir string, pkgs ...string) error {
	args := append([]string{"build", "-o", binDir + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", strings.Join(pkgs, " "), err)
	}
	return nil
}

// childEnv is the caller's environment less its TRIGGER_*, AWS_* and OTEL_* variables, so a
// developer's shell settings cannot point a child elsewhere, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRIGGER_") && !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// serviceEnv is what a service binary needs to serve on addr from the bench's tables. The
// tenant rate limit is set far above any rate reached here: the limiter still runs on every
// request, but never refuses one, so the figures are capacity, not the default limit.
// GOMEMLIMIT is what a service derives from the chart's 256 MiB pod limit, which this machine
// does not impose, so its collector runs as it would in the pod; GOMAXPROCS is what the chart
// sets from the pod's CPU limit (-service-procs).
func serviceEnv(endpoint, prefix, addr string, o options) []string {
	env := append(ddblocal.EnvFor(endpoint),
		"TRIGGER_HTTP_ADDR="+addr, "TRIGGER_TABLE_PREFIX="+prefix, "TRIGGER_LOG_LEVEL="+o.logLevel,
		"TRIGGER_TENANT_RATE_LIMIT=10000000", "GOMEMLIMIT="+podMemoryLimit)
	if o.serviceProcs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(o.serviceProcs))
	}
	return childEnv(env...)
}

// defaultBodyBytes is the event body the ingest goals are set at.
const defaultBodyBytes = 200

// podCPUs is the chart's CPU limit of ingest and inbox, from which it sets their GOMAXPROCS.
const podCPUs = 1

// podMemoryLimit is 90 % of the chart's 256 MiB for ingest and inbox (pkg/startup).
const podMemoryLimit = "230MiB"

// child is one binary the bench started: a service, whose url is set, or a worker.
type child struct {
	*proc.Process
	url string
	// internalURL serves /metrics, and the profiles when TRIGGER_PPROF is on: url, unless
	// the service has a metrics port of its own.
	internalURL string
}

// childStopGrace bounds a child's shutdown; above the services' own drain time, so a clean
// stop is never cut short.
const childStopGrace = 25 * time.Second

// spawn starts bin with env, its output going to logPath. When onLine is set it also sees
// every line of output, with the time the bench read it.
func spawn(name, bin string, args, env []string, logPath string, onLine func(line []byte, read time.Time)) (*child, error) {
	p, err := proc.Start(proc.Options{Name: name, Path: bin, Args: args, Env: env, LogPath: logPath, OnLine: onLine})
	if err != nil {
		return nil, err
	}
	return &child{Process: p}, nil
}

// startService runs a service binary on a free loopback port, with extra added to its
// environment, and waits until /readyz answers 200.
func startService(ctx context.Context, name, bin, endpoint, prefix string, o options, logPath string, extra ...string) (*child, error) {
	// Outside the ephemeral range, so no outgoing connection takes the port before the child binds it.
	ports, err := ddblocal.FreePorts(1)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	c, err := spawn(name, bin, nil, append(serviceEnv(endpoint, prefix, addr, o), extra...), logPath, nil)
	if err != nil {
		return nil, err
	}
	c.url = "http://" + addr
	c.internalURL = c.url
	if err := c.waitReady(ctx, "/readyz"); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// startProfiledService is startService with a metrics port of its own, as the chart gives
// every service, that serves the Go profiles too (TRIGGER_PPROF).
func startProfiledService(ctx context.Context, name, bin, endpoint, prefix string, o options, logPath string, extra ...string) (*child, error) {
	ports, err := ddblocal.FreePorts(1)
	if err != nil {
		return nil, err
	}
	internal := "127.0.0.1:" + strconv.Itoa(ports[0])
	c, err := startService(ctx, name, bin, endpoint, prefix, o, logPath,
		append([]string{"TRIGGER_METRICS_ADDR=" + internal, "TRIGGER_PPROF=true"}, extra...)...)
	if err != nil {
		return nil, err
	}
	c.internalURL = "http://" + internal
	return c, nil
}

// waitReady polls path under c.url until it answers 200.
func (c *child) waitReady(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.Done():
			return fmt.Errorf("%s exited during start-up (%v):\n%s", c.Name(), c.Err(), c.Tail(10))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready (see %s): %w", c.Name(), c.LogPath(), ctx.Err())
		case <-tick.C:
		}
	}
}

// stop ends the child with SIGTERM, as Kubernetes would, and kills it if it lingers. How it
// ended is not a figure: a failure during a phase has already shown in its results.
func (c *child) stop() { _ = c.Stop(childStopGrace) }

// stopAll stops children in parallel, so replicas' shutdowns overlap.
func stopAll(cs []*child) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(c.stop)
	}
	wg.Wait()
}

// templateItem reads back one event the service wrote. The bare PutItem loop writes copies of
// it, so both sides store the same attributes at the same sizes even as the adapter's item
// layout evolves, without the bench keeping a second copy of that layout.
func templateItem(ctx context.Context, client *dynamodb.Client, table, tenantID string) (ddb.Item, error) {
	out, err := client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("tenant_id = :t"),
		ExpressionAttributeValues: ddb.Item{":t": ddb.S(tenantID)},
		Limit:                     aws.Int32(1),
	})
	if err != nil {
		return nil, fmt.Errorf("read an ingested event: %w", err)
	}
	if len(out.Items) == 0 {
		return nil, errors.New("the service stored no event during the warm-up")
	}
	return out.Items[0], nil
}

// putCondition is the service's guard against overwriting an event id; the bare loop sends it
// too, because evaluating it is part of the work DynamoDB does for every ingested event.
const putCondition = "attribute_not_exists(event_id)"

// The bare loop asks for what the service asks for on each write. The consumed capacity that
// pkg/ddb requests for its metrics is no small thing here: DynamoDB Local spends about a fifth
// more CPU on a write that reports it, which a bare loop without it would leave out of the
// comparison. The old item on a failed condition costs nothing on a write that succeeds.
const (
	bareCapacity   = types.ReturnConsumedCapacityIndexes
	bareOnConflict = types.ReturnValuesOnConditionCheckFailureAllOld
)

// barePut returns an op that writes a fresh copy of tmpl with a new event id and times, with
// the service's options, as the service's Put would for a new event, through the SDK's own
// path: the baseline is what a plain aws-sdk-go-v2 client costs.
func barePut(client *dynamodb.Client, table string, tmpl ddb.Item) op {
	return func(ctx context.Context) error {
		id := events.NewID()
		now := time.Now().Truncate(time.Millisecond)
		item := make(ddb.Item, len(tmpl))
		for k, v := range tmpl {
			item[k] = v
		}
		item["event_id"] = ddb.S(id)
		for _, k := range []string{"received_at", "visible_at"} {
			if _, ok := tmpl[k]; ok {
				item[k] = ddb.N(now.UnixMilli())
			}
		}
		if _, ok := tmpl["inbox_sk"]; ok {
			item["inbox_sk"] = ddb.S(events.Position{VisibleAt: now, EventID: id}.SortKey())
		}
		_, err := client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                           aws.String(table),
			Item:                                item,
			ConditionExpression:                 aws.String(putCondition),
			ReturnConsumedCapacity:              bareCapacity,
			ReturnValuesOnConditionCheckFailure: bareOnConflict,
		})
		return err
	}
}

// itemBytes is DynamoDB's size of an item: attribute names plus values, numbers counted as
// their digits, which is close enough to compare the two sides.
func itemBytes(it ddb.Item) int {
	n := 0
	for k, v := range it {
		n += len(k)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberN:
			n += len(v.Value)
		case *types.AttributeValueMemberB:
			n += len(v.Value)
		default:
			n += 8
		}
	}
	return n
}

// ingestPost returns an op that sends one POST /events over keep-alive loopback HTTP.
// Not client.Publish: its per-call labeler and answer decoding would add load-generator CPU to the phases measured.
func ingestPost(hc *http.Client, url, key string, body []byte) op {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/events", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		if res.StatusCode != http.StatusAccepted {
			// The error the client would have returned, so a phase's first error says why.
			var env api.ErrorEnvelope
			_ = json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&env)
			err = &client.Error{
				Op: "publish", Status: res.StatusCode, Code: env.Error.Code, Message: env.Error.Message,
				RequestID: cmp.Or(env.Error.RequestID, res.Header.Get(api.HeaderRequestID)),
			}
		}
		// Reading to EOF returns the connection to the pool; a half-read body would close it.
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return err
	}
}

// loadClient is the load generator's HTTP client: one keep-alive connection per worker, so
// no request pays for a TCP handshake and the service sees a steady set of producers.
func loadClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // loopback only, whatever HTTP_PROXY says
			MaxIdleConns:        2 * concurrency,
			MaxIdleConnsPerHost: 2 * concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}
