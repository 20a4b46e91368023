// Package openapi holds Trigger API's OpenAPI 3.1 document, kept once and embedded in every
// service, and serves each service's part of it at GET /openapi.json.
//
// Every operation names the service that implements it in its "x-service" extension
// ("ingest", "inbox", "keys-admin", or "*" for the probes and the document itself, which every
// service serves). A service's part is its operations plus the components they use, so a
// client generated from one service's document holds nothing that service does not answer.
package openapi

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
)

//go:embed openapi.json
var document []byte

// Service names, as the document's x-service values spell them.
const (
	Ingest    = "ingest"
	Inbox     = "inbox"
	KeysAdmin = "keys-admin"
	// Every marks operations every service serves.
	Every = "*"
)

// Services are the services that serve a part of the document.
var Services = []string{Ingest, Inbox, KeysAdmin}

// Methods are the HTTP methods a path item may hold, in the order operations are listed.
var Methods = []string{
	http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete,
	http.MethodOptions, http.MethodHead, http.MethodPatch, http.MethodTrace,
}

// Document returns the whole document as embedded.
func Document() []byte { return bytes.Clone(document) }

// Operation is one documented method on one path.
type Operation struct {
	Method  string // upper case, as net/http spells it
	Path    string // as the document spells it: /events/{event_id}
	ID      string // operationId
	Service string // x-service: a service name or Every
	// TenantScopes are the scopes of which a tenant key needs one; empty when the operation
	// takes no tenant key.
	TenantScopes []string
}

// ServedBy reports whether service answers this operation.
func (o Operation) ServedBy(service string) bool {
	return o.Service == service || o.Service == Every
}

// Operations lists the document's operations sorted by path and method: all of them for
// service "", else those service serves.
func Operations(service string) ([]Operation, error) {
	doc, err := decode(document)
	if err != nil {
		return nil, err
	}
	ops, err := operations(doc)
	if err != nil {
		return nil, err
	}
	if service == "" {
		return ops, nil
	}
	if !slices.Contains(Services, service) {
		return nil, fmt.Errorf("openapi: unknown service %q", service)
	}
	return slices.DeleteFunc(ops, func(o Operation) bool { return !o.ServedBy(service) }), nil
}

// ForService returns the document reduced to what service serves: its operations, the tags
// they use and the components they reference, directly or through other components.
func ForService(service string) ([]byte, error) {
	if !slices.Contains(Services, service) {
		return nil, fmt.Errorf("openapi: unknown service %q", service)
	}
	doc, err := decode(document)
	if err != nil {
		return nil, err
	}
	if _, err := operations(doc); err != nil {
		return nil, err
	}
	paths := doc["paths"].(map[string]any)
	for p, raw := range paths {
		item := raw.(map[string]any)
		kept := 0
		for _, m := range Methods {
			op, ok := item[strings.ToLower(m)].(map[string]any)
			if !ok {
				continue
			}
			if s := op["x-service"].(string); s != service && s != Every {
				delete(item, strings.ToLower(m))
				continue
			}
			kept++
		}
		if kept == 0 {
			delete(paths, p)
		}
	}
	if err := prune(doc, paths); err != nil {
		return nil, err
	}
	info := doc["info"].(map[string]any)
	info["title"] = fmt.Sprintf("%s: %s", info["title"], service)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// The descriptions hold <placeholders>; escaping them as \u003c would only hurt readers.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// parts computes each service's part once: routers are built per test in the services' suites,
// and the embedded document never changes.
var parts = map[string]func() ([]byte, error){
	Ingest:    sync.OnceValues(func() ([]byte, error) { return ForService(Ingest) }),
	Inbox:     sync.OnceValues(func() ([]byte, error) { return ForService(Inbox) }),
	KeysAdmin: sync.OnceValues(func() ([]byte, error) { return ForService(KeysAdmin) }),
}

// Handler serves service's part of the document. An unknown service name is a mistake in a
// route table, so it panics when the router is built rather than answering 500 later.
func Handler(service string) gin.HandlerFunc {
	part, ok := parts[service]
	if !ok {
		panic(fmt.Sprintf("openapi: unknown service %q", service))
	}
	body, err := part()
	if err != nil {
		panic(err)
	}
	return func(c *gin.Context) {
		c.Data(http.StatusOK, "application/json; charset=utf-8", body)
	}
}

var (
	ginParam     = regexp.MustCompile(`:([A-Za-z0-9_]+)`)
	openapiParam = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)
)

// GinPath spells a document path the way a Gin route does: /events/{event_id} → /events/:event_id.
func GinPath(p string) string { return openapiParam.ReplaceAllString(p, ":$1") }

// DocumentPath spells a Gin route the way the document does: /events/:event_id → /events/{event_id}.
func DocumentPath(p string) string { return ginParam.ReplaceAllString(p, "{$1}") }

