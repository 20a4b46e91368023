package httpx

import (
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// MaxTenantInFlight is how many requests one tenant may have in progress at once in a
// process. The rate limit counts requests as they arrive; this bounds what they hold (a
// connection, a goroutine, buffers) while DynamoDB is slow to answer them.
const MaxTenantInFlight = 100

// Each tenant's DynamoDB calls in progress in a process are capped too, at one per
// callUnitsPerSlot of its rate, between MinTenantCalls and MaxTenantCalls: DynamoDB answers in
// about 10 ms, so a slot serves about 100 calls a second, and a tenant sized to a small rate
// cannot keep a burst of hundreds of calls in front of every other tenant's. A tenant under
// 100 a second gets one: a second slot doubled what a few small tenants of one customer
// kept in front of everyone else's calls, and one slot already serves its whole rate.
const (
	MinTenantCalls   = 1
	MaxTenantCalls   = 64
	callUnitsPerSlot = 100
)

// TenantCalls is how many DynamoDB calls a tenant of rate (per second on this replica; 0: no
// limit) may have in progress at once in a process.
func TenantCalls(rate int) int {
	if rate <= 0 {
		return MaxTenantCalls
	}
	return min(MaxTenantCalls, max(MinTenantCalls, (rate+callUnitsPerSlot-1)/callUnitsPerSlot))
}

// InFlight caps each tenant's requests in progress; the next one answers 429 with Retry-After.
// The requests it lets through share their tenant's DynamoDB call slots (ddb.WithCallSlots).
// It goes after RequireKey, which names the tenant.
type InFlight struct {
	max int
	mu  sync.Mutex
	n   map[string]*tenantLoad
}

// tenantLoad is what one tenant has in progress in this process.
type tenantLoad struct {
	requests int
	calls    chan struct{}
}

// NewInFlight returns a cap of max requests per tenant.
func NewInFlight(max int) *InFlight { return &InFlight{max: max, n: map[string]*tenantLoad{}} }

// Limit is the middleware.
func (f *InFlight) Limit(c *gin.Context) {
	var p tenant.Principal
	rate := 0
	if r := requestOf(c); r != nil && r.auth != nil {
		p, rate = r.principal, r.auth.Rate(r.principal)
	}
	calls, ok := f.enter(p.TenantID, TenantCalls(rate))
	if !ok {
		Fail(c, &tenant.RateLimitedError{RetryAfter: time.Second})
		return
	}
	defer f.leave(p.TenantID)
	// A parked long poll keeps these slots past its handler, and so past the tenant's entry
	// here: its later reads then share them with nothing new, bounded by the parked-poll cap.
	c.Request = c.Request.WithContext(ddb.WithCallSlots(c.Request.Context(), calls))
	c.Next()
}

func (f *InFlight) enter(tenantID string, calls int) (chan struct{}, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.n[tenantID]
	if l == nil {
		l = &tenantLoad{calls: make(chan struct{}, calls)}
		f.n[tenantID] = l
	}
	if l.requests >= f.max {
		return nil, false
	}
	l.requests++
	return l.calls, true
}

// leave forgets a tenant with nothing in progress, so the map holds only active tenants (and
// a tenant's rate, should it change, sizes its slots anew).
func (f *InFlight) leave(tenantID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l := f.n[tenantID]; l != nil {
		if l.requests--; l.requests <= 0 {
			delete(f.n, tenantID)
		}
	}
}
