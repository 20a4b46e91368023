package httpx

import (
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trigger-api/trigger-api/pkg/tenant"
)

// MaxTenantInFlight is how many requests one tenant may have in progress at once in a
// process. The rate limit counts requests as they arrive; this bounds what they hold (a
// connection, a goroutine, buffers) while DynamoDB is slow to answer them.
const MaxTenantInFlight = 100

// InFlight caps each tenant's requests in progress; the next one answers 429 with Retry-After.
// It goes after RequireKey, which names the tenant.
type InFlight struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// NewInFlight returns a cap of max requests per tenant.
func NewInFlight(max int) *InFlight { return &InFlight{max: max, n: map[string]int{}} }

// Limit is the middleware.
func (f *InFlight) Limit(c *gin.Context) {
	tenantID := Principal(c).TenantID
	if !f.enter(tenantID) {
		Fail(c, &tenant.RateLimitedError{RetryAfter: time.Second})
		return
	}
	defer f.leave(tenantID)
	c.Next()
}

func (f *InFlight) enter(tenantID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[tenantID] >= f.max {
		return false
	}
	f.n[tenantID]++
	return true
}

// leave forgets a tenant with nothing in progress, so the map holds only active tenants.
func (f *InFlight) leave(tenantID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[tenantID]--; f.n[tenantID] <= 0 {
		delete(f.n, tenantID)
	}
}
