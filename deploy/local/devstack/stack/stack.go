// Package stack runs Trigger API locally: DynamoDB Local, the three services, a gateway that
// routes like the production Ingress, and the worker. `go run ./deploy/local/devstack run` and the
// end-to-end test both use it, so what a developer runs is what the test proves.
package stack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trigger-api/trigger-api/pkg/client"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/demo"
	"github.com/trigger-api/trigger-api/pkg/proc"
)

// Component names: the binaries' names and the log files' and log prefixes' too.
const (
	Ingest    = "ingest"
	Inbox     = "inbox"
	KeysAdmin = "keys-admin"
	Worker    = "worker"
)

var binaries = []struct{ name, pkg string }{
	{Ingest, "./services/ingest"},
	{Inbox, "./services/inbox"},
	{KeysAdmin, "./services/keys-admin"},
	{Worker, "./worker"},
}

const (
	// DefaultGatewayAddr is where `make run` serves the API.
	DefaultGatewayAddr = "127.0.0.1:8080"
	readyTimeout       = 60 * time.Second
	stopGrace          = 15 * time.Second
	gatewayShutdown    = 8 * time.Second
	// childShutdown is each service's own drain time; below stopGrace, so a clean stop is
	// never cut short by the supervisor's kill. Above 5 s: net/http's Shutdown waits up to 5 s
	// for a connection accepted but not yet used (Go's clients dial spare ones, and every
	// replica's notice sender keeps connections to each inbox), so a 5 s drain could fail on
	// one with no request in flight.
	childShutdown = "8s"
	// workerRequestTimeout bounds the worker's calls; its last acks and nacks after
	// childShutdown take at most this, which keeps the worker's stop within stopGrace too.
	workerRequestTimeout = "5s"
)

// DefaultTenants are the tenants `make run` creates.
var DefaultTenants = []string{"acme", "globex"}

// Options configure Start; the zero value is the `make run` stack.
type Options struct {
	Root   string // the checkout, holding go.work; empty: found above the working directory
	BinDir string // where the binaries are built; empty: <root>/.cache/bin
	// NoBuild uses the binaries already in BinDir. A second stack sharing a BinDir needs it:
	// rebuilding could replace a binary that the first stack is running.
	NoBuild     bool
	BuildFlags  []string // extra `go build` flags, such as -race
	StateDir    string   // logs and the env file; empty: <root>/.cache/devstack
	GatewayAddr string   // loopback host:port; empty: 127.0.0.1:8080; port 0: a free one
	AdminTokens []string // empty: one is generated
	Tenants     []string // created with one key each; empty: DefaultTenants
	// DynamoDBEndpoint uses a DynamoDB that is already running (tables get TablePrefix);
	// empty starts DynamoDB Local in memory.
	DynamoDBEndpoint string
	// AWSChain gives the children the caller's AWS_* settings (credentials chain, region)
	// with DynamoDBEndpoint, instead of DynamoDB Local's fixed ones: for AWS itself, or a
	// proxy in front of it.
	AWSChain    bool
	TablePrefix string
	// Replicas runs this many replicas each of ingest and inbox (0: one), the gateway taking
	// turns between them; keys-admin stays one. See Stack.Replicas and CrashService.
	Replicas int
	// APIEnv is more environment for the ingest and inbox replicas, such as the GOMEMLIMIT
	// their pods would give them.
	APIEnv   []string
	LogLevel string // the children's, debug or info; empty: info
	// Stream receives the children's log lines, prefixed with the component's name, besides
	// their log files; nil: files only. StreamOnly limits it to the named components.
	Stream     io.Writer
	StreamOnly []string
	Progress   io.Writer // one line per start-up step; nil: silent
	// Tracing starts Jaeger (JaegerBin; empty: DefaultJaegerBin) at JaegerAddrs (zero: free
	// ports) and points every binary's OTLP exporter at it.
	Tracing     bool
	JaegerBin   string
	JaegerAddrs JaegerAddrs
	// Prometheus starts Prometheus (PrometheusBin; empty: the one on PATH) on PrometheusAddr
	// (empty: a free port), scraping every service replica and the stack's worker every
	// ScrapeInterval (zero: DefaultScrapeInterval), with exemplar storage on.
	Prometheus     bool
	PrometheusBin  string
	PrometheusAddr string
	ScrapeInterval time.Duration
}

