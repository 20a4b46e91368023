// Command devstack runs Trigger API on this machine and replays the seed's demo against it.
//
//	go run ./deploy/local/devstack run    # make run: DynamoDB Local, services, gateway, worker; Ctrl-C stops
//	go run ./deploy/local/devstack demo   # make demo: the demo sequence against the running stack
//	go run ./deploy/local/devstack trace EVENT_ID  # make trace: an event's lifecycle from Jaeger
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

const usage = `usage: go run ./deploy/local/devstack <command> [flags]

commands:
  run    start DynamoDB Local, ingest, inbox, keys-admin, a gateway and the worker; Ctrl-C stops all
  demo   replay the seed's demo sequence through the gateway of the stack that run started
  trace  print an event's lifecycle trace from Jaeger as a timeline (needs TRACING=jaeger make run)

TRACING=jaeger makes run start Jaeger (built by make jaeger) on 127.0.0.1 (OTLP 4317/4318, query
API 16686) and send every binary's spans to it. OBSERVABILITY=1 starts that Jaeger and a
Prometheus on 127.0.0.1:9090 (the prometheus on PATH, or PROMETHEUS_BIN) scraping every binary
every 5 s, with exemplars that link latencies to traces.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "run":
		return runStack(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "trace":
		return runTrace(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func runStack(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", stack.DefaultGatewayAddr, "gateway listen address (loopback only)")
	verbose := fs.Bool("v", false, "stream every component's log to the terminal, not only the worker's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := stack.Options{GatewayAddr: *addr, Stream: stdout, StreamOnly: []string{stack.Worker, "gateway"}, Progress: stdout}
	if *verbose {
		opts.StreamOnly = nil
	}
	if err := observabilityFromEnv(&opts); err != nil {
		return err
	}
	dynamoDBFromEnv(&opts)
	for _, tok := range strings.Split(os.Getenv("TRIGGER_ADMIN_TOKENS"), ",") {
		if tok = strings.TrimSpace(tok); tok != "" {
			opts.AdminTokens = append(opts.AdminTokens, tok)
		}
	}
	st, err := stack.Start(ctx, opts)
	if err != nil {
		return err
	}
	printBanner(stdout, st)
	err = st.Wait(ctx)
	if err == nil {
		fmt.Fprintln(stdout, "devstack: stopped")
	}
	return err
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envFile := fs.String("env", "", "the env file `run` wrote (default <checkout>/.cache/devstack/env)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *envFile == "" {
		root, err := stack.FindRoot()
		if err != nil {
			return err
		}
		*envFile = filepath.Join(root, ".cache", "devstack", "env")
	}
	env, err := stack.ReadEnvFile(*envFile)
	if err != nil {
		return err
	}
	_, err = stack.Demo(ctx, stdout, env)
	return err
}

func runTrace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jaeger := fs.String("jaeger", "", "Jaeger's query API (default: the running stack's, else http://"+stack.DefaultJaegerAddrs.Query+")")
	wait := fs.Duration("wait", 5*time.Second, "how long to wait for the event's spans to reach Jaeger")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || !strings.HasPrefix(fs.Arg(0), "evt_") {
		return errors.New("usage: go run ./deploy/local/devstack trace [-jaeger URL] EVENT_ID (make trace EVENT=evt_...)")
	}
	if *jaeger == "" {
		*jaeger = stack.DefaultJaegerAddrs.QueryURL()
		if root, err := stack.FindRoot(); err == nil {
			if env, err := stack.ReadEnvFile(filepath.Join(root, ".cache", "devstack", "env")); err == nil && env.JaegerURL != "" {
				*jaeger = env.JaegerURL
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	// Spans reach Jaeger in batches about a second apart, from each binary on its own: for an
	// event just posted, wait until the inbox's settle is there too, or the wait is over.
	var tr stack.Trace
	var found bool
	for {
		t, err := stack.EventTrace(ctx, *jaeger, fs.Arg(0))
		switch {
		case err == nil:
			tr, found = t, true
			if _, settled := tr.Find(stack.Inbox, "trigger settle"); settled {
				return tr.Timeline(stdout)
			}
		case !errors.Is(err, stack.ErrNoTrace) && ctx.Err() == nil:
			return err
		}
		select {
		case <-ctx.Done():
			if !found {
				return fmt.Errorf("%w %s (was the stack started with TRACING=jaeger?)", stack.ErrNoTrace, fs.Arg(0))
			}
			fmt.Fprintln(stdout, "(not settled yet: the trace so far)")
			return tr.Timeline(stdout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func printBanner(w io.Writer, st *stack.Stack) {
	gw := st.GatewayURL
	fmt.Fprintf(w, "\nTrigger API dev stack is up.\n\n")
	fmt.Fprintf(w, "  gateway      %s   (/events* → ingest, /inbox* /ack /nack → inbox, /admin/* → keys-admin)\n", gw)
	if st.AdminTokenGenerated {
		fmt.Fprintf(w, "  admin token  %s   (generated; set TRIGGER_ADMIN_TOKENS to choose your own)\n", st.AdminToken)
	} else {
		fmt.Fprintf(w, "  admin token  the first of TRIGGER_ADMIN_TOKENS\n")
	}
	for _, t := range st.Tenants {
		fmt.Fprintf(w, "  %-12s %s\n", t, st.Keys[t])
	}
	if st.JaegerURL != "" {
		fmt.Fprintf(w, "  jaeger       %s   (make trace EVENT=evt_... prints an event's lifecycle)\n", st.JaegerURL)
	}
	if st.PrometheusURL != "" {
		fmt.Fprintf(w, "  prometheus   %s   (exemplars stored: latency buckets name trace ids to open in Jaeger)\n", st.PrometheusURL)
	}
	fmt.Fprintf(w, "  logs         %s/*.log\n", st.LogDir)
	fmt.Fprintf(w, "  env file     %s   (set -a; . %s; set +a  gives $GATEWAY_URL, $ADMIN_TOKEN, $API_KEY_ACME ...)\n", st.EnvFile, st.EnvFile)
	for _, t := range st.Tenants {
		key := st.Keys[t]
		fmt.Fprintf(w, "\nAs %s:\n", t)
		fmt.Fprintf(w, "  curl -sS -X POST %s/events -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"event_type\":\"customer.created\",\"customer_id\":\"123\"}'\n", gw, key)
		fmt.Fprintf(w, "  curl -sS '%s/inbox?limit=10' -H 'Authorization: Bearer %s'\n", gw, key)
		fmt.Fprintf(w, "  curl -sS -X POST %s/ack -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"event_id\":\"EVENT_ID\"}'\n", gw, key)
		fmt.Fprintf(w, "  curl -sS %s/events/EVENT_ID -H 'Authorization: Bearer %s'\n", gw, key)
	}
	fmt.Fprintf(w, "\nThe worker is consuming %s's inboxes with long-poll leased pulls, so an event you post is\n", strings.Join(st.Tenants, " and "))
	fmt.Fprintf(w, "processed and acknowledged at once (watch the worker lines below; GET /events/EVENT_ID then says\n")
	fmt.Fprintf(w, "delivered). GET /inbox lists only what is waiting, so it is empty while the worker runs.\n")
	fmt.Fprintf(w, "`make demo` replays the seed's demo with tenants of its own. Ctrl-C stops everything.\n\n")
}

// observabilityFromEnv reads TRACING (jaeger) and OBSERVABILITY (1: Jaeger and Prometheus).
func observabilityFromEnv(opts *stack.Options) error {
	switch tracing := os.Getenv("TRACING"); tracing {
	case "":
	case "jaeger":
		opts.Tracing, opts.JaegerAddrs = true, stack.DefaultJaegerAddrs
	default:
		return fmt.Errorf("TRACING=%q: the one choice is jaeger", tracing)
	}
	switch o := os.Getenv("OBSERVABILITY"); o {
	case "", "0":
	case "1":
		opts.Tracing, opts.JaegerAddrs = true, stack.DefaultJaegerAddrs
		opts.Prometheus, opts.PrometheusAddr = true, stack.DefaultPrometheusAddr
		opts.PrometheusBin = os.Getenv("PROMETHEUS_BIN")
	default:
		return fmt.Errorf("OBSERVABILITY=%q: 1 starts Jaeger and Prometheus, 0 or unset neither", o)
	}
	return nil
}

// dynamoDBFromEnv points the stack at the DynamoDB the SDK's own AWS_ENDPOINT_URL_DYNAMODB names,
// when it is set, instead of a DynamoDB Local of its own: a persistent DynamoDB Local, a proxy,
// or AWS. Tables are created there if missing, with TRIGGER_TABLE_PREFIX.
func dynamoDBFromEnv(opts *stack.Options) {
	if ep := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"); ep != "" {
		opts.DynamoDBEndpoint, opts.AWSChain = ep, usesAWSChain(ep)
		opts.TablePrefix = os.Getenv("TRIGGER_TABLE_PREFIX")
	}
}

// usesAWSChain: a DynamoDB named by AWS_ENDPOINT_URL_DYNAMODB on this machine is DynamoDB Local
// (or a proxy in front of one), which takes any credentials, unless the caller set their own;
// anywhere else it is AWS, reached with the caller's credentials chain and region.
func usesAWSChain(endpoint string) bool {
	if os.Getenv("AWS_ACCESS_KEY_ID") != "" || os.Getenv("AWS_PROFILE") != "" {
		return true
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback())
}
