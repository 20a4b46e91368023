package ddb

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// maxOneWrite is the largest request body sent in the same write as its headers: an item of
// a few KiB, as most calls are. Larger ones take a second write anyway.
const maxOneWrite = 16 << 10

// oneWrite sends a request's headers and a small body in one write. net/http flushes the
// headers on their own before a body that is not a reader it knows to be in memory (Go issue
// 22088), and the SDK's body is not one: every call then cost two writes and two TCP segments,
// and DynamoDB two reads to put them back together.
type oneWrite struct{ next dynamodb.HTTPClient }

func (c oneWrite) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength <= 0 || r.ContentLength > maxOneWrite {
		return c.next.Do(r)
	}
	b := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, b); err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	// A copy of the request, not a change to the SDK's: the SDK builds one per attempt and
	// rewinds its own body for a retry.
	rc := *r
	rc.Body = io.NopCloser(bytes.NewReader(b))
	return c.next.Do(&rc)
}
