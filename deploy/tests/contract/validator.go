// Package contract checks Trigger API's real traffic against its OpenAPI document
// (pkg/openapi): every request and every answer, status, headers and body, through kin-openapi's
// OpenAPI 3.1 validator, which checks bodies with a JSON Schema 2020-12 validator. Its tests
// also keep the document and the Gin routers in step, and run the Postman collection.
package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Route-level answers: no operation documents them, because they answer requests outside every
// operation, so the validator checks them against these shared components.
const (
	RouteNotFound  = "(no route)"
	MethodNotFound = "(no method)"
)

// Validator checks exchanges against the document and remembers which documented answers it
// has seen. It is safe for concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]int // Key(operation, status) → how often
}

// Load parses and validates an OpenAPI 3.1 document, examples included, and returns a
// validator for it.
func Load(ctx context.Context, document []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(document)
	if err != nil {
		return nil, fmt.Errorf("load the document: %w", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		return nil, fmt.Errorf("the document is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(ctx, openapi3.EnableExamplesValidation(), openapi3.EnableSchemaDefaultsValidation(), openapi3.EnableSchemaPatternValidation()); err != nil {
		return nil, fmt.Errorf("the document is not valid OpenAPI 3.1: %w", err)
	}
	// The services are reached at whatever address a test gives them; only paths identify an
	// operation.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route the document: %w", err)
	}
	return &Validator{doc: doc, router: router, seen: map[string]int{}}, nil
}

// Exchange is one request and its answer, bodies read in full.
type Exchange struct {
	Request     *http.Request // its Body is ignored: RequestBody holds it
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// Result is what the document says of an exchange.
type Result struct {
	// Operation is "METHOD /documented/path", or RouteNotFound or MethodNotFound.
	Operation string
	// Request is why the request does not conform, nil if it does.
	Request error
	// Response is why the answer does not conform, nil if it does. Answers are checked even
	// for requests that do not conform: the bad-input answers are part of the contract too.
	Response error
}

// Key names a documented answer: "POST /events 202".
func Key(operation string, status int) string { return operation + " " + strconv.Itoa(status) }

// Check validates ex and records its answer as seen.
func (v *Validator) Check(ctx context.Context, ex Exchange) Result {
	req := ex.Request.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(ex.RequestBody))
	req.ContentLength = int64(len(ex.RequestBody))

	route, params, err := v.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		return v.routeLevel(RouteNotFound, "NotFound", http.StatusNotFound, ex)
	case errors.Is(err, routers.ErrMethodNotAllowed):
		return v.routeLevel(MethodNotFound, "MethodNotAllowed", http.StatusMethodNotAllowed, ex)
	case err != nil:
		return Result{Request: fmt.Errorf("find the operation of %s %s: %w", req.Method, req.URL.Path, err)}
	}
	res := Result{Operation: req.Method + " " + route.Path}
	v.record(Key(res.Operation, ex.Status))

	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: authenticate,
			// Check the request as sent, not with the document's defaults filled in.
			SkipSettingDefaults: true,
			MultiError:          true,
		},
	}
	res.Request = errors.Join(openapi3filter.ValidateRequest(ctx, in), oneJSONValue("request", ex.Request.Header, ex.RequestBody))

	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 ex.Status,
		Header:                 ex.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(ex.Body)
	res.Response = errors.Join(openapi3filter.ValidateResponse(ctx, out), oneJSONValue("answer", ex.Header, ex.Body), envelopeMatchesHeader(ex))
	return res
}

// oneJSONValue holds a JSON body to RFC 8259: exactly one value. The validator's decoder reads
// the first value and ignores what follows, so `{...} {}` would otherwise pass.
func oneJSONValue(what string, h http.Header, body []byte) error {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "application/json" || len(body) == 0 {
		return nil
	}
	if !json.Valid(body) {
		return fmt.Errorf("the %s body is not one JSON value", what)
	}
	return nil
}