// Stack is a running local deployment.
type Stack struct {
	GatewayURL          string
	AdminToken          string // the first admin token, the one the stack's own calls use
	AdminTokenGenerated bool
	Tenants             []string          // in creation order
	Keys                map[string]string // tenant id → API key
	ServiceURLs         map[string]string // component → its own loopback URL, bypassing the gateway
	DynamoDBEndpoint    string
	BinDir              string
	LogDir              string
	EnvFile             string // written once the stack is up; removed by Stop
	JaegerURL           string // Jaeger's query API when Options.Tracing is set
	PrometheusURL       string // Prometheus's UI and API when Options.Prometheus is set

	opts     Options
	stream   *proc.Stream
	ddb      *ddblocal.Server
	gateway  *http.Server
	services []*proc.Process
	worker   *proc.Process
	jaeger   *proc.Process
	common   []string // the environment every child shares

	prometheus    *proc.Process
	workerMetrics string // the stack's worker's metrics address, when Prometheus scrapes it

	mu       sync.Mutex
	workers  []*proc.Process     // started by StartWorker
	replicas map[string]*replica // service replicas by name, for CrashService

	stopping atomic.Bool
	failOnce sync.Once
	failed   chan struct{}
	failure  error
	stopOnce sync.Once
	stopErr  error
}

