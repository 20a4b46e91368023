package ddblocal

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// TestServerStallsResumesAndCrashes drives DynamoDB Local as the chaos tests do: stalled by
// SIGSTOP it answers nothing, after SIGCONT it answers again, and Kill ends it at once.
func TestServerStallsResumesAndCrashes(t *testing.T) {
	ctx := context.Background()
	logPath := filepath.Join(t.TempDir(), "dynamodb.log")
	srv, err := Start(ctx, Options{LogPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	client, err := Client(ctx, srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	list := func(within time.Duration) error {
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		_, err := client.ListTables(ctx, &dynamodb.ListTablesInput{})
		return err
	}
	if err := list(10 * time.Second); err != nil {
		t.Fatalf("ListTables on a ready server: %v", err)
	}
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := list(300 * time.Millisecond); err == nil {
		t.Fatal("a stalled server answered")
	}
	if err := srv.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := list(10 * time.Second); err != nil {
		t.Fatalf("ListTables after SIGCONT: %v", err)
	}
	srv.Kill()
	select {
	case <-srv.Done():
	default:
		t.Fatal("Kill returned before the process ended")
	}
	if err := list(2 * time.Second); err == nil {
		t.Error("a killed server answered")
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "Port") {
		t.Errorf("the log holds no start-up banner: %q", b)
	}
}
