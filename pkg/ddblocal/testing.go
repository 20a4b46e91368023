package ddblocal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/trigger-api/trigger-api/pkg/ddb"
)

// Shared is the DynamoDB Local a test binary uses: the one named by $TRIGGER_TEST_DYNAMODB_ENDPOINT,
// or one it started itself.
type Shared struct {
	Endpoint string
	Client   *dynamodb.Client
	server   *Server
}

// Main runs a test binary's tests against DynamoDB Local. A missing DynamoDB Local fails the
// run: it is never skipped.
func Main(m *testing.M, shared **Shared) {
	os.Exit(run(m, shared))
}

func run(m *testing.M, shared **Shared) int {
	ctx := context.Background()
	// Services under test build their client from the default AWS chain, as in production;
	// DynamoDB Local accepts any credentials, and without these the chain would try EC2 IMDS.
	os.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	s := &Shared{Endpoint: os.Getenv(EndpointEnv)}
	if s.Endpoint == "" {
		srv, err := Start(ctx, Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "ddblocal:", err)
			return 1
		}
		defer srv.Stop()
		s.server, s.Endpoint = srv, srv.Endpoint
	}
	client, err := Client(ctx, s.Endpoint)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ddblocal:", err)
		return 1
	}
	s.Client = client
	*shared = s
	return m.Run()
}

// Tables creates a fresh set of tables with a random prefix for one test and deletes them
// when it ends, so tests run in parallel without seeing each other's data.
func (s *Shared) Tables(t testing.TB) ddb.Tables {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	tables := ddb.TableNames("t" + hex.EncodeToString(b[:]) + "_")
	ctx := context.Background()
	if err := ddb.EnsureTables(ctx, s.Client, tables); err != nil {
		t.Fatalf("ensure tables: %v", err)
	}
	t.Cleanup(func() {
		for _, name := range tables.All() {
			_, _ = s.Client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		}
	})
	return tables
}

// RecordingClient is a client of this DynamoDB Local that records the operations it performs.
func (s *Shared) RecordingClient() (*dynamodb.Client, *ddb.Recorder) {
	rec := &ddb.Recorder{}
	return dynamodb.New(s.Client.Options(), rec.Option), rec
}

// Env is the environment a service binary needs to reach this DynamoDB Local.
func (s *Shared) Env() []string {
	return EnvFor(s.Endpoint)
}