// Start builds the binaries and brings the whole stack up, returning once the worker runs.
// On failure everything already started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	generated := len(opts.AdminTokens) == 0
	if err := opts.complete(); err != nil {
		return nil, err
	}
	s := newStack(opts, generated)
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
		}
	}()
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	adminEnv, err := s.environ(ctx)
	if err != nil {
		return nil, err
	}
	s.progress("creating tables")
	if err := s.ensureTables(ctx, adminEnv); err != nil {
		return nil, err
	}
	if err := s.startServices(ctx, s.common, adminEnv); err != nil {
		return nil, err
	}
	if err := s.startGateway(); err != nil {
		return nil, err
	}
	s.progress("gateway on %s", s.GatewayURL)
	if err := s.createTenants(ctx); err != nil {
		return nil, err
	}
	if err := s.startOwnWorker(); err != nil {
		return nil, err
	}
	if opts.Prometheus {
		if err := s.startPrometheus(ctx); err != nil {
			return nil, err
		}
	}
	s.EnvFile = filepath.Join(opts.StateDir, "env")
	if err := WriteEnvFile(s.EnvFile, s.Env()); err != nil {
		return nil, fmt.Errorf("write %s: %w", s.EnvFile, err)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

func newStack(opts Options, adminTokenGenerated bool) *Stack {
	s := &Stack{
		opts:                opts,
		AdminToken:          opts.AdminTokens[0],
		AdminTokenGenerated: adminTokenGenerated,
		Tenants:             opts.Tenants,
		Keys:                map[string]string{},
		ServiceURLs:         map[string]string{},
		BinDir:              opts.BinDir,
		LogDir:              opts.StateDir,
		failed:              make(chan struct{}),
		replicas:            map[string]*replica{},
	}
	if opts.Stream != nil {
		s.stream = proc.NewStream(opts.Stream)
	}
	return s
}

// prepare makes the stack's folders and, unless Options.NoBuild says otherwise, its binaries.
func (s *Stack) prepare(ctx context.Context) error {
	if err := os.MkdirAll(s.opts.StateDir, 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(s.opts.BinDir, 0o755); err != nil {
		return err
	}
	if s.opts.NoBuild {
		return nil
	}
	s.progress("building %s into %s %s", strings.Join(names(), ", "), s.opts.BinDir, strings.Join(s.opts.BuildFlags, " "))
	return build(ctx, s.opts.Root, s.opts.BinDir, s.opts.BuildFlags)
}

// environ starts what the children depend on besides each other (DynamoDB, and Jaeger when
// tracing), sets s.common to the environment every child shares, and returns keys-admin's,
// the one child that is given the admin tokens.
func (s *Stack) environ(ctx context.Context) ([]string, error) {
	endpoint, err := s.startDynamoDB(ctx)
	if err != nil {
		return nil, err
	}
	s.DynamoDBEndpoint = endpoint
	common := append(childEnviron(), ddblocal.EnvFor(endpoint)...)
	if s.opts.AWSChain {
		common = append(childEnviron(), awsEnviron()...)
		common = append(common, "TRIGGER_DYNAMODB_ENDPOINT="+endpoint)
	}
	if s.opts.Tracing {
		otel, err := s.startJaeger(ctx)
		if err != nil {
			return nil, err
		}
		common = append(common, otel...)
	}
	s.common = append(common,
		"TRIGGER_TABLE_PREFIX="+s.opts.TablePrefix,
		"TRIGGER_LOG_LEVEL="+s.opts.LogLevel,
		"TRIGGER_SHUTDOWN_TIMEOUT="+childShutdown,
	)
	return append(slices.Clone(s.common), "TRIGGER_ADMIN_TOKENS="+strings.Join(s.opts.AdminTokens, ",")), nil
}

// createTenants creates Options.Tenants through the gateway, with one key each.
func (s *Stack) createTenants(ctx context.Context) error {
	admin, err := s.admin()
	if err != nil {
		return err
	}
	for _, t := range s.Tenants {
		key, err := demo.CreateTenantWithKey(ctx, admin, t, displayName(t))
		if err != nil {
			return err
		}
		s.Keys[t] = key
	}
	s.progress("tenants %s created, one key each", strings.Join(s.Tenants, ", "))
	return nil
}

// startOwnWorker runs the worker that consumes every tenant the stack created.
func (s *Stack) startOwnWorker() error {
	keys := make([]string, 0, len(s.Tenants))
	for _, t := range s.Tenants {
		keys = append(keys, s.Keys[t])
	}
	w, err := s.spawnWorker(Worker, keys, nil)
	if err != nil {
		return err
	}
	s.worker = w
	s.progress("worker consuming %s, log %s", strings.Join(s.Tenants, ", "), w.LogPath())
	return nil
}

func (o *Options) complete() error {
	if o.Root == "" {
		root, err := FindRoot()
		if err != nil {
			return err
		}
		o.Root = root
	}
	if o.BinDir == "" {
		o.BinDir = filepath.Join(o.Root, ".cache", "bin")
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.Root, ".cache", "devstack")
	}
	if o.GatewayAddr == "" {
		o.GatewayAddr = DefaultGatewayAddr
	}
	host, _, err := net.SplitHostPort(o.GatewayAddr)
	if err != nil {
		return fmt.Errorf("gateway address: %w", err)
	}
	// The gateway exposes the admin API, so it never listens beyond this machine.
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("gateway address %s: want a loopback IP such as 127.0.0.1", o.GatewayAddr)
	}
	if len(o.AdminTokens) == 0 {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		// keys-admin takes named tokens only; "dev" is who acts in its audit lines.
		o.AdminTokens = []string{"dev:" + hex.EncodeToString(b[:])}
	}
	// Checked here too so that a bad token fails before any process starts; keys-admin's own
	// check is the strict one.
	for i, t := range o.AdminTokens {
		id, secret, named := strings.Cut(t, ":")
		if !named || id == "" {
			return fmt.Errorf("admin token %d has no id: write it as <id>:<secret>, e.g. dev:<secret>", i+1)
		}
		if len(secret) < 32 {
			return fmt.Errorf("admin token %d: its secret is shorter than 32 characters", i+1)
		}
	}
	if len(o.Tenants) == 0 {
		o.Tenants = DefaultTenants
	}
	if o.Tracing {
		if o.JaegerBin == "" {
			o.JaegerBin = DefaultJaegerBin(o.Root)
		}
		// Zero addresses are chosen when Jaeger starts, so that a taken one can be replaced.
		if o.JaegerAddrs != (JaegerAddrs{}) {
			if err := o.JaegerAddrs.validate(); err != nil {
				return err
			}
		}
	}
	if o.Prometheus {
		if err := o.completePrometheus(); err != nil {
			return err
		}
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	// The stack learns each service's port from its info-level "listening" line.
	if l := strings.ToLower(o.LogLevel); l != "debug" && l != "info" {
		return fmt.Errorf("log level %q: the stack needs its children's info lines, so debug or info", o.LogLevel)
	}
	return nil
}

func (o *Options) completePrometheus() error {
	bin, err := FindPrometheus(o.PrometheusBin)
	if err != nil {
		return err
	}
	o.PrometheusBin = bin
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = DefaultScrapeInterval
	}
	if o.PrometheusAddr != "" {
		if err := loopback(o.PrometheusAddr); err != nil {
			return fmt.Errorf("prometheus address %w", err)
		}
	}
	return nil
}

