package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/client"
)

// CallTimeout bounds each call the demo makes to the API.
const CallTimeout = 15 * time.Second

// maxPrinted bounds how much of an answer the printer reads to show; the rest still reaches
// the client, which judges the size of an answer itself.
const maxPrinted = 32 << 20

// Printer is the transport of the demo's clients: it prints every call and its answer the way
// a reader of the demo wants to see them, and hands both on unchanged.
type Printer struct {
	Next http.RoundTripper
	Out  io.Writer
}

func (p *Printer) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s %s: read request: %w", req.Method, req.URL.Path, err)
		}
		body = b
		// A RoundTripper must not change the request it is given, so a copy carries the body on.
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	token := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	fmt.Fprintf(p.Out, "→ %s %s\n  Authorization: Bearer %s\n", req.Method, req.URL.RequestURI(), redact(token))
	if len(body) > 0 {
		fmt.Fprintf(p.Out, "  %s\n", body)
	}
	resp, err := p.Next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxPrinted))
	if err != nil {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%s %s: read answer: %w", req.Method, req.URL.Path, err)
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
	fmt.Fprintf(p.Out, "← %d %s\n%s\n", resp.StatusCode, http.StatusText(resp.StatusCode), indent(redactIssued(data)))
	return resp, nil
}

// redactIssued hides the secret of a key the answer issues, as redact does in the header: the
// demo's output ends up in logs (a `helm test` Pod's, CI's), and the key lives until the demo
// suspends its tenant, which a failed run never reaches.
func redactIssued(body []byte) []byte {
	var issued struct {
		APIKey string `json:"api_key"`
	}
	if json.Unmarshal(body, &issued) != nil || issued.APIKey == "" {
		return body
	}
	return bytes.ReplaceAll(body, []byte(issued.APIKey), []byte(redact(issued.APIKey)))
}

// redact shows enough of a credential to tell which one was used: a tenant key's displayable
// prefix, or nothing of an admin token.
func redact(token string) string {
	if k, err := apikey.Parse(token); err == nil {
		return k.Prefix() + "…"
	}
	return "<admin token>"
}

func indent(body []byte) string {
	var b bytes.Buffer
	if json.Indent(&b, body, "  ", "  ") != nil {
		return "  " + string(body)
	}
	return "  " + b.String()
}

// CreateTenantWithKey creates a tenant (an existing one is fine: the stack may be sharing a
// database) and issues it a key with the default scopes.
func CreateTenantWithKey(ctx context.Context, admin *client.Admin, tenantID, name string) (string, error) {
	_, err := admin.CreateTenant(ctx, api.CreateTenantRequest{TenantID: tenantID, Name: name})
	if e, ok := errors.AsType[*client.Error](err); ok && e.Status == http.StatusConflict {
		err = nil
	}
	if err != nil {
		return "", fmt.Errorf("create tenant %s: %w", tenantID, err)
	}
	k, err := admin.IssueKey(ctx, tenantID, api.IssueKeyRequest{})
	if err != nil {
		return "", fmt.Errorf("issue key for %s: %w", tenantID, err)
	}
	if _, err := apikey.Parse(k.APIKey); err != nil {
		return "", fmt.Errorf("issue key for %s: the answer holds no well-formed api_key", tenantID)
	}
	return k.APIKey, nil
}
