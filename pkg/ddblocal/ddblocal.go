// Package ddblocal runs AWS's DynamoDB Local for tests, benchmarks and the dev stack. It never
// downloads anything: `make dynamodb-local` fetches the build once into .cache/dynamodb-local.
package ddblocal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/proc"
)

// EndpointEnv names an already running DynamoDB Local that tests share instead of starting one.
const EndpointEnv = "TRIGGER_TEST_DYNAMODB_ENDPOINT"

// DirEnv overrides where the DynamoDB Local build is looked for.
const DirEnv = "TRIGGER_DYNAMODB_LOCAL_DIR"

// Credentials DynamoDB Local accepts; it checks none of them.
const (
	AccessKey = "local"
	SecretKey = "local"
	Region    = "us-east-1"
)

// Dir finds the unpacked DynamoDB Local: $TRIGGER_DYNAMODB_LOCAL_DIR, else
// .cache/dynamodb-local under the nearest folder holding go.work.
func Dir() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return filepath.Join(d, ".cache", "dynamodb-local"), nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.work above the working directory; set " + DirEnv)
		}
	}
}

// Server is a running DynamoDB Local.
type Server struct {
	Endpoint string
	process  *proc.Process
}

// Options tune Start.
type Options struct {
	Port    int    // 0: a free one outside the ephemeral range, another if it is taken meanwhile
	DBPath  string // empty: in memory
	LogPath string // where its output goes; empty: discarded
}

// stopGrace is how long DynamoDB Local may take to end on SIGTERM before it is killed.
const stopGrace = 5 * time.Second

// Start launches DynamoDB Local and waits until it answers.
func Start(ctx context.Context, opts Options) (*Server, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	jar := filepath.Join(dir, "DynamoDBLocal.jar")
	if _, err := os.Stat(jar); err != nil {
		return nil, fmt.Errorf("DynamoDB Local not found at %s (run `make dynamodb-local`): %w", jar, err)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("java 17+ is needed for DynamoDB Local: %w", err)
	}
	if opts.Port != 0 {
		return start(ctx, java, dir, jar, opts, opts.Port)
	}
	var srv *Server
	err = StartOnFreePorts(1, func(ports []int) error {
		s, err := start(ctx, java, dir, jar, opts, ports[0])
		srv = s
		return err
	})
	return srv, err
}

func start(ctx context.Context, java, dir, jar string, opts Options, port int) (*Server, error) {
	args := []string{"-Xmx1g", "-Djava.library.path=" + filepath.Join(dir, "DynamoDBLocal_lib"),
		"-jar", jar, "-disableTelemetry", "-port", strconv.Itoa(port)}
	if opts.DBPath != "" {
		args = append(args, "-dbPath", opts.DBPath)
	} else {
		args = append(args, "-inMemory")
	}
	p, err := proc.Start(proc.Options{Name: "DynamoDB Local", Path: java, Args: args, Dir: dir, LogPath: opts.LogPath})
	if err != nil {
		return nil, err
	}
	s := &Server{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), process: p}
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	client, err := Client(ctx, s.Endpoint)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := client.ListTables(ctx, &dynamodb.ListTablesInput{})
		// It must be ours that answered, not another process that holds the port.
		if s.process.Exited() {
			return s.exitedErr()
		}
		if err == nil {
			return nil
		}
		select {
		case <-s.process.Done():
			return s.exitedErr()
		case <-ctx.Done():
			return fmt.Errorf("DynamoDB Local not ready: %w", err)
		case <-tick.C:
		}
	}
}

func (s *Server) exitedErr() error {
	err := fmt.Errorf("DynamoDB Local exited during start-up (%v)", s.process.Err())
	if tail := s.process.Tail(10); tail != "" {
		err = fmt.Errorf("%w; last lines of %s:\n%s", err, s.process.LogPath(), tail)
	}
	return err
}

// Stop ends the process and waits for it: SIGTERM, then SIGKILL if it lingers.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	// Java answers SIGTERM with exit status 143: how it ended says nothing worth reporting.
	_ = s.process.Stop(stopGrace)
}

// Kill ends the process at once, as a crash would.
func (s *Server) Kill() { s.process.Kill() }

// Signal sends sig to the process, for instance SIGSTOP and SIGCONT to stall it and let it go
// on, as an overloaded or partitioned database would stall.
func (s *Server) Signal(sig syscall.Signal) error { return s.process.Signal(sig) }

// Pid is the process id of the JVM, for reading its CPU time.
func (s *Server) Pid() int { return s.process.Pid() }

// Done is closed once the process has ended.
func (s *Server) Done() <-chan struct{} { return s.process.Done() }

// Client returns a DynamoDB client for a DynamoDB Local endpoint.
func Client(ctx context.Context, endpoint string) (*dynamodb.Client, error) {
	return ClientWith(ctx, ddb.Settings{Endpoint: endpoint})
}

// ClientWith is Client with settings of the caller's (an endpoint through a fault proxy, a
// shorter attempt timeout); the region and credentials are DynamoDB Local's.
func ClientWith(ctx context.Context, s ddb.Settings) (*dynamodb.Client, error) {
	s.Region = Region
	return ddb.NewClient(ctx, s, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, "")))
}

// Env returns the environment a service binary needs to reach this server.
func (s *Server) Env() []string { return EnvFor(s.Endpoint) }

// EnvFor returns the environment a service binary needs to reach DynamoDB Local at endpoint.
func EnvFor(endpoint string) []string {
	return []string{
		"TRIGGER_DYNAMODB_ENDPOINT=" + endpoint,
		"TRIGGER_DYNAMODB_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
	}
}