// FindRoot returns the nearest folder above the working directory that holds go.work.
func FindRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.work above the working directory: run from the checkout")
		}
	}
}

// names lists the components in start order.
func names() []string {
	out := make([]string, len(binaries))
	for i, b := range binaries {
		out[i] = b.name
	}
	return out
}

// build compiles every binary in one go invocation, so shared packages compile once.
func build(ctx context.Context, root, binDir string, flags []string) error {
	args := append([]string{"build", "-o", binDir + string(filepath.Separator)}, flags...)
	for _, b := range binaries {
		args = append(args, b.pkg)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// childEnviron is the supervisor's environment less the settings the stack decides itself,
// so a developer's shell (an AWS profile, a TRIGGER_ variable) cannot point a child elsewhere.
func childEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TRIGGER_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// awsEnviron is the caller's AWS_* settings, bar the endpoint the stack passes itself.
func awsEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "AWS_ENDPOINT_URL") {
			out = append(out, kv)
		}
	}
	return out
}

func (s *Stack) progress(format string, args ...any) {
	if s.opts.Progress != nil {
		fmt.Fprintf(s.opts.Progress, "devstack: "+format+"\n", args...)
	}
}

func (s *Stack) startDynamoDB(ctx context.Context) (string, error) {
	if s.opts.DynamoDBEndpoint != "" {
		s.progress("using DynamoDB at %s", s.opts.DynamoDBEndpoint)
		return s.opts.DynamoDBEndpoint, nil
	}
	logPath := filepath.Join(s.LogDir, "dynamodb.log")
	srv, err := ddblocal.Start(ctx, ddblocal.Options{LogPath: logPath})
	if err != nil {
		return "", fmt.Errorf("DynamoDB Local: %w (log: %s)", err, logPath)
	}
	s.ddb = srv
	s.progress("DynamoDB Local (in memory) on %s, log %s", srv.Endpoint, logPath)
	return srv.Endpoint, nil
}

func (s *Stack) bin(name string) string { return filepath.Join(s.BinDir, name) }

