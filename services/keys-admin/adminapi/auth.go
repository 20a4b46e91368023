package adminapi

import (
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/trigger-api/trigger-api/pkg/httpx"
)

const ctxAdminID = "adminapi.admin_id"

// requireAdmin lets only requests carrying an admin token through and records which admin sent
// it, for the audit lines. It stands in for httpx.RequireAdmin, whose tokens have no names.
func requireAdmin(tokens AdminAuth) gin.HandlerFunc {
	return func(c *gin.Context) {
		scheme, token, _ := strings.Cut(c.GetHeader("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			httpx.WriteError(c, httpx.Unauthenticated)
			return
		}
		id, ok := tokens.Identify(token)
		if !ok {
			httpx.WriteError(c, httpx.Unauthenticated)
			return
		}
		c.Set(ctxAdminID, id)
		c.Next()
	}
}

// adminID is the id of the admin token the request was let in with.
func adminID(c *gin.Context) string { return c.GetString(ctxAdminID) }

// noStore keeps an answer that carries a key's secret out of every cache between the service
// and the operator (proxies, browsers, an HTTP client's cache): the secret is shown once.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache") // HTTP/1.0 caches know only this
	c.Next()
}
