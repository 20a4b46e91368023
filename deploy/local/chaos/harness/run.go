package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
	"github.com/trigger-api/trigger-api/pkg/client"
	"github.com/trigger-api/trigger-api/pkg/ddbfault"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
)

// Options say where a run builds, logs and finds DynamoDB.
type Options struct {
	Root     string // the checkout; empty: found above the working directory
	BinDir   string // the binaries are built here; empty: <StateDir>/bin
	StateDir string // logs; empty: <root>/.cache/chaos
	// DynamoDBEndpoint is a DynamoDB Local already running, shared through a fresh table
	// prefix; empty starts one for the run.
	DynamoDBEndpoint string
	Progress         io.Writer // one line per step; nil: silent
}

const (
	tenantID = "chaos"
	// workerVisibility is the chaos workers' lease: short, so that events whose lease a crash
	// or a lost answer stranded come back within the run rather than after the default 30 s.
	workerVisibility = "5s"
)

// env is everything a run has started.
type env struct {
	plan     Plan
	opts     Options
	ddb      *ddblocal.Server
	proxy    *ddbfault.Proxy
	st       *stack.Stack
	rec      *recorder
	log      *processedLog
	ledger   *ledger
	api      *client.Client
	key      string
	workers  []*stack.WorkerProc
	restarts int
	start    time.Time
	phases   []Phase
}

// Run starts the stack, runs plan's schedule against it, drains and returns the ledger. An
// error means the run itself could not be made (a build, a start-up, a component that died);
// broken invariants are in the report.
func Run(ctx context.Context, plan Plan, opts Options) (_ *Report, err error) {
	e := &env{plan: plan, opts: opts, ledger: newLedger(), log: newProcessedLog(tenantID)}
	defer func() { err = errors.Join(err, e.close()) }()
	if err := e.setUp(ctx); err != nil {
		return nil, err
	}
	e.start = time.Now()
	stop, stopProducers := context.WithCancel(ctx)
	defer stopProducers()
	wait := produce(ctx, stop, e.api, e.ledger, runID(), plan.Producers, plan.Rate)
	scheduleErr := e.schedule(ctx)
	stopProducers()
	wait()
	if scheduleErr != nil {
		return nil, scheduleErr
	}
	drainStart := time.Now()
	drained, left, dead, err := e.drain(ctx)
	if err != nil {
		return nil, err
	}
	return e.report(drained, left, dead, time.Since(drainStart)), nil
}

func runID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "chaos-" + hex.EncodeToString(b[:])
}

func (e *env) progress(format string, args ...any) {
	if e.opts.Progress != nil {
		fmt.Fprintf(e.opts.Progress, "chaos: "+format+"\n", args...)
	}
}

// setUp starts DynamoDB (unless shared), the fault proxy in front of it, the stack with two
// replicas of each service behind the gateway, the tenant and its two workers.
func (e *env) setUp(ctx context.Context) error {
	if err := e.opts.complete(); err != nil {
		return err
	}
	if err := os.MkdirAll(e.opts.StateDir, 0o755); err != nil {
		return err
	}
	endpoint, prefix := e.opts.DynamoDBEndpoint, ""
	if endpoint == "" {
		srv, err := ddblocal.Start(ctx, ddblocal.Options{LogPath: filepath.Join(e.opts.StateDir, "dynamodb.log")})
		if err != nil {
			return fmt.Errorf("DynamoDB Local: %w", err)
		}
		e.ddb, endpoint = srv, srv.Endpoint
	} else {
		prefix = runID() + "_"
	}
	proxy, err := ddbfault.Start(endpoint)
	if err != nil {
		return err
	}
	e.proxy = proxy
	e.progress("DynamoDB at %s, reached through the fault proxy %s", endpoint, proxy.URL())
	st, err := stack.Start(ctx, stack.Options{
		Root: e.opts.Root, BinDir: e.opts.BinDir, StateDir: e.opts.StateDir, GatewayAddr: "127.0.0.1:0",
		DynamoDBEndpoint: proxy.URL(), TablePrefix: prefix, Replicas: 2,
		// The stack's own worker consumes this tenant only; the run's two are started below.
		Tenants: []string{"idle"},
		Stream:  e.log, StreamOnly: []string{stack.Worker}, Progress: e.opts.Progress,
	})
	if err != nil {
		return err
	}
	e.st = st
	return e.startTenant(ctx)
}

func (o *Options) complete() error {
	if o.Root == "" {
		root, err := stack.FindRoot()
		if err != nil {
			return err
		}
		o.Root = root
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.Root, ".cache", "chaos")
	}
	if o.BinDir == "" {
		o.BinDir = filepath.Join(o.StateDir, "bin")
	}
	return nil
}

// startTenant creates the run's tenant, its client and its two worker replicas.
func (e *env) startTenant(ctx context.Context) error {
	key, err := e.st.CreateTenant(ctx, tenantID)
	if err != nil {
		return err
	}
	e.key = key
	e.rec = newRecorder(http.DefaultTransport.(*http.Transport).Clone())
	e.api, err = client.New(e.st.GatewayURL, key, client.WithHTTPClient(&http.Client{Transport: e.rec, Timeout: callTimeout}))
	if err != nil {
		return err
	}
	for _, name := range []string{"chaos-worker-1", "chaos-worker-2"} {
		w, err := e.startWorker(name)
		if err != nil {
			return err
		}
		e.workers = append(e.workers, w)
	}
	return nil
}

func (e *env) startWorker(name string) (*stack.WorkerProc, error) {
	return e.st.StartWorker(name, []string{e.key}, "TRIGGER_VISIBILITY_TIMEOUT="+workerVisibility, "TRIGGER_NACK_DELAY=1s")
}

// close stops the stack first, so its children finish against a DynamoDB still there, then
// the proxy (which drops what it still holds) and DynamoDB Local.
func (e *env) close() error {
	var errs []error
	if e.st != nil {
		errs = append(errs, e.st.Stop())
	}
	if e.proxy != nil {
		e.proxy.Release()
		errs = append(errs, e.proxy.Close())
	}
	if e.ddb != nil {
		e.ddb.Stop()
	}
	return errors.Join(errs...)
}
