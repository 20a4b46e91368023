// Package noisy is the noisy-neighbour scenario: one customer (the abuser, "A") does everything
// the API lets a tenant do to hurt others while another (the neighbour, "B") runs the seed's
// workload against the same deployment. A reads the largest answers the API gives as fast as
// it can, bursts far over its rate limit, floods the services with well-formed keys nobody
// issued, parks hundreds of long polls and redrives thousands of dead letters in a loop.
//
// The scenario records every raw answer each side gets. The isolation test (deploy/tests/
// isolation) asserts on them: B sees no error at all, A sees no 5xx, every event B got accepted
// is processed. The bench's isolation suite times B with and without A instead.
package noisy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trigger-api/trigger-api/pkg/client"
)

// Config sizes the scenario. Zero values are not defaults: take TestConfig or BenchConfig.
type Config struct {
	// NeighbourRate is B's steady POST /events rate, its events consumed by NeighbourConsumers
	// pull-and-ack loops.
	NeighbourRate      float64
	NeighbourConsumers int

	// BigEvents of BigEventBytes each fill the inbox A reads, so each of its pages is as
	// large as the API makes one.
	BigEvents     int
	BigEventBytes int
	// Readers is how many loops of each read (GET /inbox, GET /inbox/dead, POST /inbox/pull
	// with a 1 s lease) run at once.
	Readers int

	// BurstRateLimit is the rate_limit of A's bursting tenant; BurstRate what it sends.
	BurstRateLimit int
	BurstRate      float64

	// BogusRate is the rate of calls with well-formed keys that were never issued.
	BogusRate float64

	// ParkedPolls are long polls (wait_seconds 20) kept open on an inbox nobody writes to.
	ParkedPolls int

	// DeadEvents are killed before A starts (max_deliveries 1, leases let lapse) and then
	// redriven and killed again in a loop, over and over.
	DeadEvents int

	// AbuserRateLimit, when set, is the rate_limit of A's reading, parking and redriving
	// tenants once their inboxes are loaded, as an operator sizes tenants' rates to what the
	// tables sustain. 0 leaves them on the services' default.
	AbuserRateLimit int
}

// TestConfig is small enough for the test's time on a 2-core machine and still does every
// kind of abuse at the scale the API's limits are about.
func TestConfig() Config {
	return Config{
		NeighbourRate: 10, NeighbourConsumers: 2,
		BigEvents: 60, BigEventBytes: 250 << 10, Readers: 8,
		BurstRateLimit: 5, BurstRate: 100,
		BogusRate:   100,
		ParkedPolls: 200,
		DeadEvents:  400,
	}
}

// BenchConfig is the bench's: more dead letters to redrive, a faster flood, and A's tenants at
// a rate sized to this machine's DynamoDB Local.
func BenchConfig() Config {
	c := TestConfig()
	c.NeighbourRate = 20
	c.BogusRate = 200
	c.BurstRate = 200
	c.DeadEvents = 3000
	// A's three unthrottled tenants at 50/s each (the bursting one has 5) ask for at most about
	// a third of the conditional writes this machine's DynamoDB Local sustains (about 560/s);
	// at the default 1,000/s one tenant alone may ask for more than the table gives anyone.
	c.AbuserRateLimit = 50
	return c
}

// Target is the deployment under test.
type Target struct {
	GatewayURL string
	AdminToken string
	// InboxPID is the inbox process whose memory is sampled while A reads; 0: not sampled.
	InboxPID int
	// AbuserCommand, when set, runs A in a process of its own: this command, which must call
	// ServeAbuser. Its load generator then competes with B's for the machine, as another
	// customer's does, and not for the scheduler of B's process. Given a gateway of its own
	// (ServeAbuser's via), the copying of A's answers leaves B's process too.
	AbuserCommand []string
}

// Tenant ids of the scenario. The abuser is one customer with several tenants, so that each
// kind of abuse is at its worst: a low rate limit would otherwise also throttle its reads.
const (
	neighbourTenant = "neighbour"
	readsTenant     = "abuser-reads"
	burstTenant     = "abuser-burst"
	parkedTenant    = "abuser-parked"
	deadTenant      = "abuser-dead"
)

// callTimeout bounds each call but a long poll, which gets its wait on top.
const callTimeout = 30 * time.Second

// Scenario is a prepared deployment: tenants made, A's inboxes filled, every key known to
// the services. Run B with StartNeighbour, A with StartAbuse.
type Scenario struct {
	cfg      Config
	target   Target
	progress io.Writer

	phase atomic.Pointer[string]

	neighbourRec *recorder
	abuserRec    *recorder
	keys         map[string]string // tenant → key

	b *neighbour
	a *abuse

	mu     sync.Mutex
	phases []string // in order of first use
}

// Prepare creates the tenants, fills A's inboxes and warms every key in every service, so that
// the first calls measured are not the ones that read keys from the database.
func Prepare(ctx context.Context, t Target, cfg Config, progress io.Writer) (*Scenario, error) {
	if cfg.NeighbourRate <= 0 || cfg.NeighbourConsumers < 1 || cfg.Readers < 1 || cfg.BigEvents < 1 {
		return nil, errors.New("noisy: the config needs a neighbour rate, consumers, readers and big events")
	}
	s := &Scenario{cfg: cfg, target: t, progress: progress, keys: map[string]string{}}
	s.SetPhase("prepare")
	s.neighbourRec = newRecorder("B", transport(16), s.Phase, neighbourExpects)
	s.newAbuser()
	if err := s.createTenants(ctx); err != nil {
		return nil, err
	}
	s.logf("loading %d events of %d KiB for A's reads", cfg.BigEvents, cfg.BigEventBytes>>10)
	if err := s.loadBig(ctx); err != nil {
		return nil, err
	}
	s.logf("loading and killing %d events for A's redrives", cfg.DeadEvents)
	if err := s.loadDead(ctx); err != nil {
		return nil, err
	}
	if err := s.limitAbuser(ctx); err != nil {
		return nil, err
	}
	if err := s.warmKeys(ctx); err != nil {
		return nil, err
	}
	s.b = newNeighbour(s)
	return s, nil
}

// transport is a connection pool of its own for each actor, as two customers have.
func transport(conns int) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = conns, conns
	return t
}

// SetPhase labels what follows: B's events and latencies, and every finding.
func (s *Scenario) SetPhase(name string) {
	s.phase.Store(&name)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.phases {
		if p == name {
			return
		}
	}
	s.phases = append(s.phases, name)
}

// Phase is the current phase's label.
func (s *Scenario) Phase() string { return *s.phase.Load() }

func (s *Scenario) logf(format string, args ...any) {
	if s.progress != nil {
		fmt.Fprintf(s.progress, "noisy: "+format+"\n", args...)
	}
}

// tenantClient is a client of one tenant's key over an actor's recorder. It never retries:
// the neighbour must not need to, and the abuser's every raw answer is what is judged.
func (s *Scenario) tenantClient(rec *recorder, key string) (*client.Client, error) {
	return client.New(s.target.GatewayURL, key,
		client.WithHTTPClient(&http.Client{Transport: rec, Timeout: callTimeout + 25*time.Second}),
		client.WithRetries(0))
}