func (s *Stack) ensureTables(ctx context.Context, env []string) error {
	p, err := proc.Start(proc.Options{
		Name: "keys-admin ensure-tables", Path: s.bin(KeysAdmin), Args: []string{"ensure-tables"}, Env: env,
		LogPath: filepath.Join(s.LogDir, "ensure-tables.log"),
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	select {
	case <-p.Done():
	case <-ctx.Done():
		_ = p.Stop(stopGrace)
		return fmt.Errorf("%s: %w; log %s", p.Name(), ctx.Err(), p.LogPath())
	}
	if err := p.Err(); err != nil {
		return fmt.Errorf("%s: %w; last lines of %s:\n%s", p.Name(), err, p.LogPath(), p.Tail(30))
	}
	return nil
}

func (s *Stack) streamFor(name string) *proc.Stream {
	if s.stream == nil || (len(s.opts.StreamOnly) > 0 && !slices.Contains(s.opts.StreamOnly, name)) {
		return nil
	}
	return s.stream
}

// exited is told of every child's end; one that ends before Stop began is a failure of the
// whole stack.
func (s *Stack) exited(p *proc.Process) {
	if s.stopping.Load() || p.StopRequested() {
		return
	}
	s.fail(endedErr(p, "unexpectedly"))
}

func (s *Stack) fail(err error) {
	s.failOnce.Do(func() {
		s.failure = err
		close(s.failed)
	})
}

// Err is the failure that brought the stack down, or nil while it runs.
func (s *Stack) Err() error {
	select {
	case <-s.failed:
		return s.failure
	default:
		return nil
	}
}

// Failed is closed when a component ends on its own or the gateway stops serving.
func (s *Stack) Failed() <-chan struct{} { return s.failed }

// startServices runs each service on a port it picks itself, so no other process can take the
// port between a choice and the bind, and reads the address from its "listening" line.
func (s *Stack) startServices(ctx context.Context, common, adminEnv []string) error {
	notifyAddrs, err := s.notifyAddrs()
	if err != nil {
		return err
	}
	// Every ingest and inbox tells every inbox of new events.
	notifying := append(slices.Clone(common), "TRIGGER_NOTIFY_PEERS="+strings.Join(notifyAddrs, ","))
	notifying = append(notifying, s.opts.APIEnv...)
	for _, component := range []string{Ingest, Inbox, KeysAdmin} {
		for i := range s.replicaCount(component) {
			env := notifying
			switch component {
			case KeysAdmin:
				env = adminEnv
			case Inbox:
				env = append(slices.Clone(notifying), "TRIGGER_NOTIFY_ADDR="+notifyAddrs[i])
			}
			if err := s.spawnReplica(component, i, env); err != nil {
				return err
			}
		}
	}
	for _, p := range s.services {
		addr, err := listenAddr(ctx, p)
		if err != nil {
			return err
		}
		url := "http://" + addr
		s.ServiceURLs[p.Name()] = url
		s.replicas[p.Name()].addr = addr
		if err := waitReady(ctx, p, url); err != nil {
			return err
		}
		s.progress("%s ready on %s, log %s", p.Name(), url, p.LogPath())
	}
	return nil
}

// notifyAddrs chooses each inbox replica's notify port up front: every ingest and inbox must
// know them all when it starts.
func (s *Stack) notifyAddrs() ([]string, error) {
	ports, err := ddblocal.FreePorts(s.replicaCount(Inbox))
	if err != nil {
		return nil, fmt.Errorf("notify ports: %w", err)
	}
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return out, nil
}

// listenAddr waits for the "listening" line of p's API server (the metrics one names itself in
// a server field) and returns its address.
func listenAddr(ctx context.Context, p *proc.Process) (string, error) {
	return logAddrIn(ctx, p, "listening address", listeningIn)
}

// listeningIn returns the address in a log's first "listening" line without a server field.
func listeningIn(logPath string) string { return logAddr(logPath, "listening", "") }

// logAddr returns the address in a log's first line with message msg and server field server
// ("" for none). A line still being written does not parse and is read again on the next call.
func logAddr(logPath, msg, server string) string {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		var l struct {
			Msg    string `json:"msg"`
			Addr   string `json:"addr"`
			Server string `json:"server"`
		}
		if json.Unmarshal(line, &l) == nil && l.Msg == msg && l.Server == server && l.Addr != "" {
			return l.Addr
		}
	}
	return ""
}

// waitReady polls /readyz until it answers 200, the process ends, or the deadline passes.
func waitReady(ctx context.Context, p *proc.Process, base string) error {
	return waitHTTP(ctx, p, http.MethodGet, base+"/readyz", "")
}

func (s *Stack) startGateway() error {
	ln, err := net.Listen("tcp", s.opts.GatewayAddr)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	up, err := s.upstreams()
	if err != nil {
		_ = ln.Close()
		return err
	}
	logPath := filepath.Join(s.LogDir, "gateway.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		_ = ln.Close()
		return err
	}
	var w io.Writer = f
	if st := s.streamFor("gateway"); st != nil {
		w = io.MultiWriter(f, st.Prefixed(streamPrefix("gateway")))
	}
	errLog := log.New(w, "", log.LstdFlags)
	s.gateway = &http.Server{
		Handler: NewGateway(up, errLog),
		// Generous: on a starved 2-core machine (the isolation test's flood under -race) a
		// header took over 5 s to be read, and the server then drops the connection without
		// an answer, which the caller sees as EOF. The local gateway faces no slowloris.
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          errLog,
	}
	s.GatewayURL = "http://" + ln.Addr().String()
	go func() {
		err := s.gateway.Serve(ln)
		if !errors.Is(err, http.ErrServerClosed) && !s.stopping.Load() {
			s.fail(fmt.Errorf("gateway: %w", err))
		}
		_ = f.Close()
	}()
	return nil
}

// workerName keeps a worker's name usable as a log file's name.
var workerName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func displayName(tenantID string) string { return strings.ToUpper(tenantID[:1]) + tenantID[1:] }

// CreateTenant creates a tenant through the admin API and returns a key for it. The stack's
// own worker does not consume it, so a caller decides which workers do.
func (s *Stack) CreateTenant(ctx context.Context, tenantID string) (string, error) {
	admin, err := s.admin()
	if err != nil {
		return "", err
	}
	return demo.CreateTenantWithKey(ctx, admin, tenantID, displayName(tenantID))
}

// admin is a client of the admin API through the gateway, with the stack's admin token.
func (s *Stack) admin() (*client.Admin, error) {
	return client.NewAdmin(s.GatewayURL, s.AdminToken, client.WithHTTPClient(&http.Client{Timeout: demo.CallTimeout}))
}

// StartWorker runs one more worker, named name (its log is <name>.log), consuming keys
// through the gateway; env adds or overrides TRIGGER_* settings. Several calls with the same
// keys are replicas side by side, as a Deployment scaled up would run them. The stack stops it
// with everything else unless the caller stops it first.
func (s *Stack) StartWorker(name string, keys []string, env ...string) (*WorkerProc, error) {
	if !workerName.MatchString(name) || slices.Contains(names(), name) || name == "gateway" {
		return nil, fmt.Errorf("worker name %q: want lower-case letters, digits and dashes, not a component's name", name)
	}
	p, err := s.spawnWorker(name, keys, env)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.workers = append(s.workers, p)
	s.mu.Unlock()
	return &WorkerProc{p: p}, nil
}

func (s *Stack) spawnWorker(name string, keys, extra []string) (*proc.Process, error) {
	env := append(slices.Clone(s.common),
		"TRIGGER_INBOX_URL="+s.GatewayURL,
		"TRIGGER_API_KEYS="+strings.Join(keys, ","),
		"TRIGGER_REQUEST_TIMEOUT="+workerRequestTimeout,
	)
	if s.opts.Prometheus {
		// A port of the kernel's choosing, read back from the worker's log.
		env = append(env, "TRIGGER_METRICS_ADDR=127.0.0.1:0")
	}
	// Later entries win in a child's environment, so extra overrides the defaults above.
	env = append(env, extra...)
	return s.spawn(name, Worker, s.bin(Worker), nil, env, s.exited)
}

// WorkerProc is a worker started by StartWorker.
type WorkerProc struct{ p *proc.Process }

// LogPath is the file its JSON log lines go to.
func (w *WorkerProc) LogPath() string { return w.p.LogPath() }

// Stop sends SIGTERM, as Kubernetes does, and waits for the worker to exit: nil for a clean
// exit 0, an error for any other end or if it had to be killed.
func (w *WorkerProc) Stop() error { return w.p.Stop(stopGrace) }

// Kill ends the worker at once with SIGKILL, as a crash would: it cannot hand back or
// acknowledge what it holds.
func (w *WorkerProc) Kill() { w.p.Kill() }

// Done is closed once the worker has exited, for whatever reason.
func (w *WorkerProc) Done() <-chan struct{} { return w.p.Done() }

// Env is what a client of this stack needs; it is also what the env file holds.
func (s *Stack) Env() Env {
	keys := make(map[string]string, len(s.Keys))
	for t, k := range s.Keys {
		keys[t] = k
	}
	return Env{GatewayURL: s.GatewayURL, AdminToken: s.AdminToken, WorkerBin: s.bin(Worker), JaegerURL: s.JaegerURL, PrometheusURL: s.PrometheusURL, Keys: keys}
}

// PIDs are the process ids of the children the stack supervises (DynamoDB Local excepted).
func (s *Stack) PIDs() map[string]int {
	out := map[string]int{}
	s.mu.Lock()
	all := append(append(slices.Clone(s.services), s.worker), s.workers...)
	s.mu.Unlock()
	for _, p := range all {
		if p != nil {
			out[p.Name()] = p.Pid()
		}
	}
	return out
}

// Wait runs the stack until ctx ends (a clean stop, nil) or a component fails (everything is
// stopped and the failure returned).
func (s *Stack) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return s.Stop()
	case <-s.failed:
		return errors.Join(s.failure, s.Stop())
	}
}

