package httpx

import (
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/trigger-api/trigger-api/pkg/tenant"
)

const ctxPrincipal = "httpx.principal"

func bearer(c *gin.Context) (string, bool) {
	h := c.GetHeader("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// RequireKey authenticates the tenant key, checks it grants one of scopes and that its tenant
// is within its request rate. A client address over its budget of failed authentications is
// answered 429 for any key not already known to be good (see tenant.AuthConfig). The tenant
// comes from the key and nothing else; handlers read it with Principal.
func RequireKey(auth *tenant.Authenticator, scopes ...tenant.Scope) gin.HandlerFunc {
	return func(c *gin.Context) {
		// A missing header goes through too: it is a failed authentication like any other.
		token, _ := bearer(c)
		client := ClientAddr(c.Request, auth.TrustedProxies())
		p, err := auth.AuthenticateClient(c.Request.Context(), token, client)
		if err != nil {
			Fail(c, err)
			return
		}
		c.Set(ctxPrincipal, p)
		c.Set(ctxAuth, auth)
		tagTenant(c, p.TenantID)
		if !slices.ContainsFunc(scopes, p.Can) {
			Fail(c, tenant.ErrForbidden)
			return
		}
		// After the scope check, so refused calls spend none of the tenant's rate.
		if err := auth.Admit(p); err != nil {
			Fail(c, err)
			return
		}
		c.Next()
	}
}

// ctxAuth holds the authenticator that admitted the request, for ChargeWork.
const ctxAuth = "trigger.auth"

// ChargeWork counts a request that turned out to hold n items (a batch's events, a settle
// call's ids) against its tenant's rate as n requests. Handlers behind RequireKey only.
func ChargeWork(c *gin.Context, n int) {
	if auth, ok := c.Get(ctxAuth); ok {
		auth.(*tenant.Authenticator).Charge(Principal(c), n)
	}
}

// Principal returns the authenticated tenant of the request. Handlers behind RequireKey only.
func Principal(c *gin.Context) tenant.Principal {
	p, _ := principal(c)
	return p
}

func principal(c *gin.Context) (tenant.Principal, bool) {
	v, ok := c.Get(ctxPrincipal)
	if !ok {
		return tenant.Principal{}, false
	}
	return v.(tenant.Principal), true
}
