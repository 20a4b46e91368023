package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Span is one span of a trace as Jaeger's query API returns it.
type Span struct {
	SpanID, ParentID string
	Service, Name    string
	Kind             string
	Start            time.Time
	Duration         time.Duration
	Attrs            map[string]string
	Links            []SpanRef // spans this one follows from: a processing span's pull, say
	Error            bool
}

// SpanRef names a span that may belong to another trace.
type SpanRef struct{ TraceID, SpanID string }

// Trace is one trace, its spans in start order.
type Trace struct {
	ID    string
	Spans []Span
}

// Services lists the services with spans in the trace, sorted.
func (t Trace) Services() []string {
	var out []string
	for _, s := range t.Spans {
		if !slices.Contains(out, s.Service) {
			out = append(out, s.Service)
		}
	}
	slices.Sort(out)
	return out
}

// Find returns the first span named name of service, if any.
func (t Trace) Find(service, name string) (Span, bool) {
	for _, s := range t.Spans {
		if s.Service == service && s.Name == name {
			return s, true
		}
	}
	return Span{}, false
}

// ErrNoTrace means Jaeger holds no trace for the event (yet: spans arrive in batches).
var ErrNoTrace = errors.New("no trace for the event")

// EventTrace finds the trace of an event in the Jaeger whose query API is at jaegerURL: the
// one holding ingest's publish span for it.
func EventTrace(ctx context.Context, jaegerURL, eventID string) (Trace, error) {
	tags, err := json.Marshal(map[string]string{"messaging.message.id": eventID})
	if err != nil {
		return Trace{}, err
	}
	q := url.Values{"service": {Ingest}, "operation": {"trigger publish"}, "tags": {string(tags)}, "limit": {"5"}}
	var found jaegerAnswer
	if err := getJSON(ctx, strings.TrimRight(jaegerURL, "/")+"/api/traces?"+q.Encode(), &found); err != nil {
		return Trace{}, err
	}
	if len(found.Data) == 0 {
		return Trace{}, fmt.Errorf("%w %s", ErrNoTrace, eventID)
	}
	// The search answers with the spans matched so far; the trace itself holds them all.
	tr, err := TraceByID(ctx, jaegerURL, found.Data[0].TraceID)
	if errors.Is(err, ErrNoTrace) {
		return Trace{}, fmt.Errorf("%w %s", ErrNoTrace, eventID)
	}
	return tr, err
}

// TraceByID returns the trace traceID (32 hex digits) from the Jaeger at jaegerURL, or an error
// that is ErrNoTrace when Jaeger holds none.
func TraceByID(ctx context.Context, jaegerURL, traceID string) (Trace, error) {
	var full jaegerAnswer
	if err := getJSON(ctx, strings.TrimRight(jaegerURL, "/")+"/api/traces/"+url.PathEscape(traceID), &full); err != nil {
		return Trace{}, err
	}
	if len(full.Data) == 0 {
		return Trace{}, ErrNoTrace
	}
	return full.Data[0].trace(), nil
}

func getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("jaeger: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusNotFound {
		return ErrNoTrace
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jaeger: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, out)
}

// jaegerAnswer is the part of Jaeger's JSON trace model the timeline needs.
type jaegerAnswer struct {
	Data []jaegerTrace `json:"data"`
}

type jaegerTrace struct {
	TraceID   string       `json:"traceID"`
	Spans     []jaegerSpan `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

type jaegerSpan struct {
	SpanID     string `json:"spanID"`
	Operation  string `json:"operationName"`
	References []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	StartTime int64 `json:"startTime"` // µs since the epoch
	Duration  int64 `json:"duration"`  // µs
	Tags      []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	ProcessID string `json:"processID"`
}

func (jt jaegerTrace) trace() Trace {
	t := Trace{ID: jt.TraceID}
	for _, js := range jt.Spans {
		s := Span{
			SpanID:   js.SpanID,
			Service:  jt.Processes[js.ProcessID].ServiceName,
			Name:     js.Operation,
			Start:    time.UnixMicro(js.StartTime),
			Duration: time.Duration(js.Duration) * time.Microsecond,
			Attrs:    map[string]string{},
		}
		for _, tag := range js.Tags {
			v := fmt.Sprint(tag.Value)
			switch tag.Key {
			case "span.kind":
				s.Kind = v
			case "error":
				s.Error = v == "true"
			}
			s.Attrs[tag.Key] = v
		}
		for _, r := range js.References {
			if r.RefType == "CHILD_OF" && r.TraceID == jt.TraceID && s.ParentID == "" {
				s.ParentID = r.SpanID
			} else {
				s.Links = append(s.Links, SpanRef{TraceID: r.TraceID, SpanID: r.SpanID})
			}
		}
		t.Spans = append(t.Spans, s)
	}
	slices.SortStableFunc(t.Spans, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return t
}

// Timeline writes the trace as an indented tree in time order: offset from the trace's first
// span, duration, service and span name, with the lifecycle attributes that matter.
func (t Trace) Timeline(w io.Writer) error {
	if len(t.Spans) == 0 {
		_, err := fmt.Fprintf(w, "trace %s has no spans\n", t.ID)
		return err
	}
	ids := map[string]bool{}
	children := map[string][]Span{}
	for _, s := range t.Spans {
		ids[s.SpanID] = true
	}
	var roots []Span
	for _, s := range t.Spans {
		// A parent outside the trace's stored spans (a producer's own span) leaves a root.
		if s.ParentID == "" || !ids[s.ParentID] {
			roots = append(roots, s)
		} else {
			children[s.ParentID] = append(children[s.ParentID], s)
		}
	}
	first, last := t.Spans[0].Start, t.Spans[0].Start
	for _, s := range t.Spans {
		last = maxTime(last, s.Start.Add(s.Duration))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s: %d spans from %s over %s\n", t.ID, len(t.Spans), strings.Join(t.Services(), ", "), ms(last.Sub(first)))
	var walk func(s Span, depth int)
	walk = func(s Span, depth int) {
		fmt.Fprintf(&b, "%10s %10s  %-11s %s%s%s\n", "+"+ms(s.Start.Sub(first)), ms(s.Duration), s.Service,
			strings.Repeat("  ", depth), s.Name, details(s))
		for _, c := range children[s.SpanID] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// details are the attributes worth a glance, in a fixed order.
func details(s Span) string {
	var parts []string
	for _, k := range []string{"trigger.tenant.id", "trigger.event.type", "messaging.message.delivery_count", "trigger.settle.outcome", "http.response.status_code", "rpc.method"} {
		if v, ok := s.Attrs[k]; ok && !(k == "rpc.method" && strings.HasPrefix(s.Name, "DynamoDB.")) {
			parts = append(parts, strings.TrimPrefix(strings.TrimPrefix(k, "trigger."), "messaging.message.")+"="+v)
		}
	}
	if len(s.Links) > 0 {
		parts = append(parts, fmt.Sprintf("links=%d", len(s.Links)))
	}
	if s.Error {
		parts = append(parts, "ERROR")
	}
	if len(parts) == 0 {
		return ""
	}
	return "  [" + strings.Join(parts, " ") + "]"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
