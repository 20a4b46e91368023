package stack

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// A Jaeger answer as its query API shapes it: the producer's span is not stored, so ingest's
// server span is a root; the worker's span follows from a pull in another trace.
const jaegerFixture = `{"data":[{"traceID":"t1","processes":{"p1":{"serviceName":"ingest"},"p2":{"serviceName":"worker"}},"spans":[
 {"spanID":"c","operationName":"trigger process","processID":"p2","startTime":1000300,"duration":50,
  "references":[{"refType":"CHILD_OF","traceID":"t1","spanID":"b"},{"refType":"FOLLOWS_FROM","traceID":"t9","spanID":"z"}],
  "tags":[{"key":"trigger.tenant.id","type":"string","value":"acme"},{"key":"error","type":"bool","value":true}]},
 {"spanID":"a","operationName":"POST /events","processID":"p1","startTime":1000000,"duration":200,
  "references":[{"refType":"CHILD_OF","traceID":"t1","spanID":"producer"}],
  "tags":[{"key":"http.response.status_code","type":"int64","value":202}]},
 {"spanID":"b","operationName":"trigger publish","processID":"p1","startTime":1000100,"duration":90,
  "references":[{"refType":"CHILD_OF","traceID":"t1","spanID":"a"}],"tags":[]}
]}]}`

func TestTimelineIndentsSpansUnderTheirParentsInTimeOrder(t *testing.T) {
	var a jaegerAnswer
	if err := json.Unmarshal([]byte(jaegerFixture), &a); err != nil {
		t.Fatal(err)
	}
	tr := a.Data[0].trace()
	if got := tr.Services(); strings.Join(got, ",") != "ingest,worker" {
		t.Errorf("services %v", got)
	}
	p, ok := tr.Find("worker", "trigger process")
	if !ok || p.ParentID != "b" || len(p.Links) != 1 || p.Links[0] != (SpanRef{"t9", "z"}) || !p.Error || p.Attrs["trigger.tenant.id"] != "acme" {
		t.Fatalf("process span %+v", p)
	}
	var b bytes.Buffer
	if err := tr.Timeline(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "trace t1: 3 spans from ingest, worker over 0.3ms") {
		t.Fatalf("timeline:\n%s", b.String())
	}
	for i, want := range []string{
		"+0.0ms      0.2ms  ingest      POST /events  [http.response.status_code=202]",
		"+0.1ms      0.1ms  ingest        trigger publish",
		"+0.3ms      0.1ms  worker          trigger process  [tenant.id=acme links=1 ERROR]",
	} {
		if got := strings.TrimSpace(lines[i+1]); got != want {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, got, want)
		}
	}
}
