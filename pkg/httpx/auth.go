package httpx

import (
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/trigger-api/trigger-api/pkg/tenant"
)

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
		setPrincipal(c, p, auth)
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

// ChargeWork counts a request that turned out to hold n items (a batch's events, a settle
// call's ids) against its tenant's rate as n requests. Handlers behind RequireKey only.
func ChargeWork(c *gin.Context, n int) {
	if r := requestOf(c); r != nil && r.auth != nil {
		r.auth.Charge(r.principal, n)
	}
}

// Principal returns the authenticated tenant of the request. Handlers behind RequireKey only.
func Principal(c *gin.Context) tenant.Principal {
	p, _ := principal(c)
	return p
}

func principal(c *gin.Context) (tenant.Principal, bool) {
	if r := requestOf(c); r != nil && r.auth != nil {
		return r.principal, true
	}
	return tenant.Principal{}, false
}

// setPrincipal records who the request is for. A request that came in without the shared
// middleware (a handler under test on a bare engine) gets its state here.
func setPrincipal(c *gin.Context, p tenant.Principal, auth *tenant.Authenticator) {
	r := requestOf(c)
	if r == nil {
		r = &request{}
		c.Set(ctxRequest, r)
	}
	r.principal, r.auth = p, auth
}