// Stop ends everything in order: the workers first, so they can finish and acknowledge the
// events in hand through a gateway and inbox still up; then the services, the gateway and
// DynamoDB Local. It waits for each and is safe to call more than once.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		s.stopping.Store(true)
		s.mu.Lock()
		workers := slices.Clone(s.workers)
		services := slices.Clone(s.services)
		s.mu.Unlock()
		if s.worker != nil {
			workers = append(workers, s.worker)
		}
		workerErrs := make([]error, len(workers))
		var wg sync.WaitGroup
		for i, p := range workers {
			wg.Go(func() { workerErrs[i] = s.stopChild(p) })
		}
		wg.Wait()
		errs := workerErrs
		serviceErrs := make([]error, len(services))
		for i, p := range services {
			wg.Go(func() { serviceErrs[i] = s.stopChild(p) })
		}
		wg.Wait()
		errs = append(errs, serviceErrs...)
		if s.gateway != nil {
			errs = append(errs, shutdownGateway(s.gateway))
		}
		if s.prometheus != nil {
			errs = append(errs, s.stopChild(s.prometheus))
		}
		// After the services, which flush their last spans to it as they stop.
		if s.jaeger != nil {
			errs = append(errs, s.stopChild(s.jaeger))
		}
		if s.ddb != nil {
			s.ddb.Stop()
		}
		if s.EnvFile != "" {
			if err := os.Remove(s.EnvFile); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// shutdownGateway lets the gateway finish its calls. It waits longer than 5 s, as the services'
// drain does: net/http's Shutdown takes a connection accepted and never used (a client's spare
// dial, a call cancelled while it dialled) for active until it is 5 s old.
func shutdownGateway(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), gatewayShutdown)
	defer cancel()
	return srv.Shutdown(ctx)
}

// stopChild stops one child. One that had already ended was reported as the stack's failure
// when it did, so it is not reported again here.
func (s *Stack) stopChild(p *proc.Process) error {
	if p.Exited() {
		return nil
	}
	if err := p.Stop(stopGrace); err != nil {
		return fmt.Errorf("stop %s: %w; last lines of %s:\n%s", p.Name(), err, p.LogPath(), p.Tail(15))
	}
	return nil
}
