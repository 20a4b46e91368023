package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
)

// benchTenant owns every event the bench writes, through the service and directly alike, so
// both phases write to the same partition key of the same table.
const benchTenant = "bench"

// workspaceRoot is the nearest folder above the working directory that holds go.work.
func workspaceRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.work above the working directory: run from the repository")
		}
	}
}

// randomPrefix names a fresh set of tables, so runs against a shared DynamoDB Local never see
// each other's items.
func randomPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "bench" + hex.EncodeToString(b[:]) + "_"
}

// seed creates the bench tenant and a key for it straight in the tables, as the admin API
// would, and returns the key.
func seed(ctx context.Context, client *dynamodb.Client, tables ddb.Tables) (string, error) {
	store := tenantdb.New(client, tables)
	now := time.Now().UTC()
	err := store.CreateTenant(ctx, tenant.Tenant{
		ID: benchTenant, Name: benchTenant, Status: tenant.StatusActive, Partitions: 1,
		MaxDeliveries: tenant.DefaultMaxDeliveries, RetentionDays: tenant.DefaultRetentionDays,
		CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		return "", fmt.Errorf("create tenant: %w", err)
	}
	k, err := apikey.New(benchTenant)
	if err != nil {
		return "", err
	}
	err = store.CreateKey(ctx, tenant.APIKey{
		ID: "key_" + k.Hash()[:24], TenantID: benchTenant, Hash: k.Hash(), Prefix: k.Prefix(),
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

// buildIngest compiles the real service binary. Building first, rather than `go run`, keeps
// the compiler out of the CPU accounting and gives the process a pid that is the service.
func buildIngest(ctx context.Context, root, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./services/ingest")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./services/ingest: %w", err)
	}
	return nil
}

// service is the running ingest binary.
type service struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
	log  string
}

// startIngest runs the binary on a free loopback port against the bench's tables and waits
// until /readyz answers 200. Only TRIGGER_*, AWS_* and OTEL_* variables of the caller's
// environment are dropped, so a developer's shell settings cannot point the service elsewhere.
func startIngest(ctx context.Context, bin, endpoint, prefix, logLevel, logPath string) (*service, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRIGGER_") && !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env = append(env, ddblocal.EnvFor(endpoint)...)
	env = append(env, "TRIGGER_HTTP_ADDR="+addr, "TRIGGER_TABLE_PREFIX="+prefix, "TRIGGER_LOG_LEVEL="+logLevel)

	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start ingest: %w", err)
	}
	s := &service{cmd: cmd, url: "http://" + addr, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(s.done) }()
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *service) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/readyz", nil)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("ingest exited during start-up; see %s", s.log)
		case <-ctx.Done():
			return fmt.Errorf("ingest not ready (see %s): %w", s.log, ctx.Err())
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM for a graceful shutdown and kills the process if it lingers.
func (s *service) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(25 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// templateItem reads back one event the service wrote. The bare PutItem loop writes copies of
// it, so both sides store the same attributes at the same sizes even as the adapter's item
// layout evolves, without the bench keeping a second copy of that layout.
func templateItem(ctx context.Context, client *dynamodb.Client, table string) (ddb.Item, error) {
	out, err := client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("tenant_id = :t"),
		ExpressionAttributeValues: ddb.Item{":t": ddb.S(benchTenant)},
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

// barePut returns an op that writes a fresh copy of tmpl with a new event id and times, as
// the service's Put would for a new event.
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
			TableName:           aws.String(table),
			Item:                item,
			ConditionExpression: aws.String(putCondition),
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
func ingestPost(client *http.Client, url, key string, body []byte) op {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/events", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		// Reading to EOF returns the connection to the pool; a half-read body would close it.
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			return fmt.Errorf("POST /events: status %d", res.StatusCode)
		}
		return nil
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
