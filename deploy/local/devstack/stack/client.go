package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/trigger-api/trigger-api/pkg/apikey"
)

// caller makes API calls through the gateway and, when out is set, prints each call and its
// answer the way a reader of the demo wants to see them.
type caller struct {
	base string
	http *http.Client
	out  io.Writer
}

func newCaller(base string, out io.Writer) *caller {
	return &caller{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 15 * time.Second}, out: out}
}

// answer is an HTTP status and body.
type answer struct {
	Status int
	Body   []byte
}

func (a answer) decode(v any) error {
	if err := json.Unmarshal(a.Body, v); err != nil {
		return fmt.Errorf("answer %d is not the JSON expected: %w: %s", a.Status, err, a.Body)
	}
	return nil
}

// call sends one request with a bearer token. body is marshalled to JSON when not nil.
func (c *caller) call(ctx context.Context, method, path, token string, body any) (answer, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return answer{}, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if c.out != nil {
		fmt.Fprintf(c.out, "→ %s %s\n  Authorization: Bearer %s\n", method, path, redact(token))
		if body != nil {
			fmt.Fprintf(c.out, "  %s\n", payload)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	a := answer{Status: resp.StatusCode, Body: data}
	if c.out != nil {
		fmt.Fprintf(c.out, "← %d %s\n%s\n", a.Status, http.StatusText(a.Status), indent(data))
	}
	return a, nil
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

// Admin API shapes (DESIGN §4).
type createTenantDTO struct {
	TenantID string `json:"tenant_id"`
	Name     string `json:"name"`
}

type issuedKeyDTO struct {
	KeyID  string `json:"key_id"`
	APIKey string `json:"api_key"`
}

// createTenantWithKey creates a tenant (an existing one is fine: the stack may be sharing a
// database) and issues it a key with the default scopes.
func (c *caller) createTenantWithKey(ctx context.Context, adminToken, tenantID, name string) (string, error) {
	a, err := c.call(ctx, http.MethodPost, "/admin/tenants", adminToken, createTenantDTO{TenantID: tenantID, Name: name})
	if err != nil {
		return "", err
	}
	if a.Status != http.StatusCreated && a.Status != http.StatusConflict {
		return "", fmt.Errorf("create tenant %s: want 201, got %d: %s", tenantID, a.Status, a.Body)
	}
	a, err = c.call(ctx, http.MethodPost, "/admin/tenants/"+tenantID+"/keys", adminToken, struct{}{})
	if err != nil {
		return "", err
	}
	if a.Status != http.StatusCreated {
		return "", fmt.Errorf("issue key for %s: want 201, got %d: %s", tenantID, a.Status, a.Body)
	}
	var k issuedKeyDTO
	if err := a.decode(&k); err != nil {
		return "", fmt.Errorf("issue key for %s: %w", tenantID, err)
	}
	if _, err := apikey.Parse(k.APIKey); err != nil {
		return "", fmt.Errorf("issue key for %s: the answer holds no well-formed api_key", tenantID)
	}
	return k.APIKey, nil
}