// routeLevel checks an answer outside every operation against the shared response component.
func (v *Validator) routeLevel(name, component string, status int, ex Exchange) Result {
	res := Result{Operation: name}
	v.record(Key(name, ex.Status))
	if ex.Status != status {
		res.Response = fmt.Errorf("%s %s is %s, and answered %d, not %d", ex.Request.Method, ex.Request.URL.Path, name, ex.Status, status)
		return res
	}
	ref := v.doc.Components.Responses[component]
	if ref == nil || ref.Value == nil {
		res.Response = fmt.Errorf("the document has no response component %s", component)
		return res
	}
	var errs []error
	for name, h := range ref.Value.Headers {
		if h.Value.Required && ex.Header.Get(name) == "" {
			errs = append(errs, fmt.Errorf("header %s is missing", name))
		}
	}
	mt := ref.Value.Content.Get(ex.Header.Get("Content-Type"))
	if mt == nil {
		errs = append(errs, fmt.Errorf("content type %q is not documented", ex.Header.Get("Content-Type")))
	} else {
		var body any
		if err := json.Unmarshal(ex.Body, &body); err != nil {
			errs = append(errs, fmt.Errorf("body is not JSON: %w", err))
		} else if err := mt.Schema.Value.VisitJSON(body, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
			errs = append(errs, fmt.Errorf("body does not match %s: %w", component, err))
		}
	}
	res.Response = errors.Join(append(errs, envelopeMatchesHeader(ex))...)
	return res
}

// envelopeMatchesHeader checks what a schema cannot: an error envelope's request_id is the
// X-Request-Id of its answer, and a caller's well-formed request id comes back unchanged.
func envelopeMatchesHeader(ex Exchange) error {
	header := ex.Header.Get("X-Request-Id")
	if sent := ex.Request.Header.Get("X-Request-Id"); sent != "" && requestIDPattern.MatchString(sent) && header != "" && header != sent {
		return fmt.Errorf("the request sent X-Request-Id %q and the answer carries %q", sent, header)
	}
	if ex.Status < 400 {
		return nil
	}
	var env struct {
		Error struct {
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if json.Unmarshal(ex.Body, &env) != nil || env.Error.RequestID == "" {
		return nil // the schema check reports a body that is not an envelope
	}
	if env.Error.RequestID != header {
		return fmt.Errorf("envelope request_id %q differs from the X-Request-Id header %q", env.Error.RequestID, header)
	}
	return nil
}

var (
	requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	tenantKeyPattern = regexp.MustCompile(`^tenant_[a-z0-9][a-z0-9-]{1,62}_live_[0-9A-Za-z]{38}$`)
)

// authenticate checks what a client can know of its credentials: a bearer token, and for a
// tenant key, the key's format. Whether the service accepts it is the service's answer.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return in.NewError(errors.New("no bearer token"))
	}
	if in.SecuritySchemeName == "tenantKey" && !tenantKeyPattern.MatchString(token) {
		return in.NewError(errors.New("the bearer token is not a tenant key"))
	}
	return nil
}

func (v *Validator) record(key string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seen[key]++
}

// Documented lists every answer the document describes, as Keys, plus the route-level 404
// and 405.
func (v *Validator) Documented() []string {
	var out []string
	for path, item := range v.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				n, err := strconv.Atoi(status)
				if err != nil {
					// A range such as 4XX or "default": listed as written, so it can never
					// count as seen and the coverage check names it.
					out = append(out, method+" "+path+" "+status)
					continue
				}
				out = append(out, Key(method+" "+path, n))
			}
		}
	}
	out = append(out, Key(RouteNotFound, http.StatusNotFound), Key(MethodNotFound, http.StatusMethodNotAllowed))
	sort.Strings(out)
	return out
}

// Unseen lists the documented answers no checked exchange has produced.
func (v *Validator) Unseen() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.DeleteFunc(v.Documented(), func(k string) bool { return v.seen[k] > 0 })
}

// Undocumented lists the answers seen that the document does not describe.
func (v *Validator) Undocumented() []string {
	doc := v.Documented()
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for k := range v.seen {
		if !slices.Contains(doc, k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