func decode(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	// Numbers stay as written: a float64 round trip would turn 1732140249123 into 1.732140249123e+12.
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("openapi: decode the document: %w", err)
	}
	if _, ok := doc["paths"].(map[string]any); !ok {
		return nil, errors.New("openapi: the document has no paths")
	}
	if _, ok := doc["info"].(map[string]any); !ok {
		return nil, errors.New("openapi: the document has no info")
	}
	return doc, nil
}

func operations(doc map[string]any) ([]Operation, error) {
	var ops []Operation
	for p, raw := range doc["paths"].(map[string]any) {
		item, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("openapi: path %s is not an object", p)
		}
		for _, m := range Methods {
			raw, ok := item[strings.ToLower(m)]
			if !ok {
				continue
			}
			op, ok := raw.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("openapi: %s %s is not an object", m, p)
			}
			svc, _ := op["x-service"].(string)
			if svc != Every && !slices.Contains(Services, svc) {
				return nil, fmt.Errorf("openapi: %s %s: x-service %q is not one of %v or %q", m, p, svc, Services, Every)
			}
			id, _ := op["operationId"].(string)
			ops = append(ops, Operation{Method: m, Path: p, ID: id, Service: svc, TenantScopes: tenantScopes(op)})
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Path != ops[j].Path {
			return ops[i].Path < ops[j].Path
		}
		return slices.Index(Methods, ops[i].Method) < slices.Index(Methods, ops[j].Method)
	})
	return ops, nil
}

// tenantScopes reads the alternatives of an operation's tenantKey security requirement.
func tenantScopes(op map[string]any) []string {
	var out []string
	reqs, _ := op["security"].([]any)
	for _, r := range reqs {
		req, _ := r.(map[string]any)
		scopes, _ := req["tenantKey"].([]any)
		for _, s := range scopes {
			if s, ok := s.(string); ok && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// prune drops the components, security schemes and tags that the kept paths do not use.
func prune(doc map[string]any, paths map[string]any) error {
	components, _ := doc["components"].(map[string]any)
	used, err := usedComponents(components, paths)
	if err != nil {
		return err
	}
	schemes, tags := usedSchemesAndTags(paths)
	for kind, raw := range components {
		group, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		for key := range group {
			if kind == "securitySchemes" && !schemes[key] || kind != "securitySchemes" && !used[kind+"/"+key] {
				delete(group, key)
			}
		}
		if len(group) == 0 {
			delete(components, kind)
		}
	}
	pruneTags(doc, tags)
	return nil
}

// usedComponents follows every $ref from paths, through the components it reaches, and
// returns them as "<kind>/<name>" ("schemas/Error").
func usedComponents(components, paths map[string]any) (map[string]bool, error) {
	used := map[string]bool{}
	var queue []string
	var walkErr error
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				name, ok := strings.CutPrefix(ref, "#/components/")
				if !ok || strings.Count(name, "/") != 1 {
					walkErr = errors.Join(walkErr, fmt.Errorf("openapi: $ref %q: only #/components/<kind>/<name> is supported", ref))
				} else if !used[name] {
					used[name] = true
					queue = append(queue, name)
				}
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(paths)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		kind, key, _ := strings.Cut(name, "/")
		group, _ := components[kind].(map[string]any)
		c, ok := group[key]
		if !ok {
			return nil, fmt.Errorf("openapi: $ref #/components/%s points nowhere", name)
		}
		walk(c)
	}
	return used, walkErr
}

// usedSchemesAndTags returns the security schemes and tags the operations of paths name.
func usedSchemesAndTags(paths map[string]any) (schemes, tags map[string]bool) {
	schemes, tags = map[string]bool{}, map[string]bool{}
	for _, raw := range paths {
		for _, m := range Methods {
			op, ok := raw.(map[string]any)[strings.ToLower(m)].(map[string]any)
			if !ok {
				continue
			}
			reqs, _ := op["security"].([]any)
			for _, r := range reqs {
				for s := range r.(map[string]any) {
					schemes[s] = true
				}
			}
			opTags, _ := op["tags"].([]any)
			for _, t := range opTags {
				tags[t.(string)] = true
			}
		}
	}
	return schemes, tags
}

// pruneTags keeps only the tags in use, in the tag list and in the tag groups.
func pruneTags(doc map[string]any, tags map[string]bool) {
	if all, ok := doc["tags"].([]any); ok {
		doc["tags"] = slices.DeleteFunc(all, func(t any) bool { return !tags[t.(map[string]any)["name"].(string)] })
	}
	if groups, ok := doc["x-tagGroups"].([]any); ok {
		for _, g := range groups {
			g := g.(map[string]any)
			names, _ := g["tags"].([]any)
			g["tags"] = slices.DeleteFunc(names, func(t any) bool { return !tags[t.(string)] })
		}
		doc["x-tagGroups"] = slices.DeleteFunc(groups, func(g any) bool { return len(g.(map[string]any)["tags"].([]any)) == 0 })
	}
}
